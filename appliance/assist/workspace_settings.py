"""A workspace's AI settings, every version kept: the summary instructions its admins wrote (added to the
summary prompt of its transcripts) and whether each finished transcription there is summarised.

Saving and restoring both add a version; nothing is overwritten, so an admin can always see what the
summaries of a given day were asked for (a summary records the version it used)."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlite_utils

from appliance.core.clock import new_id, now
from appliance.core.db import transaction

MAX_INSTRUCTIONS = 2000  # characters: a paragraph or two; the model's context is for the transcript


class InvalidSettings(ValueError):
    """The settings as given cannot be stored; the message says why, in words a person understands."""


class WorkspaceAssist(msgspec.Struct, kw_only=True):
    version: int  # 0: never set (the defaults)
    instructions: str = ""
    auto_summarize: bool = False
    restored_from: int | None = None
    created_by: str | None = None  # the admin's e-mail (None for the defaults, or a deleted account)
    created_at: str | None = None


def clean_instructions(text: str) -> str:
    """Trimmed, with line ends unified; control characters other than newlines and tabs refused (they
    have no place in a prompt and are usually a paste accident)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > MAX_INSTRUCTIONS:
        raise InvalidSettings(f"The instructions are {len(text)} characters long; at most {MAX_INSTRUCTIONS} are allowed.")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise InvalidSettings("The instructions contain control characters; type or paste them as plain text.")
    return text


def _row(row: dict[str, Any]) -> WorkspaceAssist:
    return WorkspaceAssist(
        version=row["version"],
        instructions=row["instructions"],
        auto_summarize=bool(row["auto_summarize"]),
        restored_from=row["restored_from"],
        created_by=row["email"],
        created_at=row["created_at"],
    )


_SELECT = (
    "SELECT a.version, a.instructions, a.auto_summarize, a.restored_from, a.created_at, u.email "
    "FROM workspace_assist a LEFT JOIN users u ON u.id = a.created_by WHERE a.workspace_id = ?"
)


def current(db: sqlite_utils.Database, workspace_id: str | None) -> WorkspaceAssist:
    """The latest version, or the defaults (version 0: no instructions, no automatic summaries)."""
    if workspace_id is None:
        return WorkspaceAssist(version=0)
    rows = list(db.query(_SELECT + " ORDER BY a.version DESC LIMIT 1", [workspace_id]))
    return _row(rows[0]) if rows else WorkspaceAssist(version=0)


def get(db: sqlite_utils.Database, workspace_id: str, version: int) -> WorkspaceAssist | None:
    rows = list(db.query(_SELECT + " AND a.version = ?", [workspace_id, version]))
    return _row(rows[0]) if rows else None


def history(db: sqlite_utils.Database, workspace_id: str) -> list[WorkspaceAssist]:
    """Every version, newest first."""
    return [_row(r) for r in db.query(_SELECT + " ORDER BY a.version DESC", [workspace_id])]


def save(
    db: sqlite_utils.Database,
    workspace_id: str,
    *,
    instructions: str,
    auto_summarize: bool,
    user_id: str | None,
    restored_from: int | None = None,
) -> int:
    """Store a new version (instructions checked by clean_instructions); returns its number."""
    text = clean_instructions(instructions)
    with transaction(db):
        row = list(
            db.query("SELECT coalesce(max(version), 0) + 1 AS v FROM workspace_assist WHERE workspace_id = ?", [workspace_id])
        )
        version = int(row[0]["v"])
        db.execute(
            "INSERT INTO workspace_assist (id, workspace_id, version, instructions, auto_summarize, restored_from, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [new_id(), workspace_id, version, text, int(auto_summarize), restored_from, user_id, now()],
        )
    return version


def restore(db: sqlite_utils.Database, workspace_id: str, version: int, *, user_id: str | None) -> int | None:
    """A new version with an earlier one's content; None when there is no such version."""
    old = get(db, workspace_id, version)
    if old is None:
        return None
    return save(
        db,
        workspace_id,
        instructions=old.instructions,
        auto_summarize=old.auto_summarize,
        user_id=user_id,
        restored_from=version,
    )
