"""Edits to a stored transcript: a batch of operations saved against a base revision.

Every save names the revision the editor started from. If the transcript moved on since, the batch
is still applied when it touches only parts nobody else changed (a rebase: two people editing
different segments never conflict); otherwise it is refused with `Conflict`, naming the current
revision, and nothing is written. `force` applies it anyway ("keep mine").
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from appliance.core.clock import now
from appliance.core.db import transaction
from appliance.transcripts import revisions

MAX_OPS = 2000
MAX_WORDS = 5000
MAX_TEXT = 20_000
MAX_WORD = 200
WHOLE = "*"  # a structural change (split, merge, speaker merge): conflicts with every other change


class EditError(ValueError):
    """The batch is malformed or refers to something that is not there; the message names it."""


@dataclass
class Conflict(Exception):
    current_revision: int
    touched: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"This transcript was changed elsewhere (now revision {self.current_revision}) in the same place you "
            "edited. Reload to see the other change, or save yours over it."
        )


def _text(value: Any, name: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise EditError(f"{name} must be a string")
    if len(value) > limit:
        raise EditError(f"{name} is longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise EditError(f"{name} contains control characters")
    return value


def _time(value: Any, name: str, duration: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EditError(f"{name} must be a number of seconds")
    if value < 0 or value > duration + 1:
        raise EditError(f"{name} must lie within the recording (0 to {duration:.1f} s)")
    return round(float(value), 3)


def _sid(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EditError("sid must be a segment's sid (an integer)")
    return value


def _words(value: Any, duration: float) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_WORDS:
        raise EditError(f"words must be a list of at most {MAX_WORDS} words")
    words = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise EditError(f"words[{i}] must be an object")
        text = _text(item.get("word"), f"words[{i}].word", MAX_WORD).strip()
        if not text or any(c.isspace() for c in text):
            raise EditError(f"words[{i}].word must be one word (no spaces, not empty)")
        start, end = _time(item.get("start"), f"words[{i}].start", duration), _time(item.get("end"), f"words[{i}].end", duration)
        if end < start:
            raise EditError(f"words[{i}] ends before it starts")
        probability = item.get("probability")
        if probability is not None and (isinstance(probability, bool) or not isinstance(probability, (int, float))):
            raise EditError(f"words[{i}].probability must be a number or null")
        words.append(
            {
                "word": " " + text,
                "start": start,
                "end": end,
                "probability": probability,
                "edited": bool(item.get("edited")),
                "estimated": bool(item.get("estimated")),
            }
        )
    return words


def _touched(op: dict[str, Any]) -> str:
    kind = op.get("op")
    if kind == "segment":
        return f"s:{op.get('sid')}"
    if kind in ("note", "title"):
        return kind
    if kind == "rename_speaker":
        return f"spk:{op.get('speaker')}"
    return WHOLE


class _Batch:
    """Applies one validated batch inside a transaction."""

    def __init__(self, db: sqlite_utils.Database, transcript: dict[str, Any]) -> None:
        self.db = db
        self.tid = transcript["id"]
        self.duration = float(transcript["duration"])

    def segment_row(self, sid: int) -> dict[str, Any]:
        rows = list(self.db.query("SELECT * FROM segments WHERE id = ? AND transcript_id = ?", [sid, self.tid]))
        if not rows:
            raise EditError(f"no segment with sid {sid} in this transcript")
        return rows[0]

    def speaker_keys(self) -> set[str]:
        return {r["key"] for r in self.db.query("SELECT key FROM speakers WHERE transcript_id = ?", [self.tid])}

    def write_words(self, sid: int, words: list[dict[str, Any]], speaker: str | None) -> None:
        self.db.execute("DELETE FROM words WHERE segment_id = ?", [sid])
        self.db.conn.executemany(
            "INSERT INTO words (segment_id, position, start, end, word, probability, speaker, edited, estimated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (sid, i, w["start"], w["end"], w["word"], w["probability"], speaker, int(w["edited"]), int(w["estimated"]))
                for i, w in enumerate(words)
            ],
        )

    def words_of(self, sid: int) -> list[dict[str, Any]]:
        return [
            {**r, "edited": bool(r["edited"]), "estimated": bool(r["estimated"])}
            for r in self.db.query(
                "SELECT word, start, end, probability, edited, estimated FROM words WHERE segment_id = ? ORDER BY position", [sid]
            )
        ]

    def segment(self, op: dict[str, Any]) -> None:
        sid = _sid(op.get("sid"))
        row = self.segment_row(sid)
        speaker = row["speaker"]
        if "speaker" in op:
            speaker = op["speaker"]
            if speaker is not None and speaker not in self.speaker_keys():
                raise EditError(f"no speaker {speaker!r} in this transcript")
        start = _time(op["start"], "start", self.duration) if "start" in op else row["start"]
        end = _time(op["end"], "end", self.duration) if "end" in op else row["end"]
        if end < start:
            raise EditError("a segment cannot end before it starts")
        note = _text(op["note"], "note") if "note" in op else row["note"]
        if "words" in op:
            words = _words(op["words"], self.duration)
            text = " " + " ".join(w["word"].strip() for w in words) if words else ""
        else:
            words, text = self.words_of(sid), row["text"]
        # A person who names the speaker settles the engine's doubt about it.
        confidence = row["speaker_confidence"] if speaker == row["speaker"] else None
        self.db.execute(
            "UPDATE segments SET start = ?, end = ?, speaker = ?, note = ?, text = ?, speaker_confidence = ? WHERE id = ?",
            [start, end, speaker, note, text, confidence, sid],
        )
        if "words" in op or "speaker" in op:
            self.write_words(sid, words, speaker)

    def renumber(self) -> None:
        ids = [
            r["id"] for r in self.db.query("SELECT id FROM segments WHERE transcript_id = ? ORDER BY position, id", [self.tid])
        ]
        self.db.conn.executemany("UPDATE segments SET position = ? WHERE id = ?", [(i * 2, sid) for i, sid in enumerate(ids)])

    def split(self, op: dict[str, Any]) -> None:
        """Words from `at` on move to a new segment right after this one, with the same speaker."""
        sid = _sid(op.get("sid"))
        row = self.segment_row(sid)
        words = self.words_of(sid)
        at = op.get("at")
        if isinstance(at, bool) or not isinstance(at, int) or not 0 < at < len(words):
            raise EditError(f"at must be a word index between 1 and {len(words) - 1}")
        self.renumber()
        row = self.segment_row(sid)
        head, tail = words[:at], words[at:]
        self.db.execute(
            "UPDATE segments SET end = ?, text = ? WHERE id = ?",
            [head[-1]["end"], " " + " ".join(w["word"].strip() for w in head), sid],
        )
        self.write_words(sid, head, row["speaker"])
        cursor = self.db.execute(
            "INSERT INTO segments (transcript_id, position, start, end, text, speaker, avg_logprob, no_speech_prob) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.tid,
                row["position"] + 1,
                tail[0]["start"],
                row["end"],
                " " + " ".join(w["word"].strip() for w in tail),
                row["speaker"],
                row["avg_logprob"],
                row["no_speech_prob"],
            ],
        )
        self.write_words(int(cursor.lastrowid or 0), tail, row["speaker"])
        self.renumber()

    def merge(self, op: dict[str, Any]) -> None:
        """This segment and the next become one; the first one's speaker stays."""
        sid = _sid(op.get("sid"))
        row = self.segment_row(sid)
        following = list(
            self.db.query(
                "SELECT * FROM segments WHERE transcript_id = ? AND (position > ? OR (position = ? AND id > ?)) "
                "ORDER BY position, id LIMIT 1",
                [self.tid, row["position"], row["position"], sid],
            )
        )
        if not following:
            raise EditError("the last segment has no next segment to merge with")
        nxt = following[0]
        words = self.words_of(sid) + self.words_of(nxt["id"])
        notes = "\n".join(n for n in (row["note"], nxt["note"]) if n)
        self.db.execute("DELETE FROM segments WHERE id = ?", [nxt["id"]])
        self.db.execute(
            "UPDATE segments SET end = ?, text = ?, note = ? WHERE id = ?",
            [max(row["end"], nxt["end"]), " " + " ".join(w["word"].strip() for w in words), notes, sid],
        )
        self.write_words(sid, words, row["speaker"])

    def rename_speaker(self, op: dict[str, Any]) -> None:
        key = op.get("speaker")
        if key not in self.speaker_keys():
            raise EditError(f"no speaker {key!r} in this transcript")
        name = _text(op.get("name", ""), "name", 100).strip()
        self.db.execute("UPDATE speakers SET display_name = ? WHERE transcript_id = ? AND key = ?", [name or None, self.tid, key])

    def add_speaker(self, op: dict[str, Any]) -> None:
        """A new speaker; the editor names its key (S<n>) so it can assign segments to it in the same batch."""
        name = _text(op.get("name", ""), "name", 100).strip()
        keys = self.speaker_keys()
        key = op.get("key")
        if key is None:
            n = len(keys) + 1
            while f"S{n}" in keys:
                n += 1
            key = f"S{n}"
        if not isinstance(key, str) or not re.fullmatch(r"S[1-9][0-9]{0,3}", key) or key in keys:
            raise EditError("key must be an unused speaker key such as 'S3'")
        position = next(
            iter(self.db.query("SELECT coalesce(max(position), -1) + 1 AS p FROM speakers WHERE transcript_id = ?", [self.tid]))
        )["p"]
        self.db.execute(
            "INSERT INTO speakers (transcript_id, key, label, display_name, position) VALUES (?, ?, ?, ?, ?)",
            [self.tid, key, f"Speaker {key[1:]}", name or None, position],
        )

    def merge_speakers(self, op: dict[str, Any]) -> None:
        source, target = op.get("from"), op.get("into")
        keys = self.speaker_keys()
        if source not in keys or target not in keys or source == target:
            raise EditError("from and into must be two different speakers of this transcript")
        self.db.execute("UPDATE segments SET speaker = ? WHERE transcript_id = ? AND speaker = ?", [target, self.tid, source])
        self.db.execute(
            "UPDATE words SET speaker = ? WHERE speaker = ? AND segment_id IN (SELECT id FROM segments WHERE transcript_id = ?)",
            [target, source, self.tid],
        )
        self.db.execute("DELETE FROM speakers WHERE transcript_id = ? AND key = ?", [self.tid, source])

    def note(self, op: dict[str, Any]) -> None:
        self.db.execute("UPDATE transcripts SET note = ? WHERE id = ?", [_text(op.get("text"), "note"), self.tid])

    def title(self, op: dict[str, Any]) -> None:
        title = _text(op.get("text"), "title", 200).strip()
        if not title:
            raise EditError("a title cannot be empty")
        self.db.execute("UPDATE transcripts SET title = ? WHERE id = ?", [title, self.tid])


