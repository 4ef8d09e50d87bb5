"""Summaries stored with their transcript: every version kept, newest first; never logged."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlite_utils

from appliance.assist.summaries import Summary
from appliance.core.clock import new_id, now
from appliance.core.db import transaction
from appliance.transcripts.document import Transcript
from appliance.transcripts.exports import Digest, DigestItem, DigestSection


class StoredSummary(msgspec.Struct, kw_only=True):
    version: int
    origin: str  # generated | edited
    model: str | None
    language: str | None
    created_at: str
    created_by: str | None
    summary: Summary


class VersionInfo(msgspec.Struct, kw_only=True):
    version: int
    origin: str
    model: str | None
    created_at: str


def add(db: sqlite_utils.Database, transcript_id: str, summary: Summary, *, origin: str, user_id: str | None) -> int:
    """Store a new version; returns its number."""
    with transaction(db):
        row = list(db.query("SELECT coalesce(max(version), 0) + 1 AS v FROM summaries WHERE transcript_id = ?", [transcript_id]))
        version = int(row[0]["v"])
        db.execute(
            "INSERT INTO summaries (id, transcript_id, version, origin, model, language, content, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                new_id(),
                transcript_id,
                version,
                origin,
                summary.model,
                summary.language,
                msgspec.json.encode(summary).decode(),
                user_id,
                now(),
            ],
        )
    return version


def _stored(row: dict[str, Any]) -> StoredSummary:
    return StoredSummary(
        version=row["version"],
        origin=row["origin"],
        model=row["model"],
        language=row["language"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        summary=msgspec.json.decode(row["content"], type=Summary),
    )


def get(db: sqlite_utils.Database, transcript_id: str, version: int | None = None) -> StoredSummary | None:
    """The given version, or the latest."""
    if version is None:
        rows = list(db.query("SELECT * FROM summaries WHERE transcript_id = ? ORDER BY version DESC LIMIT 1", [transcript_id]))
    else:
        rows = list(db.query("SELECT * FROM summaries WHERE transcript_id = ? AND version = ?", [transcript_id, version]))
    return _stored(rows[0]) if rows else None


def versions(db: sqlite_utils.Database, transcript_id: str) -> list[VersionInfo]:
    return [
        VersionInfo(version=r["version"], origin=r["origin"], model=r["model"], created_at=r["created_at"])
        for r in db.query(
            "SELECT version, origin, model, created_at FROM summaries WHERE transcript_id = ? ORDER BY version DESC",
            [transcript_id],
        )
    ]


def digest(stored: StoredSummary, doc: Transcript) -> Digest:
    """The stored summary as the DOCX, PDF, Markdown and JSON exports show it: cited moments as times."""
    start = {s.id: s.start for s in doc.segments}
    s = stored.summary

    def item(text: str, ids: list[int], detail: str = "") -> DigestItem:
        return DigestItem(text=text, at=tuple(start[i] for i in ids if i in start), detail=detail)

    sections = [
        DigestSection(title, tuple(item(c.text, c.segments) for c in claims))
        for title, claims in (("Key points", s.key_points), ("Decisions", s.decisions))
        if claims
    ]
    if s.action_items:
        details = [
            ", ".join(x for x in (a.owner and f"owner: {a.owner}", a.due and f"due: {a.due}") if x) for a in s.action_items
        ]
        sections.append(
            DigestSection(
                "Action items", tuple(item(a.text, a.segments, d) for a, d in zip(s.action_items, details, strict=True))
            )
        )
    if s.open_questions:
        sections.append(DigestSection("Open questions", tuple(item(c.text, c.segments) for c in s.open_questions)))
    if s.chapters:
        sections.append(DigestSection("Chapters", tuple(DigestItem(text=c.title, at=(c.start,)) for c in s.chapters)))
    made = (
        "edited by a person" if stored.origin == "edited" else f"written by {stored.model or 'the model'} on this appliance's AI"
    )
    footer = f"Summary version {stored.version}, {made}. " + (s.note or "")
    return Digest(
        summary=item(s.summary, s.summary_segments),
        sections=tuple(sections),
        footer=footer.strip(),
        data=msgspec.to_builtins(stored),
    )
