"""Offline licences: verify signed licence files, fingerprint the machine, guard the clock, and
turn all of it into one state that decides whether new transcriptions may start.

Customer data is never locked: every state allows reading, editing, exporting, sharing, deleting.
Design: shared/design/licensing.md; decisions: docs/decisions.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PRODUCT = "sotto-appliance"
SCHEMA = 1
ALGORITHM = "ed25519"
DOMAIN = b"sotto-license-v1\x00"  # signatures cover this prefix + the raw payload bytes
ARMOR_BEGIN = "-----BEGIN SOTTO LICENSE-----"
ARMOR_END = "-----END SOTTO LICENSE-----"
FINGERPRINT_KEY = b"sotto-fingerprint-v1"
SKEW = timedelta(minutes=5)
ROLLBACK = timedelta(hours=1)
EXPIRING_DAYS = 30
EVALUATION_DAYS = 14
FEATURES = ("diarization", "api", "private_transcripts", "sso")

# The vendor's public keys, by key id. Two ids so a key can be rotated without breaking installed
# licences. Never read from config, environment or the data volume: a customer must not be able to
# add a key. The test suite's key pair is not here; tests pass their own map.
TRUSTED_KEYS: Mapping[str, str] = {
    "sotto-2026-1": "ogRXFW4OFqn0yMFr5Z7Dm4IifEZhs69R1qWuhXSNC5A=",
    "sotto-2026-2": "eSQGhjUccOlRJrdgDFvzN5TLjYlzZvFCpBA6/0kJfTE=",
}


class LicenseError(Exception):
    """A licence file cannot be used. `code` is machine-readable, the message is for the admin."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class FingerprintError(Exception):
    """Nothing usable identifies this machine: the appliance fails closed and says why."""


# --------------------------------------------------------------------------- time


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise LicenseError("payload", f"The licence's {name} is missing or not a date.")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise LicenseError("payload", f"The licence's {name} is not a valid date.") from None
    if moment.tzinfo is None:
        raise LicenseError("payload", f"The licence's {name} has no time zone.")
    return moment


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- fingerprint


@dataclass(frozen=True)
class Fingerprint:
    machine: str  # HMAC of the host machine-id
    gpus: tuple[str, ...]  # HMACs of physical GPU UUIDs (MIG slices counted as their parent GPU)
    source: str  # what it was made from, for the admin

    def as_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "gpus": list(self.gpus), "source": self.source}


def _digest(value: str) -> str:
    return hmac.new(FINGERPRINT_KEY, value.strip().encode(), hashlib.sha256).hexdigest()


def gpu_uuids() -> list[str]:
    """Physical GPU UUIDs from NVML; an empty list when there is no NVIDIA driver or GPU."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:
        return []
    try:
        uuids = set()
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            with contextlib.suppress(Exception):  # a MIG slice identifies as its parent GPU: re-slicing keeps the binding
                handle = pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            uuids.add(uuid.decode() if isinstance(uuid, bytes) else str(uuid))
        return sorted(uuids)
    finally:
        pynvml.nvmlShutdown()


def fingerprint(machine_id_path: Path, gpus: list[str] | None = None) -> Fingerprint:
    """HMACs of the host's machine-id and GPU UUIDs (never the raw ids)."""
    try:
        machine_id = machine_id_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        machine_id = ""
    if len(machine_id) < 16:
        raise FingerprintError(
            f"This machine cannot be identified: {machine_id_path} is missing or empty. In Docker, mount the host's "
            "/etc/machine-id read-only (see compose.yaml)."
        )
    uuids = gpu_uuids() if gpus is None else gpus
    source = f"machine-id and {len(uuids)} GPU(s)" if uuids else "machine-id only (no NVIDIA GPU found)"
    return Fingerprint(_digest(machine_id), tuple(sorted(_digest(u) for u in uuids)), source)


def binding_matches(binding: Any, current: Fingerprint) -> bool:
    if not isinstance(binding, dict) or not isinstance(binding.get("machine"), str):
        return False
    if not hmac.compare_digest(binding["machine"], current.machine):
        return False
    licensed = binding.get("gpus") or []
    if not licensed:
        return True
    if not isinstance(licensed, list):
        return False
    needed = binding.get("min_gpu_match", len(licensed))
    if not isinstance(needed, int) or needed < 1:
        return False
    matched = sum(1 for g in current.gpus if any(isinstance(x, str) and hmac.compare_digest(g, x) for x in licensed))
    return matched >= min(needed, len(licensed))


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class License:
    payload: dict[str, Any]
    kid: str
    text: str

    @property
    def serial(self) -> int:
        return int(self.payload["serial"])

    @property
    def features(self) -> list[str]:
        return list(self.payload.get("features") or [])

    @property
    def limits(self) -> dict[str, int]:
        return dict(self.payload.get("limits") or {})


def _b64url(data: str) -> bytes:
    padded = data + "=" * (-len(data) % 4)
    if not padded.replace("-", "").replace("_", "").replace("=", "").isalnum():
        raise binascii.Error("not base64url")
    return base64.urlsafe_b64decode(padded)


