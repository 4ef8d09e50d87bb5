"""A private transcript shared with a teammate: the owner's browser seals the transcript key to the
teammate's public key and the server stores that one envelope. Only members of the transcript's
workspace who have private transcripts on can receive one, and they can read, not change, the text."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from appliance.core.clock import now
from appliance.private.keys import KeyRecordError, check_envelope


class NotARecipient(KeyRecordError):
    """Not a member of the transcript's workspace, or without private transcripts: nothing to seal to."""


def recipients(db: sqlite_utils.Database, transcript_id: str, owner_id: str) -> list[dict[str, Any]]:
    """Who the owner can share with: the other members of the transcript's workspace who have a key pair."""
    return [
        {"user_id": r["user_id"], "email": r["email"], "public_key": r["public_key"], "shared": bool(r["shared"])}
        for r in db.query(
            "SELECT m.user_id, u.email, k.public_key, "
            "EXISTS (SELECT 1 FROM transcript_key_grants g WHERE g.transcript_id = t.id AND g.user_id = m.user_id) AS shared "
            "FROM transcripts t JOIN memberships m ON m.workspace_id = t.workspace_id JOIN users u ON u.id = m.user_id "
            "JOIN user_keys k ON k.user_id = m.user_id WHERE t.id = ? AND m.user_id != ? AND t.private = 1 ORDER BY u.email",
            [transcript_id, owner_id],
        )
    ]


def grant(db: sqlite_utils.Database, transcript_id: str, owner_id: str, recipient_id: str, key_envelope: str) -> None:
    if not any(r["user_id"] == recipient_id for r in recipients(db, transcript_id, owner_id)):
        raise NotARecipient("That person is not a member of this transcript's workspace with private transcripts on.")
    # Sealed to the recipient (uid = theirs), bound to this transcript: a grant cannot be moved elsewhere.
    check_envelope(key_envelope, "tk-sealed", {"uid": recipient_id, "tid": transcript_id})
    db.execute(
        "INSERT INTO transcript_key_grants (transcript_id, user_id, key_envelope, granted_by, created_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (transcript_id, user_id) DO UPDATE SET key_envelope = excluded.key_envelope",
        [transcript_id, recipient_id, key_envelope, owner_id, now()],
    )


def revoke(db: sqlite_utils.Database, transcript_id: str, recipient_id: str) -> bool:
    """The recipient's copy of the key goes; what they already read cannot be taken back."""
    return bool(
        db.execute(
            "DELETE FROM transcript_key_grants WHERE transcript_id = ? AND user_id = ?", [transcript_id, recipient_id]
        ).rowcount
    )


def key_for(db: sqlite_utils.Database, transcript_id: str, user_id: str) -> str | None:
    rows = list(
        db.query(
            "SELECT key_envelope FROM transcript_key_grants WHERE transcript_id = ? AND user_id = ?", [transcript_id, user_id]
        )
    )
    return rows[0]["key_envelope"] if rows else None
