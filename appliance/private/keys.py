"""Key records and transcript envelopes for private transcripts: the SQL, and the key-free checks of what
the browser sends. The server never holds a key that opens any of it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlite_utils

from appliance.core.clock import now
from appliance.core.db import transaction
from appliance.private import crypto as private_crypto
from appliance.private.crypto import CryptoRefused

RECORD_FIELDS = ("kdf", "wrapped_dk", "recovery_dk", "public_key", "wrapped_private_key")
NOT_ENROLLED = "Turn on private transcripts in your account first."


class KeyRecordError(ValueError):
    """What the browser sent is malformed, mismatched or weaker than allowed; the message is safe to show."""


class AlreadyEnrolled(KeyRecordError):
    """Private transcripts are on already: a new passphrase goes through change_passphrase."""


class NeedsNewPassphrase(KeyRecordError):
    """The record is still wrapped under the sign-in password: only `rekey` may replace it."""


class InventoryChanged(KeyRecordError):
    """A re-key did not cover exactly the transcript keys the account holds now (a private job finished
    or a teammate shared one meanwhile): fetch the inventory again and redo it."""


# Key records made before private transcripts had a passphrase of their own (migration 0014).
LEGACY_SCHEME = "sign-in-password"
NEW_PASSPHRASE = (
    "Your private transcripts are still locked with your sign-in password, which the appliance receives "
    "at every sign-in. Choose a passphrase of their own on your account page first."
)


def _checked(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except CryptoRefused as exc:
        raise KeyRecordError(str(exc)) from None


def check_envelope(text: Any, typ: str, ids: dict[str, str]) -> None:
    """An envelope of this type for exactly these ids, well formed (no key needed)."""
    if not isinstance(text, str):
        raise KeyRecordError("an envelope is a JSON string")
    _checked(private_crypto.validate_envelope, text, typ, ids)


def check_record(record: Mapping[str, Any], user_id: str) -> dict[str, Any]:
    """A full key record: every envelope of the right type for this user, parameters at the floor or above."""
    missing = [f for f in RECORD_FIELDS if not record.get(f)]
    if missing:
        raise KeyRecordError(f"the key record needs {', '.join(missing)}")
    kdf = _checked(private_crypto.KdfParams.from_json, record["kdf"])
    ids = {"uid": user_id}
    _checked(private_crypto.validate_envelope, record["wrapped_dk"], "dk", ids)
    _checked(private_crypto.validate_envelope, record["recovery_dk"], "dk-recovery", ids)
    _checked(private_crypto.validate_envelope, record["wrapped_private_key"], "sk", ids)
    _checked(private_crypto.check_public_key, _checked(private_crypto.b64u_decode, record["public_key"]))
    return {"kdf": json.dumps(kdf.to_json()), **{f: record[f] for f in RECORD_FIELDS if f != "kdf"}}


def get(db: sqlite_utils.Database, user_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM user_keys WHERE user_id = ?", [user_id]))
    if not rows:
        return None
    row = rows[0]
    return {
        "kdf": json.loads(row["kdf"]),
        **{f: row[f] for f in RECORD_FIELDS if f != "kdf"},
        "scheme": row["scheme"],
        "needs_new_passphrase": row["scheme"] == LEGACY_SCHEME,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def enrolled(db: sqlite_utils.Database, user_id: str) -> bool:
    return bool(list(db.query("SELECT 1 FROM user_keys WHERE user_id = ?", [user_id])))


def public_key(db: sqlite_utils.Database, user_id: str) -> bytes | None:
    rows = list(db.query("SELECT public_key FROM user_keys WHERE user_id = ?", [user_id]))
    return private_crypto.b64u_decode(rows[0]["public_key"]) if rows else None


def create(db: sqlite_utils.Database, user_id: str, record: Mapping[str, Any]) -> None:
    """Turn private mode on: store the record. The sign-in password is not involved any more."""
    if enrolled(db, user_id):
        raise AlreadyEnrolled("Private transcripts are already on for this account.")
    fields = check_record(record, user_id)
    stamp = now()
    with transaction(db):
        if enrolled(db, user_id):
            raise AlreadyEnrolled("Private transcripts are already on for this account.")
        db.table("user_keys").insert(
            {
                "user_id": user_id,
                **fields,
                "signs_in_with_auth_key": 0,
                "scheme": "passphrase",
                "created_at": stamp,
                "updated_at": stamp,
            }
        )


def change_passphrase(db: sqlite_utils.Database, user_id: str, change: Mapping[str, Any]) -> None:
    """New parameters and the same data key re-wrapped (the browser's work); every other envelope stays."""
    kdf = _checked(private_crypto.KdfParams.from_json, change.get("kdf"))
    _checked(private_crypto.validate_envelope, change.get("wrapped_dk") or "", "dk", {"uid": user_id})
    with transaction(db):
        rows = list(db.query("SELECT scheme FROM user_keys WHERE user_id = ?", [user_id]))
        if not rows:
            raise KeyRecordError(NOT_ENROLLED)
        if rows[0]["scheme"] == LEGACY_SCHEME:  # its data key was exposed: a re-wrap would keep it
            raise NeedsNewPassphrase(NEW_PASSPHRASE)
        db.execute(
            "UPDATE user_keys SET kdf = ?, wrapped_dk = ?, updated_at = ? WHERE user_id = ?",
            [json.dumps(kdf.to_json()), change["wrapped_dk"], now(), user_id],
        )


def inventory(db: sqlite_utils.Database, user_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every transcript key the account's keys open: envelopes of its own transcripts (sealed by the
    worker or wrapped under the data key) and keys teammates sealed to it. What a re-key must cover."""
    return {
        "owned": list(
            db.query(
                "SELECT transcript_id, kind, key_envelope FROM transcript_envelopes WHERE user_id = ? ORDER BY transcript_id",
                [user_id],
            )
        ),
        "received": list(
            db.query(
                "SELECT transcript_id, key_envelope FROM transcript_key_grants WHERE user_id = ? ORDER BY transcript_id",
                [user_id],
            )
        ),
    }


def rekey(
    db: sqlite_utils.Database, user_id: str, record: Mapping[str, Any], owned: Mapping[str, str], received: Mapping[str, str]
) -> int:
    """Replace the whole key record (new data key and key pair, under a new passphrase) and every
    transcript key the old one opened, re-wrapped in the browser: all in one transaction, or nothing.
    Refused unless `owned` and `received` cover exactly the keys held at commit time, so no transcript is
    left under a key that is gone. Returns how many transcript keys were replaced."""
    fields = check_record(record, user_id)
    for tid, text in owned.items():
        check_envelope(text, "tk", {"uid": user_id, "tid": tid})
    for tid, text in received.items():
        check_envelope(text, "tk-sealed", {"uid": user_id, "tid": tid})
    with transaction(db):
        if not enrolled(db, user_id):
            raise KeyRecordError(NOT_ENROLLED)
        held = inventory(db, user_id)
        if {r["transcript_id"] for r in held["owned"]} != set(owned) or {r["transcript_id"] for r in held["received"]} != set(
            received
        ):
            raise InventoryChanged("Your private transcripts changed while their keys were being replaced. Try again.")
        stamp = now()
        db.execute(
            "UPDATE user_keys SET kdf = ?, wrapped_dk = ?, recovery_dk = ?, public_key = ?, wrapped_private_key = ?, "
            "scheme = 'passphrase', updated_at = ? WHERE user_id = ?",
            [
                fields["kdf"],
                fields["wrapped_dk"],
                fields["recovery_dk"],
                fields["public_key"],
                fields["wrapped_private_key"],
                stamp,
                user_id,
            ],
        )
        for tid, text in owned.items():
            db.execute(
                "UPDATE transcript_envelopes SET kind = 'tk', key_envelope = ?, updated_at = ? "
                "WHERE transcript_id = ? AND user_id = ?",
                [text, stamp, tid, user_id],
            )
        for tid, text in received.items():
            db.execute(
                "UPDATE transcript_key_grants SET key_envelope = ? WHERE transcript_id = ? AND user_id = ?", [text, tid, user_id]
            )
    return len(owned) + len(received)


def scheme(db: sqlite_utils.Database, user_id: str) -> str | None:
    rows = list(db.query("SELECT scheme FROM user_keys WHERE user_id = ?", [user_id]))
    return str(rows[0]["scheme"]) if rows else None


# --------------------------------------------------------------------------- transcript envelopes


def store_envelopes(db: sqlite_utils.Database, transcript_id: str, user_id: str, kind: str, key_envelope: str, body: str) -> None:
    """Inside the caller's transaction (the transcript row and its envelopes are written together)."""
    db.execute(
        "INSERT INTO transcript_envelopes (transcript_id, user_id, kind, key_envelope, body, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [transcript_id, user_id, kind, key_envelope, body, now()],
    )


def envelopes(db: sqlite_utils.Database, transcript_id: str) -> dict[str, Any] | None:
    rows = list(
        db.query(
            "SELECT e.transcript_id, e.user_id, e.kind, e.key_envelope, e.body, e.updated_at, t.revision "
            "FROM transcript_envelopes e JOIN transcripts t ON t.id = e.transcript_id WHERE e.transcript_id = ?",
            [transcript_id],
        )
    )
    return rows[0] if rows else None


def replace_key_envelope(db: sqlite_utils.Database, transcript_id: str, user_id: str, key_envelope: str) -> None:
    """The browser's re-wrap: the sealed transcript key becomes one wrapped under the owner's data key."""
    _checked(private_crypto.validate_envelope, key_envelope, "tk", {"uid": user_id, "tid": transcript_id})
    updated = db.execute(
        "UPDATE transcript_envelopes SET kind = 'tk', key_envelope = ?, updated_at = ? WHERE transcript_id = ? AND user_id = ?",
        [key_envelope, now(), transcript_id, user_id],
    ).rowcount
    if not updated:
        raise KeyRecordError("This transcript has no envelope of yours.")


class StaleRevision(Exception):
    """The body was edited since the revision the browser started from."""


def replace_body(db: sqlite_utils.Database, transcript_id: str, user_id: str, body: str, base_revision: int) -> int:
    """An edit saved from the browser, re-encrypted there; optimistic concurrency on the transcript's
    revision. Returns the new revision."""
    _checked(private_crypto.validate_envelope, body, "transcript", {"uid": user_id, "tid": transcript_id})
    if not 0 < base_revision < 2**62:  # SQLite integers are 64-bit; no real revision is near that
        raise StaleRevision()
    stamp = now()
    with transaction(db):
        bumped = db.execute(
            "UPDATE transcripts SET revision = revision + 1, updated_at = ? WHERE id = ? AND revision = ? AND private = 1",
            [stamp, transcript_id, base_revision],
        ).rowcount
        if not bumped:
            raise StaleRevision()
        db.execute(
            "UPDATE transcript_envelopes SET body = ?, updated_at = ? WHERE transcript_id = ?", [body, stamp, transcript_id]
        )
    return base_revision + 1


def openable(db: sqlite_utils.Database, user_id: str, workspace_ids: list[str]) -> list[dict[str, Any]]:
    """The private transcripts this user's keys open (their own, or shared with them) in the workspaces
    they can see: what the browser decrypts to search them."""
    if not workspace_ids:
        return []
    marks = ", ".join("?" for _ in workspace_ids)
    return list(
        db.query(
            "SELECT t.id, coalesce(t.title, t.filename) AS title, t.created_at, t.user_id AS owner_id FROM transcripts t "
            f"WHERE t.private = 1 AND t.workspace_id IN ({marks}) AND (t.user_id = ? OR EXISTS "
            "(SELECT 1 FROM transcript_key_grants g WHERE g.transcript_id = t.id AND g.user_id = ?)) "
            "ORDER BY t.created_at DESC LIMIT 500",
            [*workspace_ids, user_id, user_id],
        )
    )


class _LegacySignIn:
    """accounts.users.LegacySignIn for key records made the first way (scheme 'sign-in-password'): their
    owner's password hash is of the auth key the browser derived from the password then."""

    def secret(self, db: sqlite_utils.Database, user_id: str, password: str) -> str | None:
        rows = list(db.query("SELECT kdf FROM user_keys WHERE user_id = ? AND signs_in_with_auth_key = 1", [user_id]))
        if not rows:
            return None
        try:
            return private_crypto.derive_keys(
                password, private_crypto.KdfParams.from_json(json.loads(rows[0]["kdf"]))
            ).auth_key_text
        except private_crypto.CryptoRefused:
            return None

    def converted(self, db: sqlite_utils.Database, user_id: str) -> None:
        db.execute("UPDATE user_keys SET signs_in_with_auth_key = 0 WHERE user_id = ?", [user_id])


LEGACY_SIGN_IN = _LegacySignIn()
