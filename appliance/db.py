"""SQLite connections: WAL, foreign keys, secure_delete; one per long-lived thread plus a small pool."""

from __future__ import annotations

import asyncio
import os
import queue
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
        # Owner-only, whatever the umask (an install made before this was 0644): SQLite gives the WAL and
        # shared-memory files the database file's permissions.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        for suffix in ("", "-wal", "-shm"):
            candidate = Path(f"{path}{suffix}")
            if candidate.exists():
                candidate.chmod(0o600)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    # secure_delete zeroes freed pages, so a deleted transcript cannot be read back from the file.
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "secure_delete=ON", "busy_timeout=30000", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    return sqlite_utils.Database(conn)


class Databases:
    """Connections to one file: each long-lived thread (the event loop, the worker) has its own, and
    blocking work from request handlers borrows one from a small pool.

    SQLite connections are not safe to share between threads at the same time. One connection per
    thread is simple, but request handlers run in a thread pool of up to 40 threads, and every
    connection keeps its own page cache (up to 2 MiB): memory grew with the database for as long as the
    appliance ran (the soak benchmark measured +26% in 10 minutes). A pool bounds it.
    """

    POOL_SIZE = 4  # concurrent blocking DB calls; more wait their turn (SQLite has one writer anyway)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite_utils.Database] = []
        self._lock = threading.Lock()
        self._idle: queue.LifoQueue[sqlite_utils.Database] = queue.LifoQueue()
        self._pooled = 0

    def _open(self) -> sqlite_utils.Database:
        db = connect(self.path)
        with self._lock:
            self._all.append(db)
        return db

    def get(self) -> sqlite_utils.Database:
        """This thread's own connection (for threads that live as long as the app)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._open()
            self._local.db = db
        return db

    @contextmanager
    def borrowed(self) -> Iterator[sqlite_utils.Database]:
        """A pooled connection, used by one thread at a time and handed back after."""
        try:
            db = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._pooled < self.POOL_SIZE
                self._pooled += grow
            db = self._open() if grow else self._idle.get()
        try:
            yield db
        finally:
            self._idle.put(db)

    async def in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(db, *args)` in a worker thread with a connection nobody else is using meanwhile.

        A connection must never be used by two threads at once: sqlite-utils wraps queries in
        savepoints, and two threads on one connection corrupt each other's ("no such savepoint").
        """

        def run() -> T:
            with self.borrowed() as db:
                return fn(db, *args, **kwargs)

        return await asyncio.to_thread(run)

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.conn.close()
            self._all.clear()
            self._pooled = 0
        self._local = threading.local()
        self._idle = queue.LifoQueue()


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


def like_pattern(text: str) -> str:
    """`%text%` for `LIKE ? ESCAPE '\\'`, with the user's own % and _ matched literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
