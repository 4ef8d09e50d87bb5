"""Append-only schema steps. Never edit a step that has shipped: add a new one."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations

migrations = Migrations("appliance")


@migrations(name="0001_jobs_and_transcripts")
def _initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            priority INTEGER NOT NULL DEFAULT 0,
            filename TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            content_type TEXT,
            models TEXT NOT NULL,            -- JSON list of model names
            options TEXT NOT NULL,           -- JSON of the per-job options
            stage TEXT,                      -- decoding | transcribing
            progress REAL NOT NULL DEFAULT 0,
            duration REAL,                   -- audio seconds, known after decoding
            eta_seconds REAL,
            error TEXT,
            transcript_ids TEXT NOT NULL DEFAULT '[]',
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX jobs_queue ON jobs (state, priority DESC, created_at)")
    db.execute(
        """
        CREATE TABLE transcripts (
            id TEXT PRIMARY KEY,
            job_id TEXT,
            filename TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            model TEXT NOT NULL,
            task TEXT NOT NULL,
            language TEXT,
            language_probability REAL,
            duration REAL NOT NULL,
            text TEXT NOT NULL,
            options TEXT NOT NULL,           -- JSON of the options the job ran with
            timings TEXT NOT NULL,           -- JSON: decode/asr/total seconds
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX transcripts_created ON transcripts (created_at DESC)")
    db.execute(
        """
        CREATE TABLE segments (
            id INTEGER PRIMARY KEY,
            transcript_id TEXT NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            text TEXT NOT NULL,
            speaker TEXT,
            avg_logprob REAL,
            no_speech_prob REAL
        )
        """
    )
    db.execute("CREATE INDEX segments_transcript ON segments (transcript_id, position)")
    db.execute(
        """
        CREATE TABLE words (
            id INTEGER PRIMARY KEY,
            segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            word TEXT NOT NULL,
            probability REAL,
            speaker TEXT
        )
        """
    )
    db.execute("CREATE INDEX words_segment ON words (segment_id, position)")


@migrations(name="0002_speakers")
def _speakers(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE speakers (
            id INTEGER PRIMARY KEY,
            transcript_id TEXT NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            key TEXT NOT NULL,               -- what words and segments store ("S1")
            label TEXT NOT NULL,             -- "Speaker 1"
            display_name TEXT,               -- set by people later; words are never rewritten
            position INTEGER NOT NULL,
            UNIQUE (transcript_id, key)
        )
        """
    )
    db.execute("ALTER TABLE transcripts ADD COLUMN diarization TEXT")  # JSON: engine, speakers, turns


def apply(db: sqlite_utils.Database) -> None:
    """Bring the schema up to date; safe to call at every start."""
    migrations.apply(db)
