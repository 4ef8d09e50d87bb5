"""OpenAI-compatible speech API: /v1/audio/transcriptions, /v1/audio/translations, /v1/models.

Existing tools written against OpenAI's API work by changing the base URL and key. Results are also
stored as transcripts in the caller's workspace, unless the request says `store=false` or the API key was
made not to keep results.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.exceptions import HTTPException
from litestar.response import ServerSentEvent, ServerSentEventMessage

from appliance.transcription import jobs
from appliance.transcription.options import OptionsError
from appliance.transcription.upload_options import UPLOAD_OPTION_NAMES
from appliance.transcripts import exports
from appliance.transcripts import store as transcripts
from appliance.transcripts.document import Transcript
from appliance.transcripts.exports.model import speaker_names
from appliance.web.api import submit_upload
from appliance.web.auth import principal_of
from appliance.web.offload import off_loop

# OpenAI model names map to the configured default model; installed model names work as themselves.
ALIASES = {
    "whisper-1",
    "gpt-transcribe",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-4o-mini-transcribe-2025-12-15",
}
RESPONSE_FORMATS = {"json", "text", "srt", "verbose_json", "vtt", "diarized_json"}
WAIT_SECONDS = 1.0
DELTA_SEPARATOR = " "  # stored text is the segments' texts joined by one space
LANGUAGE_NAMES = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "nl": "dutch",
    "pt": "portuguese",
    "ru": "russian",
    "zh": "chinese",
    "ja": "japanese",
    "ar": "arabic",
    "hi": "hindi",
    "bn": "bengali",
    "gu": "gujarati",
    "pl": "polish",
    "tr": "turkish",
    "ko": "korean",
    "uk": "ukrainian",
}


# Every upload option but those OpenAI's API names itself (and the task, which is the endpoint's).
EXTRA_OPTIONS = tuple(n for n in UPLOAD_OPTION_NAMES if n not in {"model", "language", "initial_prompt", "temperature", "task"})


def _bool_field(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _openai_fields(task: str) -> Any:
    def mapper(request: Request[Any, Any, Any], form: dict[str, str]) -> tuple[dict[str, Any], str | None]:
        model = (form.get("model") or "").strip()
        if not model:
            raise OptionsError("you must provide a model parameter")
        fmt = form.get("response_format", "json")
        if fmt not in RESPONSE_FORMATS:
            raise OptionsError(f"response_format must be one of {', '.join(sorted(RESPONSE_FORMATS))}")
        granularities = set(
            filter(None, (form.get("timestamp_granularities[]") or form.get("timestamp_granularities") or "").split(","))
        )
        if granularities - {"word", "segment"}:
            raise OptionsError("timestamp_granularities must be word and/or segment")
        # The decoder's own segments by default: OpenAI's clients judge each one by its tokens and scores.
        raw: dict[str, Any] = {"task": task, "word_timestamps": True, "sentences": False}
        if model not in ALIASES:
            raw["model"] = model
        if form.get("language"):
            raw["language"] = form["language"]
        if form.get("prompt"):
            raw["initial_prompt"] = form["prompt"]
        if form.get("temperature"):
            raw["temperature"] = form["temperature"]
        if fmt == "diarized_json" or model.endswith("diarize"):
            raw["diarize"] = True
        # Sotto's own options ride along as extra form fields (`extra_body` in OpenAI's SDKs), by the
        # names every other door uses; OpenAI's own names (model, language, prompt, temperature) win.
        raw.update({k: form[k] for k in EXTRA_OPTIONS if form.get(k)})
        if _bool_field(raw.get("private")):
            raise OptionsError(
                "private=true is not offered here: a private transcript is sealed to your key and opens only "
                "in your browser, so this API could not return its text. Use POST /api/v1/transcriptions."
            )
        request.state.openai = {
            "format": fmt,
            "granularities": granularities,
            "stream": form.get("stream", "false").lower() == "true",
            "store": form.get("store", "true").lower() != "false" and principal_of(request).key_stores,
        }
        return raw, None

    return mapper


async def _finished(request: Request[Any, Any, Any], job_id: str) -> Transcript:
    services = request.app.state.services
    while True:
        row = await services.databases.in_thread(jobs.get, job_id)
        if row is None or row["state"] in jobs.TERMINAL:
            break
        await services.notifier.wait(job_id, WAIT_SECONDS)
    if row is None or row["state"] != "done":
        reason = row["error"] if row else "The job disappeared."
        raise HTTPException(
            status_code=400 if row and row["state"] == "failed" else 500, detail=reason or "The transcription failed."
        )
    doc = await services.databases.in_thread(transcripts.get, json.loads(row["transcript_ids"])[0])
    assert doc is not None
    return doc


async def _forget(request: Request[Any, Any, Any], doc: Transcript) -> None:
    if not request.state.openai["store"]:
        await request.app.state.services.databases.in_thread(transcripts.delete, doc.id)


SCORE_FIELDS = ("seek", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob")


def _verbose(doc: Transcript, task: str, granularities: set[str], scores: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """OpenAI's verbose_json. Each segment's scores are the decoder's own (clients drop hallucinated
    segments by them); a figure that is not known (a segment split at a speaker change keeps its
    parent's, one made by editing has none) is left out rather than invented."""
    body: dict[str, Any] = {
        "task": task,
        "language": LANGUAGE_NAMES.get(doc.language or "", doc.language or ""),
        "duration": doc.duration,
        "text": doc.text,
    }
    if not granularities or "segment" in granularities:
        body["segments"] = [
            {
                "id": s.id,
                "start": s.start,
                "end": s.end,
                "text": " " + s.text,
                **{
                    k: v
                    for k, v in (scores.get(s.sid, {}) if s.sid is not None else {}).items()
                    if k in SCORE_FIELDS and v is not None
                },
            }
            for s in doc.segments
        ]
    if "word" in granularities:
        body["words"] = [{"word": w.word.strip(), "start": w.start, "end": w.end} for s in doc.segments for w in s.words]
    return body


def _diarized(doc: Transcript) -> dict[str, Any]:
    names = speaker_names(doc)
    letters = {key: chr(ord("A") + i) if i < 26 else key for i, key in enumerate(names)}
    return {
        "task": "transcribe",
        "duration": doc.duration,
        "text": doc.text,
        "segments": [
            {
                "id": f"seg_{s.id}",
                "type": "transcript.text.segment",
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "speaker": letters.get(s.speaker or "", "A"),
            }
            for s in doc.segments
        ],
        "usage": {"type": "duration", "seconds": doc.duration},
    }


def _respond(
    doc: Transcript, fmt: str, task: str, granularities: set[str], scores: dict[int, dict[str, Any]] | None = None
) -> Response[Any]:
    if fmt == "json":
        return Response({"text": doc.text, "usage": {"type": "duration", "seconds": doc.duration}})
    if fmt == "verbose_json":
        return Response(_verbose(doc, task, granularities, scores or {}))
    if fmt == "diarized_json":
        return Response(_diarized(doc))
    if fmt == "text":
        return Response(doc.text + "\n", media_type="text/plain; charset=utf-8")
    export = exports.render(doc, fmt, exports.ExportOptions(speakers=False))
    return Response(export.content, media_type=export.media_type)


def _event(body: dict[str, Any]) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=json.dumps(body, ensure_ascii=False))


