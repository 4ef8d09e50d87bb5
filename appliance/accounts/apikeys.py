"""API keys: shown once, stored as a hash, scoped, revocable, with last-used time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.core.clock import ago, new_id, now

SCOPES = ("read", "transcribe", "admin")  # each includes the ones before it
PREFIX = "sotto_"


@dataclass(frozen=True)
class ApiKey:
    id: str
    user_id: str
    scope: str
    store: bool = True  # False: results of its OpenAI-compatible requests are not kept


def _hash(secret: str) -> str:
    # Keys are 256-bit random: a fast hash is enough (no dictionary to attack), unlike passwords.
    return hashlib.sha256(secret.encode()).hexdigest()


def create(db: sqlite_utils.Database, user_id: str, name: str, scope: str, store: bool = True) -> tuple[str, dict[str, Any]]:
    """Returns (the full key, shown this once; its public record)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    record = {
        "id": new_id(),
        "user_id": user_id,
        "name": (name or "API key").strip()[:80],
        "prefix": prefix,
        "secret_hash": _hash(secret),
        "scope": scope,
        "store": int(store),
        "created_at": now(),
    }
    db.table("api_keys").insert(record)
    return f"{PREFIX}{prefix}_{secret}", public(record)


def public(row: dict[str, Any]) -> dict[str, Any]:
    record = {k: row.get(k) for k in ("id", "name", "prefix", "scope", "created_at", "last_used_at", "revoked_at")}
    return {**record, "store": bool(row.get("store", 1))}


def resolve(db: sqlite_utils.Database, key: str) -> ApiKey | None:
    if not key.startswith(PREFIX) or key.count("_") < 2:
        return None
    prefix, _, secret = key[len(PREFIX) :].partition("_")
    rows = list(db.query("SELECT * FROM api_keys WHERE prefix = ?", [prefix]))
    if not rows or rows[0]["revoked_at"] or not hmac.compare_digest(rows[0]["secret_hash"], _hash(secret)):
        return None
    # "Last used" is shown to the minute; refreshing it on every request would put a write (and
    # SQLite's write lock) on every API call.
    if (rows[0]["last_used_at"] or "") < ago(1):
        db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [now(), rows[0]["id"]])
    return ApiKey(rows[0]["id"], rows[0]["user_id"], rows[0]["scope"], bool(rows[0]["store"]))


def for_user(db: sqlite_utils.Database, user_id: str) -> list[dict[str, Any]]:
    return [public(r) for r in db.query("SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at", [user_id])]


def revoke(db: sqlite_utils.Database, key_id: str, user_id: str | None = None) -> bool:
    """Revoke a key (only the owner's, when user_id is given)."""
    sql = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
    args: list[Any] = [now(), key_id]
    if user_id is not None:
        sql += " AND user_id = ?"
        args.append(user_id)
    return bool(db.execute(sql, args).rowcount)


def revoke_all(db: sqlite_utils.Database, user_id: str) -> int:
    """Every live key of a user: when they sign out everywhere, change their password, or an admin
    resets it (a key made by whoever had the account must not outlive the account's recovery)."""
    return db.execute("UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", [now(), user_id]).rowcount
