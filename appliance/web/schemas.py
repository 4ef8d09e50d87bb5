"""Response shapes for the JSON API; Litestar turns them into the OpenAPI document. The transcript
itself is the one typed document of appliance.transcripts.document, re-exported here."""

from __future__ import annotations

from typing import Any

import msgspec

from appliance.transcripts.document import Segment, Speaker, Transcript, TranscriptSummary, Word

__all__ = ["Segment", "Speaker", "Transcript", "TranscriptSummary", "Word"]


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
    node: str | None = None  # cluster mode: the worker node that ran (or runs) the job
    attempts: int = 0  # cluster mode: 2 when a worker node stopped and the job was run again on another


class Model(msgspec.Struct):
    id: str
    source: str
    multilingual: bool
    languages: str | list[str]
    tasks: list[str]
    size_bytes: int
    default: bool
    revision: str | None = None  # a model pack's version; None for the embedded model and plain directories
    kind: str = "asr"  # speech recognition


class TextModel(msgspec.Struct):
    """A text-generation model for summaries and questions (appliance/assist)."""

    id: str
    source: str
    chat_template: str
    context_length: int
    size_bytes: int
    licence: str
    in_use: bool  # the one summaries use now (assist.model, or the first found)
    kind: str = "llm"


class DiarizationEngines(msgspec.Struct):
    default: str
    available: list[str]
    problems: dict[str, str]


class ModelList(msgspec.Struct):
    models: list[Model]
    problems: dict[str, str]
    diarization: DiarizationEngines
    text_models: list[TextModel] = msgspec.field(default_factory=list)
    assist: dict[str, Any] = msgspec.field(default_factory=dict)  # available (or why not), model, where


class Health(msgspec.Struct):
    status: str
    worker_alive: bool
    queued_jobs: int
    audio_bytes_in_memory: int
    audio_memory_capacity: int