async def _stream(request: Request[Any, Any, Any], job_id: str) -> AsyncIterator[ServerSentEventMessage]:
    """`transcript.text.delta` events as the model decodes each segment, then `transcript.text.done`.

    The deltas joined are the final text; should the stored text differ from what was streamed, the done
    event's `text` is the one to keep (as in OpenAI's API). A job that fails ends with an error event,
    which OpenAI's clients raise as an APIError.
    """
    services = request.app.state.services
    sent, pieces = "", 0
    try:
        while True:
            row = await services.databases.in_thread(jobs.get, job_id)
            for piece in services.partials.read(job_id, pieces):
                delta = piece if not sent else DELTA_SEPARATOR + piece
                sent, pieces = sent + delta, pieces + 1
                yield _event({"type": "transcript.text.delta", "delta": delta})
            if row is None or row["state"] in jobs.TERMINAL:
                break
            await services.notifier.wait(job_id, WAIT_SECONDS)
        try:
            doc = await _finished(request, job_id)
        except HTTPException as exc:
            yield _event({"type": "error", "error": {"message": exc.detail, "type": "invalid_request_error", "code": None}})
            return
        if doc.text.startswith(sent) and len(doc.text) > len(sent):  # segments decoded before we watched
            yield _event({"type": "transcript.text.delta", "delta": doc.text[len(sent) :]})
        yield _event({"type": "transcript.text.done", "text": doc.text, "usage": {"type": "duration", "seconds": doc.duration}})
        await _forget(request, doc)
    finally:
        services.partials.forget(job_id)


async def _handle(request: Request[Any, Any, Any], task: str) -> Response[Any] | ServerSentEvent:
    row = await submit_upload(request, _openai_fields(task))
    settings = request.state.openai
    if settings["stream"]:
        request.app.state.services.partials.watch(row["id"])
        return ServerSentEvent(_stream(request, row["id"]))
    doc = await _finished(request, row["id"])
    scores = (
        await request.app.state.services.databases.in_thread(transcripts.segment_scores, doc.id)
        if settings["format"] == "verbose_json"
        else {}
    )
    response = _respond(doc, settings["format"], task, settings["granularities"], scores)
    await _forget(request, doc)
    return response


@post(
    "/audio/transcriptions",
    opt={"scope": "transcribe"},
    request_max_body_size=None,
    status_code=200,
    summary="OpenAI-compatible transcription",
    tags=["openai"],
)
async def audio_transcriptions(request: Request[Any, Any, Any]) -> Response[Any] | ServerSentEvent:
    return await _handle(request, "transcribe")


@post(
    "/audio/translations",
    opt={"scope": "transcribe"},
    request_max_body_size=None,
    status_code=200,
    summary="OpenAI-compatible translation to English",
    tags=["openai"],
)
async def audio_translations(request: Request[Any, Any, Any]) -> Response[Any] | ServerSentEvent:
    return await _handle(request, "translate")


@get("/models", summary="OpenAI-compatible model list", tags=["openai"])
@off_loop
def openai_models(request: Request[Any, Any, Any]) -> dict[str, Any]:
    models, _ = request.app.state.services.registry.scan()
    ids = [*sorted(ALIASES), *models]
    return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "sotto"} for i in ids]}


def openai_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Errors in OpenAI's shape, so their clients raise their usual exception types."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", None) or str(exc) or "Internal error"
    kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}.get(
        status, "invalid_request_error" if status < 500 else "server_error"
    )
    return Response(
        {"error": {"message": detail, "type": kind, "param": None, "code": getattr(exc, "code", None)}},
        status_code=status,
        headers=getattr(exc, "headers", None) or {},
    )


router = Router(
    path="/v1",
    route_handlers=[audio_transcriptions, audio_translations, openai_models],
    exception_handlers={HTTPException: openai_error},
)
