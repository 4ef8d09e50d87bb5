"""Webhooks: a workspace tells a receiver on its intranet when a job is done or failed and when a
transcript is deleted. The table rows, the signing scheme and the delivery schedule live here; the
sending thread is appliance/app/webhook_sender.py.

Signing (docs/webhooks.md): each request carries `Sotto-Signature: t=<unix seconds>,v1=<hex>` where
v1 = HMAC-SHA256(secret, "<t>.<raw body>"); a receiver recomputes it and refuses a stale `t`, so a
captured request cannot be replayed later. The body holds ids and states only, and the transcript's
text only when the workspace asked for it (never a private transcript's, which the server cannot read).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec
import sqlite_utils

from appliance.core.clock import new_id, now
from appliance.core.egress_broker import Destination

EVENTS = ("job.done", "job.failed", "transcript.deleted")
PING = "ping"
# Seconds before each retry: a receiver that is down for a deploy or a night still gets its events.
BACKOFF = (10, 60, 300, 1800, 7200, 21600)
MAX_ATTEMPTS = len(BACKOFF) + 1
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept between `t` and its own clock


class WebhookError(ValueError):
    """A webhook request is not valid; the message says why, for a person."""


class Webhook(msgspec.Struct, kw_only=True):
    id: str
    workspace_id: str
    url: str
    events: list[str]
    include_text: bool
    created_by: str | None
    created_at: str


class Delivery(msgspec.Struct, kw_only=True):
    id: str
    webhook_id: str
    event: str
    subject: str
    state: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: str
    last_status: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None


@dataclass(frozen=True)
class Target:
    scheme: str
    destination: Destination
    path: str


def parse_url(url: str, allowed: tuple[str, ...]) -> Target:
    """An http(s) URL whose host:port an administrator allowed (security.egress_allow)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise WebhookError("The webhook URL must start with http:// or https:// and name a host.")
    if parts.username or parts.password:
        raise WebhookError("Put no user name or password in the URL: requests are signed with the webhook's secret.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    destination = Destination(parts.hostname.lower(), port)
    if destination not in {Destination.parse(a) for a in allowed}:
        raise WebhookError(
            f"{destination} is not on this appliance's list of allowed intranet receivers. An administrator adds "
            "it to security.egress_allow in the configuration."
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, destination, path)


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = SIGNATURE_TOLERANCE) -> bool:
    """What a receiver does (kept here so the documented scheme has one executable statement)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or abs(time.time() - int(fields["t"])) > tolerance:
        return False
    expected = sign(secret, body, int(fields["t"])).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


# --------------------------------------------------------------------------- rows


def _webhook(row: dict[str, Any]) -> Webhook:
    return Webhook(
        id=row["id"],
        workspace_id=row["workspace_id"],
        url=row["url"],
        events=json.loads(row["events"]),
        include_text=bool(row["include_text"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


def create(
    db: sqlite_utils.Database,
    workspace_id: str,
    url: str,
    events: list[str],
    *,
    include_text: bool,
    created_by: str | None,
    allowed: tuple[str, ...],
) -> tuple[Webhook, str]:
    """The webhook and its secret (shown once: the receiver keeps it)."""
    parse_url(url, allowed)
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise WebhookError(f"Choose events among {', '.join(EVENTS)}" + (f" (not {unknown[0]!r})." if unknown else "."))
    secret = "whsec_" + secrets.token_urlsafe(32)
    row = {
        "id": new_id(),
        "workspace_id": workspace_id,
        "url": url.strip(),
        "secret": secret,
        "events": json.dumps(sorted(set(events))),
        "include_text": int(include_text),
        "created_by": created_by,
        "created_at": now(),
    }
    db.table("webhooks").insert(row)
    return _webhook(row), secret


def get(db: sqlite_utils.Database, webhook_id: str) -> Webhook | None:
    rows = list(db.query("SELECT * FROM webhooks WHERE id = ?", [webhook_id]))
    return _webhook(rows[0]) if rows else None


def secret_of(db: sqlite_utils.Database, webhook_id: str) -> str | None:
    rows = list(db.query("SELECT secret FROM webhooks WHERE id = ?", [webhook_id]))
    return rows[0]["secret"] if rows else None


def for_workspace(db: sqlite_utils.Database, workspace_id: str) -> list[Webhook]:
    return [_webhook(r) for r in db.query("SELECT * FROM webhooks WHERE workspace_id = ? ORDER BY created_at", [workspace_id])]


def delete(db: sqlite_utils.Database, webhook_id: str) -> bool:
    db.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", [webhook_id])
    return db.execute("DELETE FROM webhooks WHERE id = ?", [webhook_id]).rowcount > 0


def enqueue(db: sqlite_utils.Database, workspace_id: str | None, event: str, subject: str, data: dict[str, Any]) -> int:
    """A pending delivery for each of the workspace's webhooks that listens to `event` (once per event and
    subject: a job watched twice is announced once). Returns how many were queued."""
    if workspace_id is None:
        return 0
    queued = 0
    for hook in for_workspace(db, workspace_id):
        if event != PING and event not in hook.events:
            continue
        cursor = db.execute(
            "INSERT OR IGNORE INTO webhook_deliveries (id, webhook_id, event, subject, data, state, next_attempt_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            [new_id(), hook.id, event, subject, json.dumps(data), now(), now()],
        )
        queued += cursor.rowcount
    return queued


def ping(db: sqlite_utils.Database, webhook_id: str) -> str:
    """A test delivery to one webhook, now."""
    delivery_id = new_id()
    db.execute(
        "INSERT INTO webhook_deliveries (id, webhook_id, event, subject, data, state, next_attempt_at, created_at) "
        "VALUES (?, ?, ?, ?, '{}', 'pending', ?, ?)",
        [delivery_id, webhook_id, PING, delivery_id, now(), now()],
    )
    return delivery_id


def due(db: sqlite_utils.Database, limit: int = 20) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT d.*, w.url, w.secret, w.include_text, w.workspace_id FROM webhook_deliveries d "
            "JOIN webhooks w ON w.id = d.webhook_id WHERE d.state = 'pending' AND d.next_attempt_at <= ? "
            "ORDER BY d.next_attempt_at LIMIT ?",
            [now(), limit],
        )
    )


def record_attempt(
    db: sqlite_utils.Database, delivery_id: str, attempts: int, *, ok: bool, status: int | None, error: str | None
) -> None:
    if ok:
        state, next_at = "delivered", now()
    elif attempts >= MAX_ATTEMPTS:
        state, next_at = "failed", now()
    else:
        state = "pending"
        later = datetime.now(UTC) + timedelta(seconds=BACKOFF[attempts - 1])
        next_at = later.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    db.execute(
        "UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, "
        "delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END WHERE id = ?",
        [state, attempts, next_at, status, (error or "")[:500] or None, state, now(), delivery_id],
    )


def deliveries(db: sqlite_utils.Database, webhook_id: str, limit: int = 100) -> list[Delivery]:
    rows = db.query("SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY created_at DESC LIMIT ?", [webhook_id, limit])
    return [msgspec.convert({k: v for k, v in r.items() if k != "data"}, Delivery) for r in rows]
