"""Revisions: earlier versions of a transcript, kept so the editor's history survives a reload.

Before a save changes a transcript, its editable state (title, note, speakers, segments with their
words, notes and timing) as it stood at the current revision is stored whole, as a `Snapshot`. A full
copy rather than a diff: viewing or restoring one revision is a single read, pruning the oldest is a
plain DELETE, and no chain of diffs can break. The retention bound (`retention.revisions_per_transcript`)
caps the size. Restoring writes the snapshot back as a new revision, after keeping the state it
replaces, so a restore loses nothing either.

Private transcripts are sealed in the browser; the server holds only their ciphertext and keeps no
revisions of them (the editor says so).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import sqlite_utils

from appliance.core.clock import now
from appliance.core.db import transaction

ORIGINAL = "As transcribed"
OLDER_SHOWN = 10  # revisions no longer kept that the history still names


class SnapshotSpeaker(msgspec.Struct):
    key: str
    label: str
    display_name: str | None


class SnapshotSegment(msgspec.Struct):
    start: float
    end: float
    text: str
    speaker: str | None
    note: str
    avg_logprob: float | None
    no_speech_prob: float | None
    speaker_confidence: float | None
    # Each word: [text, start, end, probability, edited, estimated, speaker]; arrays rather than objects
    # keep a snapshot of an hour-long recording about half the size.
    words: list[tuple[str, float, float, float | None, bool, bool, str | None]]


class Snapshot(msgspec.Struct):
    title: str | None
    note: str
    text: str
    speakers: list[SnapshotSpeaker]
    segments: list[SnapshotSegment]


class RevisionInfo(msgspec.Struct):
    revision: int
    at: str
    by: str | None  # the editor's e-mail; None for the transcription itself or a deleted account
    description: str
    current: bool
    viewable: bool  # False when the retention bound has dropped this version's copy


class RevisionList(msgspec.Struct):
    current: int
    private: bool
    kept: int  # the retention bound
    items: list[RevisionInfo]
    older: int = 0  # earlier revisions left out of `items` (long gone from the history's copies)


class NotKept(LookupError):
    """No copy of that revision is kept (never existed, or dropped by the retention bound)."""


def snapshot(db: sqlite_utils.Database, transcript_id: str) -> Snapshot:
    """The transcript's editable state now."""
    row = next(iter(db.query("SELECT title, note, text FROM transcripts WHERE id = ?", [transcript_id])))
    words: dict[int, list[tuple[str, float, float, float | None, bool, bool, str | None]]] = {}
    for w in db.query(
        "SELECT w.segment_id, w.word, w.start, w.end, w.probability, w.edited, w.estimated, w.speaker FROM words w "
        "JOIN segments s ON s.id = w.segment_id WHERE s.transcript_id = ? ORDER BY w.segment_id, w.position",
        [transcript_id],
    ):
        words.setdefault(w["segment_id"], []).append(
            (w["word"], w["start"], w["end"], w["probability"], bool(w["edited"]), bool(w["estimated"]), w["speaker"])
        )
    segments = [
        SnapshotSegment(
            start=s["start"],
            end=s["end"],
            text=s["text"],
            speaker=s["speaker"],
            note=s["note"] or "",
            avg_logprob=s["avg_logprob"],
            no_speech_prob=s["no_speech_prob"],
            speaker_confidence=s["speaker_confidence"],
            words=words.get(s["id"], []),
        )
        for s in db.query("SELECT * FROM segments WHERE transcript_id = ? ORDER BY position, id", [transcript_id])
    ]
    speakers = [
        SnapshotSpeaker(key=r["key"], label=r["label"], display_name=r["display_name"])
        for r in db.query(
            "SELECT key, label, display_name FROM speakers WHERE transcript_id = ? ORDER BY position", [transcript_id]
        )
    ]
    return Snapshot(title=row["title"], note=row["note"] or "", text=row["text"], speakers=speakers, segments=segments)


def keep(db: sqlite_utils.Database, transcript_id: str, revision: int, *, limit: int) -> None:
    """Store the state at `revision` (call inside the save's transaction, before changing anything),
    then drop the oldest copies beyond `limit`."""
    db.execute(
        "INSERT OR REPLACE INTO transcript_revisions (transcript_id, revision, snapshot) VALUES (?, ?, ?)",
        [transcript_id, revision, msgspec.json.encode(snapshot(db, transcript_id)).decode()],
    )
    db.execute(
        "DELETE FROM transcript_revisions WHERE transcript_id = ? AND revision NOT IN "
        "(SELECT revision FROM transcript_revisions WHERE transcript_id = ? ORDER BY revision DESC LIMIT ?)",
        [transcript_id, transcript_id, limit],
    )


def describe(ops: list[dict[str, Any]]) -> str:
    """A short line for the history, such as "Edited 3 segments, renamed a speaker"."""
    segments = len({op.get("sid") for op in ops if op.get("op") == "segment"})
    counts = {kind: sum(1 for op in ops if op.get("op") == kind) for kind in ("split", "merge", "rename_speaker", "add_speaker")}
    parts = []
    if segments:
        parts.append(f"edited {segments} segment{'s' if segments != 1 else ''}")
    if counts["split"]:
        parts.append("split a segment" if counts["split"] == 1 else f"split {counts['split']} segments")
    if counts["merge"]:
        parts.append("merged two segments" if counts["merge"] == 1 else f"made {counts['merge']} merges")
    if counts["add_speaker"]:
        parts.append("added a speaker" if counts["add_speaker"] == 1 else f"added {counts['add_speaker']} speakers")
    if counts["rename_speaker"]:
        parts.append("renamed a speaker" if counts["rename_speaker"] == 1 else f"renamed {counts['rename_speaker']} speakers")
    if any(op.get("op") == "merge_speakers" for op in ops):
        parts.append("merged speakers")
    if any(op.get("op") == "note" for op in ops):
        parts.append("changed the note")
    if any(op.get("op") == "title" for op in ops):
        parts.append("changed the title")
    line = ", ".join(parts) or "edited"
    return line[0].upper() + line[1:]


