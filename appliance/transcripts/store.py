"""Transcripts: store a recognition result, read it back as the one transcript document, delete it."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from appliance.core.clock import new_id, now
from appliance.core.db import checkpoint, like_pattern, transaction
from appliance.transcription import jobs
from appliance.transcription.asr import AsrResult
from appliance.transcription.diarization.merge import Speaker as FoundSpeaker
from appliance.transcripts.document import Segment, Speaker, Transcript, Word


def store(
    db: sqlite_utils.Database,
    result: AsrResult,
    *,
    job_id: str | None,
    filename: str,
    size_bytes: int,
    model: str,
    options: dict[str, Any],
    timings: dict[str, float],
    speakers: list[FoundSpeaker] | None = None,
    diarization: dict[str, Any] | None = None,
    user_id: str | None = None,
    workspace_id: str | None = None,
) -> str:
    """Write the transcript, its segments and words in one transaction; return its id."""
    transcript_id = new_id()
    stamp = now()
    with transaction(db):
        db.table("transcripts").insert(
            {
                "id": transcript_id,
                "job_id": job_id,
                "filename": filename,
                "size_bytes": size_bytes,
                "model": model,
                "task": options.get("task", "transcribe"),
                "language": result.language,
                "language_probability": result.language_probability,
                "duration": result.duration,
                "text": " ".join(s.text for s in result.segments if s.text),
                "options": json.dumps(options),
                "timings": json.dumps({k: round(v, 4) for k, v in timings.items()}),
                "created_at": stamp,
                "updated_at": stamp,
                "diarization": json.dumps(diarization) if diarization else None,
                "user_id": user_id,
                "workspace_id": workspace_id,
            }
        )
        db.conn.executemany(
            "INSERT INTO speakers (transcript_id, key, label, position) VALUES (?, ?, ?, ?)",
            [(transcript_id, s.id, s.label, i) for i, s in enumerate(speakers or [])],
        )
        for position, seg in enumerate(result.segments):
            scores = seg.scores
            cursor = db.execute(
                "INSERT INTO segments (transcript_id, position, start, end, text, speaker, avg_logprob, no_speech_prob, "
                "seek, temperature, compression_ratio, tokens, speaker_confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    transcript_id,
                    position,
                    seg.start,
                    seg.end,
                    seg.text,
                    seg.speaker,
                    seg.avg_logprob,
                    seg.no_speech_prob,
                    scores.seek if scores else None,
                    scores.temperature if scores else None,
                    scores.compression_ratio if scores else None,
                    json.dumps(list(scores.tokens)) if scores and scores.tokens is not None else None,
                    seg.speaker_confidence,
                ],
            )
            segment_id = cursor.lastrowid
            db.conn.executemany(
                "INSERT INTO words (segment_id, position, start, end, word, probability, speaker) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(segment_id, i, w.start, w.end, w.word, w.probability, w.speaker) for i, w in enumerate(seg.words)],
            )
    return transcript_id


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "job_id": row["job_id"],
        "filename": row["filename"],
        "size_bytes": row["size_bytes"],
        "model": row["model"],
        "task": row["task"],
        "language": row["language"],
        "language_probability": row["language_probability"],
        "duration": row["duration"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "workspace_id": row["workspace_id"],
        "created_by": row["user_id"],
        "title": row["title"] or row["filename"],
        "revision": row["revision"],
        "private": bool(row["private"]),
    }


def get(db: sqlite_utils.Database, transcript_id: str) -> Transcript | None:
    """The transcript document: the API's answer, the CLI's JSON output and the JSON export."""
    rows = list(db.query("SELECT * FROM transcripts WHERE id = ?", [transcript_id]))
    if not rows:
        return None
    row = rows[0]
    segments: list[Segment] = []
    by_id: dict[int, Segment] = {}
    for seg in db.query(
        "SELECT id, start, end, text, speaker, note, avg_logprob, no_speech_prob, speaker_confidence FROM segments "
        "WHERE transcript_id = ? "
        "ORDER BY position",
        [transcript_id],
    ):
        segment = Segment(
            id=len(segments),
            sid=seg["id"],
            start=seg["start"],
            end=seg["end"],
            text=seg["text"],
            speaker=seg["speaker"],
            note=seg["note"] or "",
            avg_logprob=seg["avg_logprob"],
            no_speech_prob=seg["no_speech_prob"],
            speaker_confidence=seg["speaker_confidence"],
        )
        by_id[seg["id"]] = segment
        segments.append(segment)
    for word in db.query(
        "SELECT w.segment_id, w.start, w.end, w.word, w.probability, w.speaker, w.edited, w.estimated FROM words w "
        "JOIN segments s ON s.id = w.segment_id WHERE s.transcript_id = ? ORDER BY s.position, w.position",
        [transcript_id],
    ):
        by_id[word["segment_id"]].words.append(
            Word(
                start=word["start"],
                end=word["end"],
                word=word["word"],
                probability=word["probability"],
                speaker=word["speaker"],
                edited=bool(word["edited"]),
                estimated=bool(word["estimated"]),
            )
        )
    speakers = [
        Speaker(id=r["key"], label=r["label"], display_name=r["display_name"])
        for r in db.query(
            "SELECT key, label, display_name FROM speakers WHERE transcript_id = ? ORDER BY position", [transcript_id]
        )
    ]
    return Transcript(
        **_summary(row),
        text=row["text"],
        note=row["note"] or "",
        options=json.loads(row["options"]),
        timings=json.loads(row["timings"]),
        diarization=json.loads(row["diarization"]) if row["diarization"] else None,
        speakers=speakers,
        segments=segments,
    )


def list_page(db: sqlite_utils.Database, *, limit: int, offset: int, workspace_ids: list[str] | None = None) -> dict[str, Any]:
    """Newest first; only the given workspaces when `workspace_ids` is not None."""
    where, args = "", []
    if workspace_ids is not None:
        where = f"WHERE workspace_id IN ({', '.join('?' for _ in workspace_ids)})" if workspace_ids else "WHERE 0"
        args = list(workspace_ids)
    total = next(iter(db.query(f"SELECT count(*) AS n FROM transcripts {where}", args)))["n"]
    rows = db.query(
        f"SELECT * FROM transcripts {where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?", [*args, limit, offset]
    )
    return {"items": [_summary(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def segment_scores(db: sqlite_utils.Database, transcript_id: str) -> dict[int, dict[str, Any]]:
    """Segment row id (a segment's `sid`) -> the decoder's figures (avg_logprob, no_speech_prob, seek, temperature,
    compression_ratio, tokens), each None where it is not known."""
    out = {}
    for r in db.query(
        "SELECT id, avg_logprob, no_speech_prob, seek, temperature, compression_ratio, tokens FROM segments "
        "WHERE transcript_id = ?",
        [transcript_id],
    ):
        out[r["id"]] = {
            **{k: r[k] for k in ("avg_logprob", "no_speech_prob", "seek", "temperature", "compression_ratio")},
            "tokens": json.loads(r["tokens"]) if r["tokens"] else None,
        }
    return out


def row(db: sqlite_utils.Database, transcript_id: str) -> dict[str, Any] | None:
    """The ownership columns only (for authorisation)."""
    rows = list(db.query("SELECT id, user_id, workspace_id FROM transcripts WHERE id = ?", [transcript_id]))
    return rows[0] if rows else None


def purge_older_than(db: sqlite_utils.Database, cutoff: str) -> int:
    """Retention: delete transcripts created before `cutoff` (ISO time), for good."""
    ids = [r["id"] for r in db.query("SELECT id FROM transcripts WHERE created_at < ?", [cutoff])]
    for transcript_id in ids:
        delete(db, transcript_id)
    return len(ids)


def delete(db: sqlite_utils.Database, transcript_id: str) -> bool:
    """Remove the transcript for good: rows (cascade), its job's metadata once no transcript of that
    job is left, freed pages zeroed (secure_delete), WAL truncated."""
    rows = list(db.query("SELECT job_id FROM transcripts WHERE id = ?", [transcript_id]))
    if not rows:
        return False
    with transaction(db):
        db.execute("DELETE FROM transcripts WHERE id = ?", [transcript_id])
        if rows[0]["job_id"]:
            jobs.forget_if_orphaned(db, rows[0]["job_id"])
        drop_deleted_terms(db)
    checkpoint(db)
    return True


def transfer_owner(db: sqlite_utils.Database, from_user: str, to_user: str, from_workspace: str, to_workspace: str) -> int:
    """A leaving user's standard transcripts become another user's: those in the leaver's personal
    workspace move to the new owner's, those in shared workspaces stay where they are. Private ones are
    sealed to the leaver's key, which nobody else holds: they are not moved (they go with the account)."""
    return db.execute(
        "UPDATE transcripts SET user_id = ?, workspace_id = CASE WHEN workspace_id = ? THEN ? ELSE workspace_id END "
        "WHERE user_id = ? AND private = 0",
        [to_user, from_workspace, to_workspace, from_user],
    ).rowcount


def drop_deleted_terms(db: sqlite_utils.Database) -> None:
    """After any delete of segments (one transcript, a whole account, a conversion to private): the
    triggers only add 'delete' markers to the search index, which keeps the old term lists; merging its
    b-trees drops them for good (SQLite 3.40 has no FTS5 secure-delete option). Then checkpoint."""
    db.execute("INSERT INTO segments_fts(segments_fts) VALUES ('optimize')")
    db.execute("INSERT INTO segments_grams(segments_grams) VALUES ('optimize')")


SORTS = {
    "date": "t.created_at",
    "title": "lower(coalesce(t.title, t.filename))",
    "duration": "t.duration",
    "language": "t.language",
    "model": "t.model",
}


def library(
    db: sqlite_utils.Database,
    *,
    workspace_ids: list[str],
    sort: str = "date",
    descending: bool = True,
    text: str = "",
    language: str | None = None,
    model: str | None = None,
    limit: int = 25,
    offset: int = 0,
) -> dict[str, Any]:
    """The library page: visible transcripts with speaker counts, sorted and filtered."""
    if not workspace_ids:
        return {"items": [], "total": 0, "limit": limit, "offset": offset}
    where = [f"t.workspace_id IN ({', '.join('?' for _ in workspace_ids)})"]
    args: list[Any] = [*workspace_ids]
    if text:
        pattern = like_pattern(text)
        where.append("(coalesce(t.title, t.filename) LIKE ? ESCAPE '\\' OR t.filename LIKE ? ESCAPE '\\')")
        args += [pattern, pattern]
    if language:
        where.append("t.language = ?")
        args.append(language)
    if model:
        where.append("t.model = ?")
        args.append(model)
    clause = " AND ".join(where)
    total = next(iter(db.query(f"SELECT count(*) AS n FROM transcripts t WHERE {clause}", args)))["n"]
    order = f"{SORTS.get(sort, SORTS['date'])} {'DESC' if descending else 'ASC'}, t.rowid DESC"
    rows = db.query(
        f"SELECT t.*, (SELECT count(*) FROM speakers s WHERE s.transcript_id = t.id) AS speaker_count "
        f"FROM transcripts t WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
        [*args, limit, offset],
    )
    return {
        "items": [{**_summary(r), "speaker_count": r["speaker_count"]} for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def facets(db: sqlite_utils.Database, workspace_ids: list[str]) -> dict[str, list[str]]:
    """The languages and models present, for the library's filter menus."""
    if not workspace_ids:
        return {"languages": [], "models": []}
    marks = ", ".join("?" for _ in workspace_ids)

    def distinct(column: str) -> list[str]:
        return [
            r["v"]
            for r in db.query(
                f"SELECT DISTINCT {column} AS v FROM transcripts WHERE workspace_id IN ({marks}) AND {column} IS NOT NULL ORDER BY v",
                workspace_ids,
            )
        ]

    return {"languages": distinct("language"), "models": distinct("model")}


def for_job(db: sqlite_utils.Database, job_id: str) -> list[str]:
    """The transcripts one job produced (several when it ran several models), oldest first."""
    return [r["id"] for r in db.query("SELECT id FROM transcripts WHERE job_id = ? ORDER BY created_at, rowid", [job_id])]
