"""The audit log: who did what, when. Never transcript text."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import sqlite_utils

from appliance.jobs import now


def record(db: sqlite_utils.Database, action: str, *, actor: str | None, target: str | None = None,
           detail: dict[str, Any] | None = None, ip: str | None = None) -> None:
    db["audit_log"].insert({"at": now(), "actor": actor or "anonymous", "action": action, "target": target,
                            "detail": json.dumps(detail) if detail else None, "ip": ip})


def entries(db: sqlite_utils.Database, *, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
    return [
        {**r, "detail": json.loads(r["detail"]) if r["detail"] else None}
        for r in db.query("SELECT at, actor, action, target, detail, ip FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?",
                          [limit, offset])
    ]


def forget(db: sqlite_utils.Database, email: str, pseudonym: str) -> None:
    """A deleted account's e-mail leaves the log too; its events stay, under a pseudonym."""
    db.execute("UPDATE audit_log SET actor = ? WHERE actor = ?", [pseudonym, email])
    db.execute("UPDATE audit_log SET target = ? WHERE target = ?", [pseudonym, email])
    db.execute("UPDATE audit_log SET detail = NULL WHERE detail LIKE ?", [f"%{email}%"])


def to_csv(db: sqlite_utils.Database) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "actor", "action", "target", "detail", "ip"])
    for r in db.query("SELECT at, actor, action, target, detail, ip FROM audit_log ORDER BY id"):
        # A leading =, +, - or @ would be a formula in a spreadsheet: neutralise it.
        writer.writerow([("'" + v) if isinstance(v, str) and v[:1] in "=+-@" else v for v in r.values()])
    return out.getvalue()
