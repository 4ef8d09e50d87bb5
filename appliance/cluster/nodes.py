"""The worker nodes an administrator issued keys to (`cluster_nodes`), and which of them are drained."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from appliance.core.clock import now


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    fingerprint: str
    issued_at: str
    expires_at: str
    drained: bool


def add(db: sqlite_utils.Database, name: str, address: str, fingerprint: str, expires_at: str) -> Node:
    """A new node, or new keys for a known one (its old file then still works until it expires)."""
    db.execute(
        """
        INSERT INTO cluster_nodes (name, address, fingerprint, issued_at, expires_at, drained) VALUES (?, ?, ?, ?, ?, 0)
        ON CONFLICT (name) DO UPDATE SET address = excluded.address, fingerprint = excluded.fingerprint,
            issued_at = excluded.issued_at, expires_at = excluded.expires_at
        """,
        [name, address, fingerprint, now(), expires_at],
    )
    node = get(db, name)
    assert node is not None
    return node


def get(db: sqlite_utils.Database, name: str) -> Node | None:
    rows = list(db.query("SELECT * FROM cluster_nodes WHERE name = ?", [name]))
    return _node(rows[0]) if rows else None


def all_nodes(db: sqlite_utils.Database) -> list[Node]:
    return [_node(row) for row in db.query("SELECT * FROM cluster_nodes ORDER BY name")]


def set_drained(db: sqlite_utils.Database, name: str, drained: bool) -> bool:
    """Whether the node exists (and is now drained or not)."""
    cursor = db.execute("UPDATE cluster_nodes SET drained = ? WHERE name = ?", [int(drained), name])
    return cursor.rowcount > 0


def remove(db: sqlite_utils.Database, name: str) -> bool:
    cursor = db.execute("DELETE FROM cluster_nodes WHERE name = ?", [name])
    return cursor.rowcount > 0


def _node(row: dict[str, object]) -> Node:
    return Node(
        str(row["name"]),
        str(row["address"]),
        str(row["fingerprint"]),
        str(row["issued_at"]),
        str(row["expires_at"]),
        bool(row["drained"]),
    )
