"""Response shapes for the JSON API; Litestar turns them into the OpenAPI document."""

from __future__ import annotations

from typing import Any

import msgspec


class Word(msgspec.Struct):
    start: float
    end: float
    word: str
    probability: float | None
    speaker: str | None = None
    edited: bool = False  # changed by a person; its time may be estimated
    estimated: bool = False  # its time was shared out from its neighbours, not recognised


class Segment(msgspec.Struct):
    id: int
    start: float
    end: float
    text: str
    words: list[Word]
    speaker: str | None = None
    sid: int | None = None  # stable across edits (id is the position)
    note: str = ""


class Speaker(msgspec.Struct):
    id: str
    label: str
    display_name: str | None


class TranscriptSummary(msgspec.Struct):
    id: str
    job_id: str | None
    filename: str
    size_bytes: int
    model: str
    task: str
    language: str | None
    language_probability: float | None
    duration: float
    created_at: str
    updated_at: str
    workspace_id: str | None = None
    created_by: str | None = None
    title: str | None = None
    revision: int = 1
    private: bool = False


class Transcript(TranscriptSummary, kw_only=True):
    text: str
    options: dict[str, Any]
    note: str = ""
    timings: dict[str, float]
    diarization: dict[str, Any] | None
    speakers: list[Speaker]
    segments: list[Segment]


class TranscriptPage(msgspec.Struct):
    items: list[TranscriptSummary]
    total: int
    limit: int
    offset: int


class Job(msgspec.Struct):
    id: str
    job_id: str
    state: str
    stage: str | None
    progress: float
    eta_seconds: float | None
    duration: float | None
    priority: int
    filename: str
    size_bytes: int
    models: list[str]
    options: dict[str, Any]
    error: str | None
    cancel_requested: bool
    created_at: str
    started_at: str | None
    finished_at: str | None
    transcript_id: str | None
    transcript_ids: list[str]
    workspace_id: str | None = None


class Model(msgspec.Struct):
    id: str
    source: str
    multilingual: bool
    languages: str | list[str]
    tasks: list[str]
    size_bytes: int
    default: bool
    revision: str | None = None  # a model pack's version; None for the embedded model and plain directories


class DiarizationEngines(msgspec.Struct):
    default: str
    available: list[str]
    problems: dict[str, str]


class ModelList(msgspec.Struct):
    models: list[Model]
    problems: dict[str, str]
    diarization: DiarizationEngines


class Health(msgspec.Struct):
    status: str
    worker_alive: bool
    queued_jobs: int
    audio_bytes_in_memory: int
    audio_memory_capacity: int
