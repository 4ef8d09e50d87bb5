"""SQLite connections: WAL, foreign keys, secure_delete; one per long-lived thread plus a small pool."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

T = TypeVar("T")


def connect(path: Path) -> sqlite_utils.Database:
    """Open the appliance database with the pragmas every connection needs (":memory:" for none)."""
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only, whatever the umask (an install made before this was 0644): SQLite gives the WAL and
        # shared-memory files the database file's permissions. Created here only when missing, and never
        # opened otherwise: closing any descriptor of the file drops every POSIX lock this process holds on
        # it, the other connections' too, and then another process (the CLI) closing its connection takes
        # itself for the last one and deletes the WAL under this process's feet ("malformed" at once).
        if not path.exists():
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        for suffix in ("", "-wal", "-shm"):
            candidate = Path(f"{path}{suffix}")
            if candidate.exists():
                candidate.chmod(0o600)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    # secure_delete zeroes freed pages, so a deleted transcript cannot be read back from the file.
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "secure_delete=ON", "busy_timeout=30000", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    return sqlite_utils.Database(conn)


REQUEST_DB = "sotto.db"  # the key of a request's borrowed connection in its ASGI state
# Set by the request middleware (the request's ASGI state) and inherited by the threads its handler runs
# in; set by in_thread to the connection that call borrowed.
_REQUEST: ContextVar[dict[str, Any] | None] = ContextVar("sotto_request_state", default=None)
_CURRENT: ContextVar[sqlite_utils.Database | None] = ContextVar("sotto_current_db", default=None)


class OnEventLoop(RuntimeError):
    """SQLite was asked for on the event loop's thread (a bug: see Databases.get)."""


def _refuse_on_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # not the loop's thread: fine
    raise OnEventLoop("SQLite on the event loop thread: run this in a sync handler (sync_to_thread) or through in_thread")


@contextmanager
def request_scope(state: dict[str, Any]) -> Iterator[None]:
    """For the request middleware: connections asked for while this request is handled come from (and
    go back to) one pooled connection kept in its state."""
    token = _REQUEST.set(state)
    try:
        yield
    finally:
        _REQUEST.reset(token)


class Databases:
    """Connections to one file, and where each kind of caller gets one.

    SQLite connections are not safe to share between threads at the same time, and every connection
    keeps its own page cache (up to 2 MiB): one per thread of a 40-thread handler pool made memory grow
    with the database (the soak benchmark measured +26% in 10 minutes). So:
    - long-lived threads (the worker, housekeeping, the request-log writer, the CLI) keep their own;
    - a request handler (sync, run in a thread) borrows one from a small pool for its request;
    - an async handler's blocking call borrows one for that call (`in_thread`);
    - the event loop's thread gets none: a query there waits for SQLite's write lock (up to the 30 s
      busy timeout, held for seconds while the worker stores a long transcript) with every other
      request, health checks and progress streams stuck behind it. `OnEventLoop` says so at once.
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
        """The connection for whoever asks: the one this in_thread call borrowed, this request's, or
        this long-lived thread's own. Never on the event loop (OnEventLoop)."""
        _refuse_on_event_loop()
        current = _CURRENT.get()
        if current is not None:
            return current
        state = _REQUEST.get()
        if state is not None:
            db = state.get(REQUEST_DB)
            if db is None:
                db = state[REQUEST_DB] = self._borrow()
            return db
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._open()
            self._local.db = db
        return db

    def release_request(self, state: dict[str, Any]) -> None:
        """The middleware, when a request is done: its borrowed connection goes back to the pool."""
        db = state.pop(REQUEST_DB, None)
        if db is not None:
            if db.conn.in_transaction:  # a handler that failed half-way: its changes go
                db.conn.execute("ROLLBACK")
            self._idle.put(db)

    def _borrow(self) -> sqlite_utils.Database:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._pooled < self.POOL_SIZE
                self._pooled += grow
            return self._open() if grow else self._idle.get()

    @contextmanager
    def borrowed(self) -> Iterator[sqlite_utils.Database]:
        """A pooled connection, used by one thread at a time and handed back after."""
        _refuse_on_event_loop()
        current = _CURRENT.get()
        state = _REQUEST.get()
        if current is None and state is not None:
            current = state.get(REQUEST_DB)
        if current is not None:  # this call or request holds one already: the same, never a second
            yield current
            return
        db = self._borrow()
        token = _CURRENT.set(db)
        try:
            yield db
        finally:
            _CURRENT.reset(token)
            self._idle.put(db)

    async def in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(db, *args)` in a worker thread with a connection nobody else is using meanwhile
        (borrowed for this call only, so a long request, an upload say, holds none while it waits).

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
