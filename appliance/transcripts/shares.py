"""Share links: an unguessable URL to one standard transcript, read-only, with optional password,
expiry, and a choice of what it shows; view count; revocation. Deleting the transcript deletes them."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance.core.clock import new_id, now
from appliance.transcripts.document import Segment, Transcript

_hasher = PasswordHasher()
MAX_FAILURES = 5
LOCK_MINUTES = 15
SHAREABLE_FORMATS = ("txt", "srt", "vtt", "md", "docx", "pdf")
# Never the file name: it often says what a recording is about ("layoffs-call.m4a"). The title only
# where its owner gave one.


class ShareError(ValueError):
    """A share request is not valid; the message is safe to show."""


class LinkGone(Exception):
    """Unknown, revoked, or its workspace forbids public links (all answer 404)."""


class LinkExpired(Exception):
    """Past its expiry (410)."""


class LinkLocked(Exception):
    """Too many wrong passwords; try again later (429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many wrong passwords. Try again later.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Link:
    id: str
    transcript_id: str
    needs_password: bool
    include_speakers: bool
    include_timestamps: bool
    formats: list[str]
    expires_at: str | None
    sealed: bool = False


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create(
    db: sqlite_utils.Database,
    transcript_id: str,
    created_by: str,
    *,
    password: str | None = None,
    expires_in_days: float | None = None,
    include_speakers: bool = True,
    include_timestamps: bool = True,
    formats: list[str] | None = None,
    sealed: bool = False,
    max_views: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """Returns (the URL token, shown once; the link's public record). A `sealed` link serves only the
    encrypted snapshot the browser stores next (sealed_shares); `max_views` ends it after that many."""
    formats = list(dict.fromkeys(formats if formats is not None else ["txt", "srt", "pdf"]))
    bad = [f for f in formats if f not in SHAREABLE_FORMATS]
    if bad:
        raise ShareError(f"formats must be among {', '.join(SHAREABLE_FORMATS)}")
    if password is not None and not 6 <= len(password) <= 200:
        raise ShareError("A share password needs 6 to 200 characters.")
    if expires_in_days is not None and not 0 < expires_in_days <= 3650:
        raise ShareError("expires_in_days must be more than 0 and at most 3650 (or left out for a permanent link).")
    if max_views is not None and not 1 <= max_views <= 100_000:
        raise ShareError("max_views must be from 1 to 100000 (or left out for no limit).")
    token = secrets.token_urlsafe(24)
    record = {
        "id": new_id(),
        "token_hash": _hash(token),
        "transcript_id": transcript_id,
        "created_by": created_by,
        "created_at": now(),
        "expires_at": _iso(datetime.now(UTC) + timedelta(days=expires_in_days)) if expires_in_days else None,
        "password_hash": _hasher.hash(password) if password else None,
        "include_speakers": int(include_speakers),
        "include_timestamps": int(include_timestamps),
        "formats": json.dumps(formats),
        "views": 0,
        "failed_attempts": 0,
        "sealed": int(sealed),
        "max_views": max_views,
    }
    db.table("share_links").insert(record)
    return token, public(record)


def public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "transcript_id": row["transcript_id"],
        "created_at": row["created_at"],
        "expires_at": row["expires_at"],
        "password": bool(row["password_hash"]),
        "views": row["views"],
        "include_speakers": bool(row["include_speakers"]),
        "include_timestamps": bool(row["include_timestamps"]),
        "formats": json.loads(row["formats"]),
        "revoked": bool(row.get("revoked_at")),
        "sealed": bool(row.get("sealed")),
        "max_views": row.get("max_views"),
    }


def for_transcript(db: sqlite_utils.Database, transcript_id: str) -> list[dict[str, Any]]:
    return [public(r) for r in db.query("SELECT * FROM share_links WHERE transcript_id = ? ORDER BY created_at", [transcript_id])]


def get(db: sqlite_utils.Database, link_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM share_links WHERE id = ?", [link_id]))
    return rows[0] if rows else None


def by_token(db: sqlite_utils.Database, token: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM share_links WHERE token_hash = ?", [_hash(token or "")]))
    return rows[0] if rows else None


def revoke(db: sqlite_utils.Database, link_id: str) -> bool:
    """A sealed link's encrypted snapshot goes with it: the link's key then opens nothing."""
    return bool(
        db.execute(
            "UPDATE share_links SET revoked_at = ?, envelope = NULL WHERE id = ? AND revoked_at IS NULL", [now(), link_id]
        ).rowcount
    )


def open_link(db: sqlite_utils.Database, token: str) -> tuple[Link, dict[str, Any]]:
    """The live link for a URL token, or LinkGone / LinkExpired."""
    # A link speaks for the person who made it: when that account is disabled, its links stop too.
    rows = list(
        db.query(
            "SELECT l.*, w.allow_public_links, u.disabled AS creator_disabled FROM share_links l "
            "JOIN transcripts t ON t.id = l.transcript_id LEFT JOIN workspaces w ON w.id = t.workspace_id "
            "LEFT JOIN users u ON u.id = l.created_by WHERE l.token_hash = ?",
            [_hash(token or "")],
        )
    )
    if (
        not rows
        or rows[0]["revoked_at"]
        or rows[0]["allow_public_links"] == 0
        or rows[0]["creator_disabled"]
        or rows[0]["created_by"] is None
    ):
        raise LinkGone()
    row = rows[0]
    if row["expires_at"] and row["expires_at"] < now():
        raise LinkExpired()
    link = Link(
        row["id"],
        row["transcript_id"],
        bool(row["password_hash"]),
        bool(row["include_speakers"]),
        bool(row["include_timestamps"]),
        json.loads(row["formats"]),
        row["expires_at"],
        bool(row["sealed"]),
    )
    return link, row


def check_password(db: sqlite_utils.Database, row: dict[str, Any], password: str) -> bool:
    """Verify a link's password; after MAX_FAILURES wrong ones the link locks for a while.

    The attempt is charged before the check, atomically with the lock test (one UPDATE), so parallel
    guesses cannot share a stale count: at most MAX_FAILURES are ever checked per lock period."""
    until = _iso(datetime.now(UTC) + timedelta(minutes=LOCK_MINUTES))
    charged = db.execute(
        "UPDATE share_links SET failed_attempts = CASE WHEN failed_attempts + 1 >= ? THEN 0 ELSE failed_attempts + 1 END, "
        "locked_until = CASE WHEN failed_attempts + 1 >= ? THEN ? ELSE NULL END "
        "WHERE id = ? AND (locked_until IS NULL OR locked_until <= ?) RETURNING locked_until",
        [MAX_FAILURES, MAX_FAILURES, until, row["id"], now()],
    ).fetchall()
    if not charged:
        locked = list(db.query("SELECT locked_until FROM share_links WHERE id = ?", [row["id"]]))
        remaining = (
            datetime.fromisoformat(locked[0]["locked_until"].replace("Z", "+00:00")) - datetime.now(UTC)
            if locked and locked[0]["locked_until"]
            else timedelta(minutes=LOCK_MINUTES)
        )
        raise LinkLocked(max(1, int(remaining.total_seconds())))
    ok: bool
    try:
        ok = _hasher.verify(row["password_hash"], password or "")
    except (VerificationError, InvalidHashError):
        ok = False
    if ok:
        db.execute("UPDATE share_links SET failed_attempts = 0, locked_until = NULL WHERE id = ?", [row["id"]])
    elif charged[0][0]:
        raise LinkLocked(LOCK_MINUTES * 60)  # that was the last allowed guess
    return ok


def count_view(db: sqlite_utils.Database, link_id: str) -> None:
    db.execute("UPDATE share_links SET views = views + 1 WHERE id = ?", [link_id])


def grant(secret: bytes, link_id: str, hours: int = 12) -> str:
    """A cookie value proving the password was given for this link (HMAC; expires)."""
    expires = int((datetime.now(UTC) + timedelta(hours=hours)).timestamp())
    message = f"{link_id}.{expires}"
    return f"{message}.{hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()}"


def granted(secret: bytes, link_id: str, value: str | None) -> bool:
    try:
        got_id, expires, signature = (value or "").split(".")
    except ValueError:
        return False
    expected = hmac.new(secret, f"{got_id}.{expires}".encode(), hashlib.sha256).hexdigest()
    return (
        hmac.compare_digest(signature, expected)
        and got_id == link_id
        and expires.isdigit()
        and int(expires) > datetime.now(UTC).timestamp()
    )


def public_document(doc: Transcript, link: Link) -> Transcript:
    """Only what the link shows: the words, their timing, the notes, and the title only when a person gave
    one (the default title is the file name). No ids, owners, file name, options or timings: those fields
    are blank in the public copy, so the page and every export format stay in the one document shape."""
    segments = [
        Segment(
            id=s.id,
            start=s.start,
            end=s.end,
            text=s.text,
            note=s.note,
            speaker=s.speaker if link.include_speakers else None,
            words=[msgspec.structs.replace(w, speaker=w.speaker if link.include_speakers else None) for w in s.words],
        )
        for s in doc.segments
    ]
    return Transcript(
        id="",
        title=doc.title if doc.title and doc.title != doc.filename else None,
        language=doc.language,
        duration=doc.duration,
        created_at=doc.created_at,
        text=doc.text,
        note=doc.note,
        speakers=doc.speakers if link.include_speakers else [],
        segments=segments,
    )