def unarmor(text: str) -> dict[str, Any]:
    """Armor and strict base64, then the envelope's shape. Nothing inside the payload is read yet."""
    if not isinstance(text, str) or not text.strip():
        raise LicenseError("armor", "The licence file is empty.")
    lines = [line.strip() for line in text.replace("\r\n", "\n").strip().split("\n")]
    if len(lines) < 3 or lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END:
        raise LicenseError("armor", "This is not a Sotto licence file (the BEGIN/END lines are missing).")
    try:
        raw = base64.b64decode("".join(lines[1:-1]), validate=True)
        envelope = json.loads(raw)
    except (binascii.Error, ValueError):
        raise LicenseError("encoding", "The licence file is damaged (its contents are not valid base64 JSON).") from None
    if not isinstance(envelope, dict) or set(envelope) != {"v", "alg", "kid", "payload", "sig"}:
        raise LicenseError("encoding", "The licence file is damaged (unexpected structure).")
    return envelope


def verify(text: str, trusted: Mapping[str, str] | None = None) -> License:
    """Check armor, algorithm, key id and signature, then parse; returns the signed payload."""
    trusted = TRUSTED_KEYS if trusted is None else trusted
    envelope = unarmor(text)
    if envelope["v"] != 1 or envelope["alg"] != ALGORITHM:
        raise LicenseError("algorithm", "The licence uses a signature algorithm this appliance does not accept.")
    kid = envelope["kid"]
    if not isinstance(kid, str) or kid not in trusted:
        raise LicenseError("unknown_key", "The licence was signed with a key this appliance does not know.")
    try:
        payload_bytes = _b64url(envelope["payload"])
        signature = _b64url(envelope["sig"])
    except (binascii.Error, ValueError, TypeError, AttributeError):
        raise LicenseError("encoding", "The licence file is damaged (bad payload or signature encoding).") from None
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(trusted[kid]))
    try:
        public.verify(signature, DOMAIN + payload_bytes)
    except InvalidSignature:
        raise LicenseError(
            "signature", "The licence's signature is not valid: the file was changed or not issued by Sotto."
        ) from None
    # Only signed bytes are parsed.
    try:
        payload = json.loads(payload_bytes)
    except ValueError:
        raise LicenseError("payload", "The licence's contents cannot be read.") from None
    if not isinstance(payload, dict):
        raise LicenseError("payload", "The licence's contents have the wrong shape.")
    if payload.get("product") != PRODUCT or payload.get("schema") != SCHEMA:
        raise LicenseError("product", "This licence is for another product or version.")
    if not isinstance(payload.get("serial"), int) or not isinstance(payload.get("nonce"), str):
        raise LicenseError("payload", "The licence is missing its serial number or request id.")
    for name in ("issued_at", "not_before", "expires_at"):
        parse_time(payload.get(name), name)
    if not isinstance(payload.get("grace_days", 0), int) or payload.get("grace_days", 0) < 0:
        raise LicenseError("payload", "The licence's grace period is not valid.")
    features, limits = payload.get("features", []), payload.get("limits", {})
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise LicenseError("payload", "The licence's feature list is not valid.")
    if not isinstance(limits, dict) or not all(isinstance(v, int) and v >= 0 for v in limits.values()):
        raise LicenseError("payload", "The licence's limits are not valid.")
    return License(payload, kid, text)


def check_install(
    lic: License, *, pending_nonce: str | None, installed: License | None, current: Fingerprint, now: datetime
) -> None:
    """The checks after the signature, in order: request nonce, serial, binding, time."""
    nonces = {n for n in (pending_nonce, installed.payload["nonce"] if installed else None) if n}
    if lic.payload["nonce"] not in nonces:
        raise LicenseError(
            "nonce", "This licence answers a different activation request. Make a new request and send it to Sotto."
        )
    if installed is not None and lic.serial < installed.serial:
        raise LicenseError("serial", "This licence is older than the one already installed, so it was not installed.")
    if not binding_matches(lic.payload.get("binding"), current):
        raise LicenseError("binding", "This licence was issued for another machine.")
    if now + SKEW < parse_time(lic.payload["issued_at"], "issued_at"):
        raise LicenseError("clock", "The licence was issued in the future by this machine's clock: check the system time.")


# --------------------------------------------------------------------------- clock guard


