"""The options one upload can carry, as a person gives them: the one list every door shares.

Kept apart from options.py (which resolves models and needs the ASR engine's module) so the CLI and the
Python client can use it without loading the recognition stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec


class OptionsError(ValueError):
    """An option is malformed or cannot be honoured; the message names it."""


class UploadOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every option one upload can carry, whichever door it comes through: the REST API's form fields
    and `options` JSON, the OpenAI-compatible API's extra form fields, the CLI's flags and the Python
    client's arguments are all these names (tests check that each door offers every one). Values are as a
    person gives them (None: not given, the configured default holds); `parse` checks them against the
    settings and the installed models, with a message that names the option."""

    model: str | None = None  # one model id, or several comma-separated to compare them on one upload
    language: str | None = None  # a code such as "en", or "auto" to detect it
    task: str | None = None  # "transcribe", or "translate" to English
    word_timestamps: bool | None = None
    vad_filter: bool | None = None
    beam_size: int | None = None
    initial_prompt: str | None = None  # context for the decoder: names, spelling, style
    hotwords: str | None = None  # words to favour
    temperature: float | None = None
    priority: int | None = None  # queue priority, -10 to 10
    diarize: bool | None = None
    diarization_engine: str | None = None
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    channel_names: str | None = None  # with diarization_engine=channel: "agent,customer", one name a channel
    private: bool | None = None  # sealed to the owner's key as recognition ends
    sentences: bool | None = None  # sentence-sized segments (the default); false keeps the decoder's own

    def fields(self) -> dict[str, Any]:
        """The options that were given, by name (what the API's form carries)."""
        return {name: value for name, value in msgspec.structs.asdict(self).items() if value is not None}

    @classmethod
    def of(cls, given: Mapping[str, Any]) -> UploadOptions:
        """From keyword arguments (the client); an unknown name or a wrong type is refused here, before any upload."""
        try:
            return msgspec.convert(dict(given), cls)
        except msgspec.ValidationError as exc:
            raise OptionsError(f"{exc}; known options: {', '.join(UPLOAD_OPTION_NAMES)}") from None


UPLOAD_OPTION_NAMES: tuple[str, ...] = UploadOptions.__struct_fields__
