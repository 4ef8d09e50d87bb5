from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.accounts import apikeys, sessions
from appliance.accounts import users as accounts
from appliance.core import migrations
from appliance.core.db import connect


@pytest.fixture
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = connect(tmp_path / "s.db")
    migrations.apply(database)
    return database


def _stamp(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _last_seen(db, session_id: str) -> str:  # type: ignore[no-untyped-def]
    return next(iter(db.query("SELECT last_seen_at FROM sessions WHERE id = ?", [session_id])))["last_seen_at"]


def test_session_idle_timer_is_touched_at_most_once_a_minute(db) -> None:  # type: ignore[no-untyped-def]
    user = accounts.create(db, "s@example.org", "a long enough password", "member")
    token, session = sessions.create(db, user.id, absolute_minutes=600)
    fresh = _last_seen(db, session.id)
    assert sessions.resolve(db, token, idle_minutes=30) == session
    assert _last_seen(db, session.id) == fresh  # seen moments ago: no write
    db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", [_stamp(2), session.id])
    assert sessions.resolve(db, token, idle_minutes=30) == session
    assert _last_seen(db, session.id) > _stamp(0.5)  # older than the touch interval: refreshed


def test_short_idle_limits_are_touched_often_enough_to_hold(db) -> None:  # type: ignore[no-untyped-def]
    user = accounts.create(db, "t@example.org", "a long enough password", "member")
    token, session = sessions.create(db, user.id, absolute_minutes=600)
    # A 1-minute idle limit is touched every 6 s, so a person active every 10 s stays signed in.
    db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", [_stamp(10 / 60), session.id])
    assert sessions.resolve(db, token, idle_minutes=1) == session
    assert _last_seen(db, session.id) > _stamp(2 / 60)
    db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", [_stamp(1.5), session.id])
    assert sessions.resolve(db, token, idle_minutes=1) is None  # idle too long: gone
    assert not list(db.query("SELECT id FROM sessions WHERE id = ?", [session.id]))


def test_api_key_last_used_is_kept_to_the_minute(db) -> None:  # type: ignore[no-untyped-def]
    user = accounts.create(db, "k@example.org", "a long enough password", "member")
    key, record = apikeys.create(db, user.id, "ci", "read")

    def last_used() -> str | None:
        return next(iter(db.query("SELECT last_used_at FROM api_keys WHERE id = ?", [record["id"]])))["last_used_at"]

    assert last_used() is None
    assert apikeys.resolve(db, key) is not None
    first = last_used()
    assert first is not None
    assert apikeys.resolve(db, key) is not None
    assert last_used() == first  # within the minute: no second write
    db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [_stamp(3), record["id"]])
    assert apikeys.resolve(db, key) is not None
    assert last_used() > _stamp(0.5)
