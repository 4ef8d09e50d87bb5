"""Browser sessions: opaque random cookie values, stored only as hashes, with idle and absolute expiry."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from appliance.core.clock import ago, now

COOKIE = "sotto_session"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _later(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    csrf_token: str
    second_factor_at: str | None = None  # when this session last proved a second factor


def create(db: sqlite_utils.Database, user_id: str, absolute_minutes: int, *, second_factor: bool = False) -> tuple[str, Session]:
    """A brand-new session (a new id at every sign-in, so a planted cookie is worthless); `second_factor`
    when the sign-in proved one."""
    token = secrets.token_urlsafe(32)
    stamp = now()
    session = Session(_hash(token), user_id, secrets.token_urlsafe(32), stamp if second_factor else None)
    db.table("sessions").insert(
        {
            "id": session.id,
            "user_id": user_id,
            "csrf_token": session.csrf_token,
            "created_at": stamp,
            "last_seen_at": stamp,
            "expires_at": _later(absolute_minutes),
            "second_factor_at": session.second_factor_at,
        }
    )
    return token, session


def resolve(db: sqlite_utils.Database, token: str | None, idle_minutes: int) -> Session | None:
    """The live session for a cookie value, touching its idle timer; None if unknown or expired."""
    if not token:
        return None
    session_id = _hash(token)
    rows = list(db.query("SELECT * FROM sessions WHERE id = ?", [session_id]))
    if not rows:
        return None
    row = rows[0]
    if row["expires_at"] < now() or row["last_seen_at"] < ago(idle_minutes):
        db.execute("DELETE FROM sessions WHERE id = ?", [session_id])
        return None
    # A write per request would contend with the workers for SQLite's one write lock; the idle timer
    # only needs to be this fresh (a tenth of the idle limit, at most a minute).
    touch_seconds = min(60.0, idle_minutes * 6.0)
    if row["last_seen_at"] < ago(touch_seconds / 60):
        db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", [now(), session_id])
    return Session(row["id"], row["user_id"], row["csrf_token"], row.get("second_factor_at"))


def mark_second_factor(db: sqlite_utils.Database, session_id: str) -> None:
    """The session's user has just proved their second factor again."""
    db.execute("UPDATE sessions SET second_factor_at = ? WHERE id = ?", [now(), session_id])


def end(db: sqlite_utils.Database, session_id: str) -> None:
    db.execute("DELETE FROM sessions WHERE id = ?", [session_id])


def end_all(db: sqlite_utils.Database, user_id: str, *, keep: str | None = None) -> int:
    """End every session of a user, except `keep` (the one changing the password stays signed in)."""
    return db.execute("DELETE FROM sessions WHERE user_id = ? AND id IS NOT ?", [user_id, keep]).rowcount
