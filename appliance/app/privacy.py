"""Privacy controls: delete an account for good, export a user's data, apply retention."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from appliance.accounts import apikeys, audit, workspaces
from appliance.accounts import users as accounts
from appliance.assist import store as summaries_store
from appliance.core.db import checkpoint
from appliance.private import keys as private_keys
from appliance.private import sealed_shares
from appliance.speakers import profiles as voice_profiles
from appliance.transcripts import exports
from appliance.transcripts import store as transcripts
from appliance.transcripts.document import Transcript, to_builtins


def delete_account(db: sqlite_utils.Database, user_id: str) -> str:
    """The user, their personal workspace, transcripts, jobs, keys, sessions and invitations; their
    e-mail leaves the audit log (their events stay under a pseudonym, which is returned); then the freed
    pages are zeroed (secure_delete) and the WAL truncated, so nothing of it remains in the files."""
    user = accounts.get(db, user_id)
    pseudonym = f"deleted-user-{user_id[:8]}"
    accounts.delete(db, user_id)
    # The bulk delete leaves the account's words in the search index until it is merged.
    transcripts.drop_deleted_terms(db)
    if user is not None:
        db.execute("DELETE FROM invites WHERE email = ?", [user.email])
        audit.forget(db, user.email, pseudonym)
    audit.record(db, "account.deleted", actor=pseudonym)
    checkpoint(db)
    return pseudonym


def delete_user(db: sqlite_utils.Database, user_id: str, *, transfer_to: str | None) -> dict[str, Any]:
    """An administrator removes an account: its standard transcripts either go with it or become
    `transfer_to`'s (private ones always go: only the leaver's keys open them). Returns what happened."""
    user = accounts.get(db, user_id)
    if user is None:
        raise LookupError("no such user")
    moved = 0
    if transfer_to is not None:
        heir = accounts.get(db, transfer_to)
        if heir is None or heir.id == user_id or heir.personal_workspace_id is None or user.personal_workspace_id is None:
            raise ValueError("Transfer the transcripts to another existing user.")
        moved = transcripts.transfer_owner(db, user_id, heir.id, user.personal_workspace_id, heir.personal_workspace_id)
    pseudonym = delete_account(db, user_id)
    return {"pseudonym": pseudonym, "transcripts_transferred": moved}


def export_user(db: sqlite_utils.Database, user_id: str, *, reader: exports.Reader = exports.ENGLISH) -> bytes:
    """One zip: account.json, and every transcript the user created as JSON, TXT, SRT and VTT (the TXT's
    labels in `reader`'s language); a private transcript as its envelopes (JSON), with the wrapped keys in
    private-keys.json."""
    user = accounts.get(db, user_id)
    assert user is not None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        account: dict[str, Any] = {
            "user": user.public(),
            "workspaces": workspaces.for_user(db, user_id),
            "api_keys": apikeys.for_user(db, user_id),
            # Who this person enrolled and with what consent; not the embeddings, which describe the
            # enrolled people's voices rather than this account's data.
            "voice_profiles_enrolled": [
                {k: v for k, v in dataclasses.asdict(p).items() if k != "samples"}
                for p in voice_profiles.enrolled_by(db, user_id)
            ],
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        archive.writestr("account.json", json.dumps(account, indent=2))
        record = private_keys.get(db, user_id)
        if record is not None:  # wrapped keys only: with the passphrase or the recovery key they open the envelopes
            archive.writestr("private-keys.json", json.dumps(record, indent=2))
        ids = [r["id"] for r in db.query("SELECT id FROM transcripts WHERE user_id = ? ORDER BY created_at", [user_id])]
        for transcript_id in ids:
            doc = transcripts.get(db, transcript_id)
            if doc is None:
                continue
            stem = f"transcripts/{(doc.created_at or '')[:10]}-{transcript_id[:8]}"
            envelopes = private_keys.envelopes(db, transcript_id)
            if doc.private and envelopes is not None:  # the server cannot read it: the envelopes as they are
                archive.writestr(f"{stem}.private.json", json.dumps({**_metadata(doc), "envelopes": envelopes}, indent=2))
                continue
            stored = summaries_store.get(db, transcript_id)  # its AI summary is the person's data too
            digest = summaries_store.digest(stored, doc) if stored is not None else None
            for fmt in ("json", "txt", "srt", "vtt"):
                archive.writestr(f"{stem}.{fmt}", exports.render(doc, fmt, digest=digest, reader=reader).content)
    return buffer.getvalue()


def _metadata(doc: Transcript) -> dict[str, Any]:
    """What the server knows of a private transcript: its summary row (the text is in the envelopes)."""
    return {k: v for k, v in to_builtins(doc).items() if k not in ("segments", "speakers", "text", "note")}


def _cutoff(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def apply_retention(
    db: sqlite_utils.Database, *, request_log_days: int, transcript_days: int, audit_pseudonymise_days: int = 90
) -> dict[str, int]:
    """Purge old request logs and expired sessions and encrypted links' snapshots; pseudonymise old audit
    entries; delete old transcripts when a policy is set."""
    purged = {
        "request_log": db.execute("DELETE FROM request_log WHERE at < ?", [_cutoff(request_log_days)]).rowcount,
        "audit_pseudonymised": audit.pseudonymise_older_than(db, _cutoff(audit_pseudonymise_days)),
        "sessions": db.execute("DELETE FROM sessions WHERE expires_at < ?", [_cutoff(0)]).rowcount,
        "transcripts": transcripts.purge_older_than(db, _cutoff(transcript_days)) if transcript_days > 0 else 0,
        "link_snapshots": sealed_shares.purge_expired(db),
    }
    if any(purged.values()):
        checkpoint(db)
    return purged
