"""Per-job options: parsed and checked once, the same way for the API and the CLI."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from appliance.core.config import Settings
from appliance.transcription.asr import AsrOptions, ModelError, ModelInfo, ModelRegistry, check_options
from appliance.transcription.diarization import MAX_SPEAKERS, DiarizationError, DiarizationOptions
from appliance.transcription.diarization.engines import DiarizationEngines
from appliance.transcription.upload_options import UPLOAD_OPTION_NAMES, OptionsError, UploadOptions

__all__ = ["KNOWN", "JobOptions", "OptionsError", "UploadOptions", "parse"]

MAX_MODELS_PER_JOB = 4
MAX_PROMPT_CHARS = 2000
BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


# "models" is the JSON spelling of several models (a list), beside model="a,b".
KNOWN = {*UPLOAD_OPTION_NAMES, "models"}


@dataclass
class JobOptions:
    models: list[ModelInfo]
    asr: AsrOptions
    priority: int = 0
    diarization: DiarizationOptions | None = None  # None: no diarization
    private: bool = False  # sealed to the owner's public key when recognition ends (appliance/private/sealing.py)
    sentences: bool = True  # sentence-sized segments (segmentation.py); False keeps the decoder's own segments

    def stored(self) -> dict[str, Any]:
        """What is recorded with the job and the transcript (no model paths)."""
        stored = {
            **{k: v for k, v in asdict(self.asr).items() if k != "pieces_at_once"},  # how, not what: not recorded
            "priority": self.priority,
            "diarize": self.diarization is not None,
            "private": self.private,
            "sentences": self.sentences,
        }
        if self.diarization is not None:
            stored.update(
                diarization_engine=self.diarization.engine,
                num_speakers=self.diarization.num_speakers,
                min_speakers=self.diarization.min_speakers,
                max_speakers=self.diarization.max_speakers,
            )
            if self.diarization.channel_names:
                stored["channel_names"] = ",".join(self.diarization.channel_names)
        return stored


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in BOOL_WORDS:
        return BOOL_WORDS[value.strip().lower()]
    raise OptionsError(f"{name} must be true or false, not {value!r}")


def _int(name: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        raise OptionsError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return number


def _text(name: str, value: Any, limit: int) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise OptionsError(f"{name} must be text")
    if len(value) > limit:
        raise OptionsError(f"{name} is too long ({len(value)} characters; the limit is {limit})")
    return value


def _temperature(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise OptionsError(f"temperature must be a number from 0 to 1, not {value!r}")
    return number


def merge_json(fields: Mapping[str, Any], options_json: str | None) -> dict[str, Any]:
    """Combine plain form/query fields with an optional `options` JSON object (fields win)."""
    merged: dict[str, Any] = {}
    if options_json:
        try:
            parsed = json.loads(options_json)
        except json.JSONDecodeError as exc:
            raise OptionsError(f"options is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        if not isinstance(parsed, dict):
            raise OptionsError('options must be a JSON object, e.g. {"language": "en"}')
        merged.update(parsed)
    merged.update({k: v for k, v in fields.items() if v is not None})
    return merged


def parse(
    raw: Mapping[str, Any], settings: Settings, registry: ModelRegistry, engines: DiarizationEngines | None = None
) -> JobOptions:
    """Check every option and resolve the model names; raise OptionsError naming the bad one.

    With `engines`, a diarization engine that cannot run here is refused now, not after decoding.
    """
    unknown = sorted(set(raw) - KNOWN)
    if unknown:
        raise OptionsError(f"unknown option {unknown[0]!r}; known options: {', '.join(sorted(KNOWN))}")
    defaults = settings.transcription
    names = raw.get("models", raw.get("model")) or settings.models.default_model
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise OptionsError("model must be a model name, or a list of names")
    names = list(dict.fromkeys(names))
    if len(names) > MAX_MODELS_PER_JOB:
        raise OptionsError(f"at most {MAX_MODELS_PER_JOB} models per job, got {len(names)}")
    language = raw.get("language", defaults.language)
    if language is not None and not isinstance(language, str):
        raise OptionsError("language must be a language code such as 'en', or 'auto'")
    language = (language or "").strip().lower()
    asr = AsrOptions(
        language=None if language in {"", "auto"} else language,
        task=str(raw.get("task", defaults.task)),
        word_timestamps=_bool("word_timestamps", raw.get("word_timestamps", defaults.word_timestamps)),
        vad_filter=_bool("vad_filter", raw.get("vad_filter", defaults.vad_filter)),
        beam_size=_int("beam_size", raw.get("beam_size", defaults.beam_size), 1, 20),
        initial_prompt=_text("initial_prompt", raw.get("initial_prompt"), MAX_PROMPT_CHARS),
        hotwords=_text("hotwords", raw.get("hotwords"), MAX_PROMPT_CHARS),
        temperature=_temperature(raw.get("temperature")),
    )
    priority = _int("priority", raw.get("priority", 0), -10, 10)
    diarization = _diarization(raw)
    if diarization is not None and engines is not None:
        try:
            engines.get(diarization.engine)
        except DiarizationError as exc:
            raise OptionsError(str(exc)) from None
    models = []
    try:
        for name in names:
            model = registry.get(name)
            check_options(model, asr)
            models.append(model)
    except ModelError as exc:
        raise OptionsError(str(exc)) from None
    return JobOptions(
        models=models,
        asr=asr,
        priority=priority,
        diarization=diarization,
        private=_bool("private", raw.get("private", False)),
        sentences=_bool("sentences", raw.get("sentences", True)),
    )


def _diarization(raw: Mapping[str, Any]) -> DiarizationOptions | None:
    speaker_keys = ("diarization_engine", "num_speakers", "min_speakers", "max_speakers", "channel_names")
    wanted = _bool("diarize", raw.get("diarize", False))
    if not wanted:
        given = [k for k in speaker_keys if raw.get(k) not in (None, "")]
        if given:
            raise OptionsError(f"{given[0]} needs diarize=true")
        return None

    def count(name: str) -> int | None:
        value = raw.get(name)
        return None if value in (None, "") else _int(name, value, 1, MAX_SPEAKERS)

    engine = raw.get("diarization_engine") or None
    if engine is not None and engine not in {"pyannote", "embedded", "channel"}:
        raise OptionsError(f"diarization_engine must be pyannote, embedded or channel, not {engine!r}")
    names = raw.get("channel_names")
    if names not in (None, "") and not isinstance(names, str | list):
        raise OptionsError("channel_names must be names separated by commas, such as agent,customer")
    channel_names = None
    if names not in (None, ""):
        given = names.split(",") if isinstance(names, str) else [str(n) for n in names]
        channel_names = tuple(n.strip() for n in given)
    options = DiarizationOptions(
        engine, count("num_speakers"), count("min_speakers"), count("max_speakers"), channel_names=channel_names
    )
    try:
        options.validate()
    except DiarizationError as exc:
        raise OptionsError(str(exc)) from None
    return options
