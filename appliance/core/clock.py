"""Timestamps and ids, in the one format every table uses (ISO 8601 UTC with milliseconds, so they sort
and compare as strings)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ago(minutes: float) -> str:
    """The timestamp `minutes` before now, in now()'s format (so the two compare as strings)."""
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return uuid.uuid4().hex
