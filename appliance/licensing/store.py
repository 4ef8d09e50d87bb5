"""The appliance's licence on disk (data dir): activation requests, the installed licence, the
evaluation start and the clock mark, and the one question the rest of the code asks."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.licensing.licence import (
    PRODUCT,
    ClockGuard,
    FingerprintError,
    License,
    LicenseError,
    LicenseState,
    binding_matches,
    check_install,
    evaluation_state,
    fingerprint,
    iso,
    new_nonce,
    parse_time,
    state_of,
    utcnow,
    verify,
)


class ClockCorrectionRefused(Exception):
    """A clock correction that cannot be accepted; the message says why."""


class LicenseBlocked(Exception):
    """New transcriptions are not allowed in this licence state (reading and exporting always are)."""

    def __init__(self, state: LicenseState, code: str | None = None) -> None:
        super().__init__(state.message)
        self.state = state
        self.code = code or f"license_{state.state}"


class Witness:
    """Licence facts in the appliance's database (table license_witness), beside the files in
    data/license/: removing those files (or the whole folder) does not restart an evaluation or turn a
    lapsed licence into a new evaluation, because the database remembers. Deleting the database too
    loses every transcript and account, which is no way to keep using the product."""

    def __init__(self, db: Callable[[], Any]) -> None:
        self.db = db

    def get(self, key: str) -> str | None:
        rows = list(self.db().query("SELECT value FROM license_witness WHERE key = ?", [key]))
        return rows[0]["value"] if rows else None

    def put(self, key: str, value: str) -> None:
        self.db().execute(
            "INSERT INTO license_witness (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    def earliest_activity(self) -> datetime | None:
        """The first account or job: the appliance was in use (so its evaluation had started) by then."""
        row = next(
            iter(
                self.db().query(
                    "SELECT min(at) AS at FROM (SELECT min(created_at) AS at FROM users UNION ALL SELECT min(created_at) FROM jobs)"
                )
            )
        )
        try:
            return parse_time(row["at"], "created_at") if row["at"] else None
        except LicenseError:
            return None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(path.suffix + ".tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


class LicenseStore:
    def __init__(
        self,
        folder: Path,
        machine_id_path: Path,
        *,
        trusted: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        newest_event: Callable[[], datetime | None] = lambda: None,
        gpus: list[str] | None = None,
        witness: Witness | None = None,
    ) -> None:
        self.folder = folder
        self.machine_id_path = machine_id_path
        self.trusted = trusted
        self.clock = clock
        self.gpus = gpus
        self.witness = witness
        self.guard = ClockGuard(folder / "clock.json", newest_event, witness)
        self._lock = threading.Lock()

    # files
    @property
    def license_file(self) -> Path:
        return self.folder / "license.lic"

    def _read_json(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.folder / name).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def installed(self) -> License | None:
        try:
            return verify(self.license_file.read_text(encoding="utf-8"), self.trusted)
        except OSError:
            return None

    # activation
    def request(self, license_key: str) -> dict[str, Any]:
        """The activation request a customer carries to Sotto (no secrets; fingerprints are HMACs)."""
        if not license_key or len(license_key) > 200:
            raise LicenseError("request", "Give the licence key from your order.")
        current = fingerprint(self.machine_id_path, self.gpus)
        request = {
            "product": PRODUCT,
            "license_key": license_key.strip(),
            "app_version": __version__,
            "created_at": iso(self.clock()),
            "nonce": new_nonce(),
            "fingerprint": current.as_dict(),
        }
        _write_atomic(self.folder / "pending.json", json.dumps({"nonce": request["nonce"]}))
        return request

    def install(self, text: str) -> LicenseState:
        with self._lock:
            lic = verify(text, self.trusted)
            current = fingerprint(self.machine_id_path, self.gpus)
            pending = (self._read_json("pending.json") or {}).get("nonce")
            try:
                installed = self.installed()
            except LicenseError:
                installed = None  # a broken installed file must not block a good new one
            check_install(lic, pending_nonce=pending, installed=installed, current=current, now=self.clock())
            _write_atomic(self.license_file, text.replace("\r\n", "\n"))
            (self.folder / "pending.json").unlink(missing_ok=True)
            if self.witness is not None:  # from now on a missing licence file is a missing licence, not an evaluation
                self.witness.put(
                    "license_installed",
                    json.dumps(
                        {
                            "license_id": lic.payload.get("license_id"),
                            "customer": lic.payload.get("customer"),
                            "installed_at": iso(self.clock()),
                        }
                    ),
                )
        return self.state()

    def correct_clock(self, confirmed_now: str) -> dict[str, str | None]:
        """An administrator confirms the clock is right now (it had run ahead, and the mark it left pauses
        new work), by typing the time from a trusted clock, which must agree with this machine's within
        ten minutes: the mark restarts from now. The caller records who confirmed it in the audit log.
        Raises ClockCorrectionRefused with a message for the administrator."""
        try:
            stated = datetime.fromisoformat(confirmed_now.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ClockCorrectionRefused("Give the current date and time, e.g. 2026-12-03T14:05Z.") from None
        stated = stated if stated.tzinfo else stated.replace(tzinfo=UTC)
        now = self.clock()
        if abs((stated - now).total_seconds()) > 600:
            raise ClockCorrectionRefused(
                "The server's clock does not agree with the time you gave. Set the server's "
                "clock right first (NTP, or the host's date), then confirm again."
            )
        if self.state().state != "clock_tampered":
            raise ClockCorrectionRefused("The clock needs no correction.")
        with self._lock:
            discarded = self.guard.correct(now)
            # An evaluation that started while the clock was ahead started "in the future": it starts now.
            if (self._read_json("evaluation.json") or {}).get("started_at", "") > iso(now):
                _write_atomic(self.folder / "evaluation.json", json.dumps({"started_at": iso(now)}))
            if self.witness is not None and (self.witness.get("evaluation_started_at") or "") > iso(now):
                self.witness.put("evaluation_started_at", iso(now))
        return {"corrected_to": iso(now), "discarded_mark": iso(discarded) if discarded else None}

    # state
    def _evaluation_start(self, now: datetime) -> datetime:
        """The earliest of every record of it: the file, the database's copy, and the first account or job
        (so deleting, garbling or post-dating the file changes nothing). Both records are (re)written."""
        candidates = []
        with contextlib.suppress(KeyError, LicenseError):
            candidates.append(parse_time((self._read_json("evaluation.json") or {})["started_at"], "started_at"))
        if self.witness is not None:
            for value in (self.witness.get("evaluation_started_at"),):
                with contextlib.suppress(LicenseError):
                    candidates.append(parse_time(value, "evaluation_started_at")) if value else None
            earliest = self.witness.earliest_activity()
            if earliest is not None:
                candidates.append(earliest)
        started = min(candidates) if candidates else now
        if (self._read_json("evaluation.json") or {}).get("started_at") != iso(started):
            _write_atomic(self.folder / "evaluation.json", json.dumps({"started_at": iso(started)}))
        if self.witness is not None and self.witness.get("evaluation_started_at") != iso(started):
            self.witness.put("evaluation_started_at", iso(started))
        return started

    def state(self) -> LicenseState:
        now = self.clock()
        tampered = self.guard.tampered(now)
        try:
            lic = self.installed()
        except LicenseError as exc:
            return LicenseState("invalid", f"The installed licence cannot be used: {exc} Install a valid licence file.")
        once = self.witness.get("license_installed") if self.witness is not None else None
        if lic is None and once:
            # A licence was installed here: without its file this is not an evaluation again.
            return LicenseState(
                "missing",
                "The licence file (data/license/license.lic) is missing. Install the licence "
                "file again from the admin licence page or with `appliance license install FILE`. "
                "Transcripts can still be read, edited, exported and deleted.",
            )
        if lic is None:  # evaluation needs no fingerprint: it binds to nothing
            result = evaluation_state(self._evaluation_start(now), now, tampered=tampered)
        else:
            try:
                current = fingerprint(self.machine_id_path, self.gpus)
            except FingerprintError as exc:
                return LicenseState("wrong_machine", str(exc))
            if not binding_matches(lic.payload.get("binding"), current):
                return LicenseState(
                    "wrong_machine",
                    "The installed licence was issued for another machine. Make a new activation request from this machine.",
                    customer=lic.payload.get("customer"),
                )
            result = state_of(lic, now, tampered=tampered, fingerprint_summary=current.source)
        if result.state != "clock_tampered":
            self.guard.observe(now)
        return result

    def require_new_jobs(self, feature: str | None = None) -> LicenseState:
        """Raise LicenseBlocked unless a new transcription may start (with `feature`, if named)."""
        state = self.state()
        if not state.allows_new_jobs:
            raise LicenseBlocked(state)
        if feature and feature not in state.features:
            raise LicenseBlocked(
                LicenseState(state.state, f"The licence does not include {feature.replace('_', ' ')}.", features=state.features),
                code="feature_not_licensed",
            )
        return state

    def limit(self, name: str) -> int | None:
        value = self.state().limits.get(name)
        return value if value else None


def for_settings(
    settings: Any, newest_event: Callable[[], datetime | None], db: Callable[[], Any] | None = None, **kwargs: Any
) -> LicenseStore:
    return LicenseStore(
        settings.storage.data_dir / "license",
        settings.licensing.machine_id_path,
        newest_event=newest_event,
        witness=Witness(db) if db is not None else None,
        **kwargs,
    )


def newest_job_time(db: Any) -> datetime | None:
    """The clock witness in SQLite: deleting the licence state file does not erase it."""
    row = next(iter(db.query("SELECT max(created_at) AS at FROM jobs")))
    return parse_time(row["at"], "created_at") if row["at"] else None
