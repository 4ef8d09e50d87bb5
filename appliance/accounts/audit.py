"""The audit log: who did what, when. Never transcript text."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from typing import Any

import sqlite_utils

from appliance.core.clock import now


def record(
    db: sqlite_utils.Database,
    action: str,
    *,
    actor: str | None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    db.table("audit_log").insert(
        {
            "at": now(),
            "actor": actor or "anonymous",
            "action": action,
            "target": target,
            "detail": json.dumps(detail) if detail else None,
            "ip": ip,
        }
    )


def entries(db: sqlite_utils.Database, *, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
    return [
        {**r, "detail": json.loads(r["detail"]) if r["detail"] else None}
        for r in db.query(
            "SELECT at, actor, action, target, detail, ip FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?", [limit, offset]
        )
    ]


def forget(db: sqlite_utils.Database, email: str, pseudonym: str) -> None:
    """A deleted account's e-mail leaves the log too; its events stay, under a pseudonym."""
    db.execute("UPDATE audit_log SET actor = ? WHERE actor = ?", [pseudonym, email])
    db.execute("UPDATE audit_log SET target = ? WHERE target = ?", [pseudonym, email])
    db.execute("UPDATE audit_log SET detail = NULL WHERE detail LIKE ?", [f"%{email}%"])


EMAIL = re.compile(r"[^\s\"'<>@,;]+@[^\s\"'<>@,;]+\.[A-Za-z]{2,}")


def network_of(address: str) -> str:
    """An address reduced to its network: /24 for IPv4, /48 for IPv6 (enough to see 'same site', not who)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "(removed)" if address else address
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def pseudonymise_older_than(db: sqlite_utils.Database, cutoff: str) -> int:
    """Entries older than `cutoff` keep their events but no e-mail or client address: an account's
    e-mail becomes `user:<id>` (still linkable to the account while it exists, by an admin), an e-mail
    that names no account becomes `(address removed)`, an IP address becomes its network."""
    users = {r["email"]: r["id"] for r in db.query("SELECT id, email FROM users")}

    def alias(match: re.Match[str]) -> str:
        user_id = users.get(match.group(0).lower())
        return f"user:{user_id}" if user_id else "(address removed)"

    rows = list(
        db.query(
            "SELECT id, actor, target, detail, ip FROM audit_log WHERE at < ? AND (actor LIKE '%@%' OR target LIKE '%@%' "
            "OR detail LIKE '%@%' OR (ip IS NOT NULL AND ip NOT LIKE '%/%' AND ip != '(removed)'))",
            [cutoff],
        )
    )
    for row in rows:
        db.execute(
            "UPDATE audit_log SET actor = ?, target = ?, detail = ?, ip = ? WHERE id = ?",
            [
                EMAIL.sub(alias, row["actor"]) if row["actor"] else row["actor"],
                EMAIL.sub(alias, row["target"]) if row["target"] else row["target"],
                EMAIL.sub(alias, row["detail"]) if row["detail"] else row["detail"],
                network_of(row["ip"]) if row["ip"] else row["ip"],
                row["id"],
            ],
        )
    return len(rows)


def to_csv(db: sqlite_utils.Database) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "actor", "action", "target", "detail", "ip"])
    for r in db.query("SELECT at, actor, action, target, detail, ip FROM audit_log ORDER BY id"):
        # A leading =, +, - or @ would be a formula in a spreadsheet: neutralise it.
        writer.writerow([("'" + v) if isinstance(v, str) and v[:1] in "=+-@" else v for v in r.values()])
    return out.getvalue()
