"""Encrypted snapshot links: `/s/<token>#k=<SK>`. The browser seals a snapshot of the transcript under a
fresh key SK (envelope type "share", bound to the link's id) and keeps SK in the URL fragment, which
browsers never send. The server stores the envelope on the link's row and hands it to whoever opens
the link; expiry, the view limit and revocation delete it, after which the key opens nothing."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from appliance.core.clock import now
from appliance.core.db import checkpoint
from appliance.private.keys import KeyRecordError, check_envelope
from appliance.transcripts import shares


def store(db: sqlite_utils.Database, link_id: str, envelope: str) -> None:
    """Once, right after the link was created; a link's snapshot is never replaced (make a new link)."""
    check_envelope(envelope, "share", {"sid": link_id})
    stored = db.execute(
        "UPDATE share_links SET envelope = ? WHERE id = ? AND sealed = 1 AND envelope IS NULL AND revoked_at IS NULL",
        [envelope, link_id],
    ).rowcount
    if not stored:
        raise KeyRecordError("This link is not an encrypted link waiting for its snapshot.")


def _wipe(db: sqlite_utils.Database, link_id: str) -> None:
    db.execute("UPDATE share_links SET envelope = NULL WHERE id = ?", [link_id])
    checkpoint(db)  # no older copy left in the WAL either


def purge_expired(db: sqlite_utils.Database) -> int:
    """Retention: an expired link's snapshot goes even if nobody opens the link again (the caller checkpoints)."""
    return db.execute(
        "UPDATE share_links SET envelope = NULL WHERE sealed = 1 AND envelope IS NOT NULL "
        "AND expires_at IS NOT NULL AND expires_at < ?",
        [now()],
    ).rowcount


def open_snapshot(db: sqlite_utils.Database, token: str) -> dict[str, Any]:
    """{sid, envelope} for one view; counts it. LinkGone when revoked, used up or not sealed;
    LinkExpired (and the snapshot deleted) past its expiry."""
    try:
        link, row = shares.open_link(db, token)
    except shares.LinkExpired:
        expired = shares.by_token(db, token)
        if expired is not None and expired["envelope"] is not None:
            _wipe(db, expired["id"])
        raise
    if not link.sealed or row["envelope"] is None:
        raise shares.LinkGone()
    shares.count_view(db, link.id)
    if row["max_views"] is not None and row["views"] + 1 >= row["max_views"]:
        _wipe(db, link.id)  # this was the last view: the copy handed out now is the only one left
    return {"sid": link.id, "envelope": row["envelope"]}