OPS = {"segment", "split", "merge", "rename_speaker", "add_speaker", "merge_speakers", "note", "title"}


def apply(
    db: sqlite_utils.Database,
    transcript_id: str,
    *,
    base_revision: int,
    ops: list[dict[str, Any]],
    user_id: str | None,
    force: bool = False,
    keep_revisions: int = 50,
) -> dict[str, Any]:
    """Apply the batch; return {revision, rebased_over}. Raises EditError or Conflict, writing nothing.
    The state it replaces is kept as a revision (at most `keep_revisions` per transcript)."""
    if not isinstance(ops, list) or not ops or len(ops) > MAX_OPS:
        raise EditError(f"ops must be a list of 1 to {MAX_OPS} operations")
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or op.get("op") not in OPS:
            raise EditError(f"ops[{i}].op must be one of {', '.join(sorted(OPS))}")
    touched = sorted({_touched(op) for op in ops})
    with transaction(db):
        rows = list(db.query("SELECT id, duration, revision, private FROM transcripts WHERE id = ?", [transcript_id]))
        if not rows:
            raise EditError("no such transcript")
        transcript = rows[0]
        if transcript["private"]:
            raise EditError("a private transcript is edited in the browser and saved as an envelope")
        current = transcript["revision"]
        if base_revision > current or base_revision < 1:
            raise EditError(f"base_revision {base_revision} is not a revision of this transcript")
        others: set[str] = set()
        for r in db.query(
            "SELECT touched FROM transcript_edits WHERE transcript_id = ? AND revision > ?", [transcript_id, base_revision]
        ):
            others.update(json.loads(r["touched"]))
        if others and not force and (WHOLE in others or WHOLE in touched or others & set(touched)):
            raise Conflict(current, sorted(others))
        revisions.keep(db, transcript_id, current, limit=keep_revisions)
        batch = _Batch(db, transcript)
        for op in ops:
            getattr(batch, op["op"])(op)
        text = " ".join(
            r["text"].strip()
            for r in db.query("SELECT text FROM segments WHERE transcript_id = ? ORDER BY position, id", [transcript_id])
            if r["text"].strip()
        )
        revision = current + 1
        stamp = now()
        db.execute(
            "UPDATE transcripts SET revision = ?, text = ?, updated_at = ? WHERE id = ?", [revision, text, stamp, transcript_id]
        )
        db.table("transcript_edits").insert(
            {
                "transcript_id": transcript_id,
                "revision": revision,
                "touched": json.dumps(touched),
                "user_id": user_id,
                "at": stamp,
                "description": revisions.describe(ops),
            }
        )
    return {"revision": revision, "rebased_over": sorted(others), "updated_at": stamp}
