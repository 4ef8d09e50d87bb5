"""Convert a standard transcript to a private one. The owner's browser reads the document, seals it under
a new transcript key wrapped by their data key, and sends both envelopes; here they replace the
plaintext in one transaction: segments, words, speakers, the text, title and note, the prompt in the
options, plain share links. Then the search index drops the deleted tokens and the WAL is folded back
and truncated, so the old text is gone from the file (secure_delete zeroes the freed pages)."""

from __future__ import annotations

import json

import sqlite_utils

from appliance.core.clock import now
from appliance.core.db import checkpoint, transaction
from appliance.private import keys as private_keys
from appliance.private import sealing
from appliance.private.keys import KeyRecordError, StaleRevision, check_envelope
from appliance.transcripts import store as transcripts


def convert(
    db: sqlite_utils.Database, transcript_id: str, user_id: str, *, key_envelope: str, body: str, base_revision: int
) -> int:
    """Returns the new revision. KeyRecordError for what cannot be converted; StaleRevision when the
    transcript changed after the browser read it (the envelope would lose that change)."""
    if not private_keys.enrolled(db, user_id):
        raise KeyRecordError(private_keys.NOT_ENROLLED)
    ids = {"uid": user_id, "tid": transcript_id}
    check_envelope(key_envelope, "tk", ids)
    check_envelope(body, "transcript", ids)
    with transaction(db):
        rows = list(db.query("SELECT user_id, private, revision, options, job_id FROM transcripts WHERE id = ?", [transcript_id]))
        if not rows:
            raise KeyRecordError("No such transcript.")
        row = rows[0]
        if row["private"]:
            raise KeyRecordError("This transcript is private already.")
        if row["user_id"] != user_id:
            raise KeyRecordError("Only the person who created a transcript can make it private (their keys will open it).")
        if row["revision"] != base_revision:
            raise StaleRevision()
        db.execute("DELETE FROM segments WHERE transcript_id = ?", [transcript_id])  # words go with them (cascade)
        db.execute("DELETE FROM speakers WHERE transcript_id = ?", [transcript_id])
        db.execute("DELETE FROM share_links WHERE transcript_id = ? AND sealed = 0", [transcript_id])
        options = sealing.public_options(json.loads(row["options"] or "{}"))
        revision = base_revision + 1
        db.execute(
            "UPDATE transcripts SET text = '', note = '', title = NULL, private = 1, options = ?, revision = ?, "
            "updated_at = ? WHERE id = ?",
            [json.dumps(options), revision, now(), transcript_id],
        )
        private_keys.store_envelopes(db, transcript_id, user_id, "tk", key_envelope, body)
        if row["job_id"]:
            sealing.forget_job_secrets(db, row["job_id"])
        transcripts.drop_deleted_terms(db)
    checkpoint(db)
    return revision
