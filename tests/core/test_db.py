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


def test_another_process_closing_its_connection_leaves_the_servers_database_intact(tmp_path: Path) -> None:
    """The CLI (`appliance users create`, `appliance cluster drain`) writes while the server runs. The
    server opening one more connection must not drop the locks of those it has, or the CLI's closing
    connection deletes the WAL under it and every query after says "database disk image is malformed"."""
    import subprocess
    import sys

    path = tmp_path / "a.db"
    databases = Databases(path)
    migrations.apply(databases.get())
    databases.get().execute("CREATE TABLE notes (text TEXT)")
    databases.get().execute("INSERT INTO notes VALUES ('kept')")
    second: list[sqlite_utils.Database] = []
    thread = threading.Thread(target=lambda: second.append(databases.get()))  # a new thread's own connection
    thread.start()
    thread.join()
    other = (
        "import sys; from pathlib import Path; from appliance.core.db import connect; "
        "db = connect(Path(sys.argv[1])); db.execute(\"INSERT INTO notes VALUES ('from the cli')\"); db.conn.close()"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", other, str(path)], check=True, timeout=60)
    assert Path(f"{path}-wal").exists(), "the other process deleted the server's WAL"
    rows = [r["text"] for r in databases.get().query("SELECT text FROM notes")]
    assert rows == ["kept", "from the cli", "from the cli"]
    assert [r["text"] for r in second[0].query("SELECT text FROM notes")] == rows
