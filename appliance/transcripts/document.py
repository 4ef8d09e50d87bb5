"""The transcript document: one typed shape for what the store reads back, the API answers, the exports
render, a private transcript seals and the JSON export writes (docs/transcript.schema.json is made from it).

msgspec Structs rather than dataclasses because Litestar encodes them natively, `msgspec.convert` checks
a document that arrives as JSON (an import, a client reading the API) field by field with a readable error,
and the JSON Schema comes from the same definition, so the three cannot drift apart.

Times are seconds from the start of the recording. Fields a particular copy does not carry (a sealed
document has no database ids, a public share page has no file name or owner) are None, never absent, so
every reader sees the same keys.
"""

from __future__ import annotations

from typing import Any

import msgspec

SCHEMA_ID = "sotto.transcript/v1"


class Word(msgspec.Struct, kw_only=True):
    start: float
    end: float
    word: str  # as the recogniser wrote it, usually with its leading space
    probability: float | None = None
    speaker: str | None = None
    edited: bool = False  # typed by a person, so its timing was estimated from its neighbours
    estimated: bool = False


class Segment(msgspec.Struct, kw_only=True):
    id: int  # position in the transcript, from 0
    start: float
    end: float
    text: str
    speaker: str | None = None
    note: str = ""
    words: list[Word] = msgspec.field(default_factory=list)
    # The segment's database row: what edits address. None in a sealed document (the server has no rows).
    sid: int | None = None
    # The recogniser's own scores for the segment (None where it gave none, or after an edit rewrote it).
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    # Share (0..1) of the segment's speech the speaker engine gave to `speaker`; None without diarization
    # or after an edit. Low values are shown as doubtful in the editor.
    speaker_confidence: float | None = None


class Speaker(msgspec.Struct, kw_only=True):
    id: str  # the key segments and words refer to ("S1")
    label: str  # what the engine called it ("Speaker 1")
    display_name: str | None = None  # set by a person

    @property
    def name(self) -> str:
        return self.display_name or self.label


class TranscriptSummary(msgspec.Struct, kw_only=True):
    """What a list of transcripts shows: everything but the text."""

    id: str
    title: str | None = None
    language: str | None = None
    language_probability: float | None = None
    duration: float = 0.0
    model: str | None = None
    task: str = "transcribe"
    filename: str | None = None  # None on public share pages: a file name often says what a recording is about
    size_bytes: int | None = None
    job_id: str | None = None
    workspace_id: str | None = None
    created_by: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    revision: int = 1  # counts saved edits; an edit names the revision it was made on
    private: bool = False


class Transcript(TranscriptSummary, kw_only=True):
    text: str = ""
    note: str = ""
    # As submitted (model, language, diarize, ...): the job options of appliance.transcription.options.
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    timings: dict[str, float] = msgspec.field(default_factory=dict)  # seconds per pipeline stage
    diarization: dict[str, Any] | None = None  # the speaker engine's report, when it ran
    speakers: list[Speaker] = msgspec.field(default_factory=list)
    segments: list[Segment] = msgspec.field(default_factory=list)

    def speaker_names(self) -> dict[str, str]:
        """Speaker id → what people see: the display name once someone set it, else "Speaker N"."""
        return {s.id: s.name for s in self.speakers}


class DocumentError(ValueError):
    """A document given as JSON does not have the transcript's shape; the message names the field."""


def from_builtins(raw: object) -> Transcript:
    """A document decoded from JSON (an import, an API answer) checked against the schema."""
    try:
        return msgspec.convert(raw, Transcript)
    except msgspec.ValidationError as exc:
        raise DocumentError(f"not a Sotto transcript: {exc}") from None


def to_builtins(doc: Transcript) -> dict[str, Any]:
    """Plain dicts and lists, for json.dumps and for templates that embed the document."""
    out: dict[str, Any] = msgspec.to_builtins(doc)
    return out


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the JSON export (docs/transcript.schema.json is this, checked by a test)."""
    schema: dict[str, Any] = msgspec.json.schema(Transcript)
    # The export names its schema in a field of its own; the API's document has no such field.
    transcript = schema["$defs"]["Transcript"]
    transcript["properties"] = {"schema": {"const": SCHEMA_ID}, **transcript["properties"]}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
