"""Connections: a long-lived thread keeps its own; blocking handler work borrows from a bounded pool."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import sqlite_utils

from appliance.core import migrations
from appliance.core.db import Databases


def test_in_thread_uses_a_bounded_pool_and_never_shares_a_connection(tmp_path: Path) -> None:
    databases = Databases(tmp_path / "a.db")
    migrations.apply(databases.get())
    busy: set[int] = set()
    seen: set[int] = set()
    clashes: list[int] = []
    lock = threading.Lock()

    def work(db: sqlite_utils.Database, n: int) -> int:
        with lock:
            if id(db) in busy:
                clashes.append(n)
            busy.add(id(db))
            seen.add(id(db))
        time.sleep(0.02)
        db.execute("INSERT INTO audit_log (at, action, actor) VALUES ('2026-01-01', 'x', ?)", [str(n)])
        with lock:
            busy.discard(id(db))
        return n

    async def many() -> list[int]:
        return await asyncio.gather(*(databases.in_thread(work, n) for n in range(40)))

    assert sorted(asyncio.run(many())) == list(range(40))
    assert not clashes
    assert len(seen) <= Databases.POOL_SIZE
    assert databases.get().execute("SELECT count(*) FROM audit_log").fetchone()[0] == 40
    databases.close()
