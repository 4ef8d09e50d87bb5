"""SQLite connections: WAL, foreign keys, secure_delete, one connection per thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

T = TypeVar("T")


def connect(path: Path) -> sqlite_utils.Database:
    """Open the appliance database with the pragmas every connection needs (":memory:" for none)."""
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    # secure_delete zeroes freed pages, so a deleted transcript cannot be read back from the file.
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "secure_delete=ON", "busy_timeout=30000", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    return sqlite_utils.Database(conn)


class Databases:
    """Hands each thread its own connection to one file (SQLite connections are not thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite_utils.Database] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path)
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    async def in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(db, *args)` in a worker thread with that thread's own connection.

        A connection must never be shared between threads: sqlite-utils wraps queries in savepoints,
        and two threads on one connection corrupt each other's ("no such savepoint", "table is locked").
        """
        return await asyncio.to_thread(lambda: fn(self.get(), *args, **kwargs))

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.conn.close()
            self._all.clear()
        self._local = threading.local()


def checkpoint(db: sqlite_utils.Database) -> None:
    """Fold the WAL back into the main file and truncate it, so deleted rows leave no copy there."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A write transaction that takes the write lock first (BEGIN IMMEDIATE).

    sqlite-utils reads the schema before it inserts; inside a plain deferred BEGIN that read pins a
    snapshot, and when another thread commits in between, SQLite refuses the upgrade to writing at once
    (SQLITE_BUSY_SNAPSHOT, no retry). Taking the lock up front lets busy_timeout do its waiting instead.
    """
    if db.conn.in_transaction:  # nested: sqlite-utils' savepoints are right here
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