def history(db: sqlite_utils.Database, transcript_id: str, *, limit: int) -> RevisionList:
    """Newest first: the current revision, then every earlier one the history knows of."""
    row = next(iter(db.query("SELECT revision, private, created_at, updated_at FROM transcripts WHERE id = ?", [transcript_id])))
    current = row["revision"]
    kept = {r["revision"] for r in db.query("SELECT revision FROM transcript_revisions WHERE transcript_id = ?", [transcript_id])}
    edits = {
        r["revision"]: r
        for r in db.query(
            "SELECT e.revision, e.at, e.description, u.email FROM transcript_edits e LEFT JOIN users u ON u.id = e.user_id "
            "WHERE e.transcript_id = ?",
            [transcript_id],
        )
    }
    items = []
    for revision in sorted(kept | set(edits) | {current}, reverse=True):
        edit = edits.get(revision)
        if edit is None and revision != 1:
            at, by, description = (row["updated_at"] if revision == current else ""), None, "Edited"
        elif edit is None:
            at, by, description = row["created_at"], None, ORIGINAL
        else:
            at, by, description = edit["at"], edit["email"], edit["description"] or "Edited"
        viewable = (revision == current and not row["private"]) or revision in kept  # a private one's text is ciphertext
        if not viewable and not edit:
            continue
        items.append(RevisionInfo(revision, at, by, description, revision == current, viewable))
    # Autosave makes many revisions in a long session: past the kept ones, name only a few that are gone.
    shown = limit + 1 + OLDER_SHOWN
    return RevisionList(
        current=current, private=bool(row["private"]), kept=limit, items=items[:shown], older=max(0, len(items) - shown)
    )


def at_revision(db: sqlite_utils.Database, transcript_id: str, revision: int) -> Snapshot:
    """The state at `revision` (the current one is read live). Raises NotKept."""
    rows = list(db.query("SELECT revision, private FROM transcripts WHERE id = ?", [transcript_id]))
    if rows and not rows[0]["private"] and rows[0]["revision"] == revision:
        return snapshot(db, transcript_id)
    stored = list(
        db.query("SELECT snapshot FROM transcript_revisions WHERE transcript_id = ? AND revision = ?", [transcript_id, revision])
    )
    if not stored:
        raise NotKept(f"Revision {revision} of this transcript is not kept.")
    return msgspec.json.decode(stored[0]["snapshot"], type=Snapshot)


def restore(db: sqlite_utils.Database, transcript_id: str, revision: int, *, user_id: str | None, limit: int) -> int:
    """Make `revision`'s state the transcript's state again, as a new revision; return its number.
    The state it replaces is kept first, so the restore can itself be undone from the history."""
    with transaction(db):
        row = next(iter(db.query("SELECT revision, private FROM transcripts WHERE id = ?", [transcript_id])))
        if row["private"]:
            raise NotKept("Private transcripts keep no revisions on the server.")
        current = row["revision"]
        if revision == current:
            raise NotKept(f"Revision {revision} is already the current version.")
        old = at_revision(db, transcript_id, revision)
        keep(db, transcript_id, current, limit=limit)
        # Speakers are updated in place, not deleted and re-added: a recognised voice hangs on its key.
        keys = {s.key for s in old.speakers}
        for gone in [r["key"] for r in db.query("SELECT key FROM speakers WHERE transcript_id = ?", [transcript_id])]:
            if gone not in keys:
                db.execute("DELETE FROM speakers WHERE transcript_id = ? AND key = ?", [transcript_id, gone])
        for position, speaker in enumerate(old.speakers):
            db.execute(
                "INSERT INTO speakers (transcript_id, key, label, display_name, position) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (transcript_id, key) DO UPDATE SET label = excluded.label, "
                "display_name = excluded.display_name, position = excluded.position",
                [transcript_id, speaker.key, speaker.label, speaker.display_name, position],
            )
        db.execute("DELETE FROM segments WHERE transcript_id = ?", [transcript_id])
        for position, seg in enumerate(old.segments):
            cursor = db.execute(
                "INSERT INTO segments (transcript_id, position, start, end, text, speaker, note, avg_logprob, no_speech_prob, "
                "speaker_confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    transcript_id,
                    position * 2,
                    seg.start,
                    seg.end,
                    seg.text,
                    seg.speaker,
                    seg.note,
                    seg.avg_logprob,
                    seg.no_speech_prob,
                    seg.speaker_confidence,
                ],
            )
            db.conn.executemany(
                "INSERT INTO words (segment_id, position, word, start, end, probability, edited, estimated, speaker) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(cursor.lastrowid, i, *w[:4], int(w[4]), int(w[5]), w[6]) for i, w in enumerate(seg.words)],
            )
        revision_now = current + 1
        stamp = now()
        db.execute(
            "UPDATE transcripts SET title = ?, note = ?, text = ?, revision = ?, updated_at = ? WHERE id = ?",
            [old.title, old.note, old.text, revision_now, stamp, transcript_id],
        )
        db.table("transcript_edits").insert(
            {
                "transcript_id": transcript_id,
                "revision": revision_now,
                "touched": json.dumps(["*"]),  # a whole-document change: conflicts with any other save
                "user_id": user_id,
                "at": stamp,
                "description": f"Restored revision {revision}",
            }
        )
    return revision_now