class ClockGuard:
    """A high-water mark of trusted time: a state file that never moves backwards, the same mark in
    SQLite (`witness`), and the newest job time there, so deleting the file does not reset it.

    After a confirmed clock correction (a clock that had jumped forward), events stamped up to the
    discarded mark are no longer evidence; the marks restart from the corrected time."""

    def __init__(self, state_file: Path, newest_event: Any = lambda: None, witness: Any = None) -> None:
        self.state_file = state_file
        self.newest_event = newest_event  # () -> datetime | None
        self.witness = witness  # license_store.Witness | None

    def _witnessed(self, key: str) -> datetime | None:
        value = self.witness.get(key) if self.witness is not None else None
        try:
            return parse_time(value, key) if value else None
        except LicenseError:
            return None

    def high_water(self) -> datetime | None:
        marks = []
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, LicenseError):
            marks.append(parse_time(json.loads(self.state_file.read_text())["high_water"], "high_water"))
        stored = self._witnessed("clock_high_water")
        if stored is not None:
            marks.append(stored)
        newest = self.newest_event()
        discarded = self._witnessed("clock_discarded_until")
        if newest is not None and (discarded is None or newest > discarded):
            marks.append(newest)
        return max(marks) if marks else None

    def correct(self, now: datetime) -> datetime | None:
        """An administrator confirmed that `now` is the right time: forget the mark left by a clock that
        had run ahead. Returns the discarded mark (for the audit log)."""
        discarded = self.high_water()
        if self.witness is not None and discarded is not None:
            self.witness.put("clock_discarded_until", iso(max(discarded, self._witnessed("clock_discarded_until") or discarded)))
            self.witness.put("clock_high_water", iso(now))
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temp = self.state_file.with_suffix(".tmp")
        temp.write_text(json.dumps({"high_water": iso(now)}))
        os.replace(temp, self.state_file)
        return discarded

    def tampered(self, now: datetime) -> bool:
        mark = self.high_water()
        return mark is not None and now + ROLLBACK < mark

    def observe(self, now: datetime) -> None:
        """Move the mark forward to now (never back). Atomic: write beside, then rename."""
        mark = self.high_water()
        if mark is not None and mark >= now - timedelta(minutes=1):
            return  # a write a minute at most: the rollback threshold is an hour
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temp = self.state_file.with_suffix(".tmp")
        temp.write_text(json.dumps({"high_water": iso(now)}))
        os.replace(temp, self.state_file)
        if self.witness is not None:
            self.witness.put("clock_high_water", iso(now))


# --------------------------------------------------------------------------- states


ALLOWING = {"valid", "expiring_soon", "grace", "evaluation"}


@dataclass(frozen=True)
class LicenseState:
    state: str  # valid | expiring_soon | grace | evaluation | expired | not_yet_valid | clock_tampered | none | invalid | wrong_machine | missing
    message: str
    days_left: int | None = None
    features: list[str] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)
    customer: str | None = None
    license_id: str | None = None
    fingerprint: str | None = None

    @property
    def allows_new_jobs(self) -> bool:
        return self.state in ALLOWING

    @property
    def banner(self) -> str | None:
        return None if self.state == "valid" else self.message

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "message": self.message,
            "days_left": self.days_left,
            "features": self.features,
            "limits": self.limits,
            "customer": self.customer,
            "license_id": self.license_id,
            "allows_new_jobs": self.allows_new_jobs,
            "fingerprint": self.fingerprint,
        }


def state_of(lic: License, now: datetime, *, tampered: bool, fingerprint_summary: str | None = None) -> LicenseState:
    p = lic.payload

    def state(status: str, message: str, days_left: int | None = None) -> LicenseState:
        return LicenseState(
            status, message, days_left, lic.features, lic.limits, p.get("customer"), p.get("license_id"), fingerprint_summary
        )

    if tampered or now + SKEW < parse_time(p["issued_at"], "issued_at"):
        return state(
            "clock_tampered",
            "The system clock is behind the last time this appliance saw. New "
            "transcriptions are paused until the clock is corrected; everything else works.",
        )
    not_before = parse_time(p["not_before"], "not_before")
    expires = parse_time(p["expires_at"], "expires_at")
    if now + SKEW < not_before:
        return state("not_yet_valid", f"The licence starts on {iso(not_before)[:10]}.")
    days_left = (expires - now).days
    if now <= expires:
        if days_left <= EXPIRING_DAYS:
            return state(
                "expiring_soon",
                f"The licence expires in {days_left} days. Ask Sotto for a renewal.",
                days_left=days_left,
            )
        return state("valid", "The licence is valid.", days_left=days_left)
    grace_end = expires + timedelta(days=int(p.get("grace_days", 0)))
    if now <= grace_end:
        return state(
            "grace",
            f"The licence expired on {iso(expires)[:10]}; new transcriptions stop after "
            f"{iso(grace_end)[:10]}. Install a renewal.",
            days_left=(grace_end - now).days,
        )
    return state(
        "expired",
        f"The licence expired on {iso(expires)[:10]}. New transcriptions are paused; "
        "transcripts can still be read, edited, exported and deleted. Install a renewal.",
        days_left=0,
    )


def evaluation_state(started: datetime, now: datetime, *, tampered: bool) -> LicenseState:
    if tampered or now + ROLLBACK < started:
        return LicenseState(
            "clock_tampered",
            "The system clock is behind the last time this appliance saw. New "
            "transcriptions are paused until the clock is corrected.",
        )
    ends = started + timedelta(days=EVALUATION_DAYS)
    if now <= ends:
        return LicenseState(
            "evaluation",
            f"Evaluation copy: {(ends - now).days} days left. Activate a licence from the admin licence page.",
            days_left=(ends - now).days,
            features=list(FEATURES),
        )
    return LicenseState(
        "none",
        "No licence is installed and the evaluation has ended. Transcripts can still be read, "
        "edited, exported and deleted; activate a licence to transcribe again.",
    )


def new_nonce() -> str:
    return secrets.token_urlsafe(16)
