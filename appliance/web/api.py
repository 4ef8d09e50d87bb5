"""JSON API under /api/v1: thin handlers over the domain modules."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from appliance.accounts import audit, authz
from appliance.app.intake import Recording
from appliance.assist import store as summaries_store
from appliance.assist.engine import find_model as find_text_model
from appliance.assist.engine import scan as scan_text_models
from appliance.core.clock import now
from appliance.core.db import checkpoint
from appliance.integrations import webhooks
from appliance.transcription import jobs
from appliance.transcription.options import KNOWN, OptionsError, merge_json
from appliance.transcripts import exports
from appliance.transcripts import store as transcripts
from appliance.transcripts.analytics import SpeakerAnalytics, speaker_analytics
from appliance.transcripts.document import Transcript
from appliance.transcripts.exports.document_formats import FontsMissing
from appliance.web import intake, schemas
from appliance.web.auth import principal_of
from appliance.web.deps import attachment, services_of, visible_transcript
from appliance.web.errors import DOMAIN_ERRORS, as_http
from appliance.web.i18n import N_, Detail, reader_for
from appliance.web.offload import off_loop

EVENT_WAIT_SECONDS = 1.0
OPTION_FIELDS = tuple(sorted(KNOWN))


@dataclass
class UploadOperation(Operation):
    """Documents the upload body, which the handler streams itself instead of letting Litestar parse it."""

    def __post_init__(self) -> None:
        option_props = {name: Schema(type=OpenAPIType.STRING) for name in OPTION_FIELDS}
        self.request_body = RequestBody(
            required=True,
            description=(
                "A multipart form with the recording in a `file` field and options as fields (or one `options` "
                "JSON field); or the raw recording as the body with options in the query string."
            ),
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["file"],
                        properties={
                            "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY),
                            "options": Schema(type=OpenAPIType.STRING),
                            **option_props,
                        },
                    )
                ),
                "application/octet-stream": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)),
            },
        )


def _job_or_404(request: Request, job_id: str, *, change: bool = False) -> dict[str, Any]:
    db = services_of(request).databases.get()
    row = jobs.get(db, job_id)
    if row is None:
        raise NotFoundException(detail=Detail(N_("No job with id %(id)s."), id=repr(job_id)))
    try:
        (authz.can_change if change else authz.can_read)(db, principal_of(request), row)
    except authz.NotVisible:
        raise NotFoundException(detail=Detail(N_("No job with id %(id)s."), id=repr(job_id))) from None
    return row


def _job(row: dict[str, Any]) -> schemas.Job:
    return msgspec.convert(jobs.document(row), schemas.Job)


@post(
    "/api/v1/transcriptions",
    status_code=202,
    request_max_body_size=None,  # intake enforces the configured caps while streaming
    operation_class=UploadOperation,
    summary="Upload a recording and queue it for transcription",
    tags=["transcription"],
    opt={"scope": "transcribe"},
)
async def create_transcription(request: Request) -> schemas.Job:
    return _job(await submit_upload(request, _native_fields))


def _native_fields(request: Request, form: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """This API's own option fields: form fields win over the query string; one `options` JSON field."""
    unknown = set(form) - set(OPTION_FIELDS) - {"options", "workspace_id"}
    if unknown:
        raise OptionsError(f"unknown form field {sorted(unknown)[0]!r}")
    fields: dict[str, Any] = {k: v for k, v in request.query_params.items() if k in OPTION_FIELDS}
    fields.update({k: v for k, v in form.items() if k in OPTION_FIELDS})
    return merge_json(fields, form.get("options") or request.query_params.get("options")), form.get("workspace_id")


FieldMapper = Callable[[Request, dict[str, str]], tuple[dict[str, Any], str | None]]


async def submit_upload(request: Request, field_mapper: FieldMapper) -> dict[str, Any]:
    """Shared by this API and the OpenAI-compatible one; `field_mapper` turns the form into options.

    The use case (appliance/app/intake.py) reserves a slot before a byte is read, then checks and queues;
    this handler's part is reading the body into memory as it arrives (on the event loop) and HTTP.
    """
    services = services_of(request)
    uploads = services.uploads
    if uploads is None:
        raise RuntimeError("the upload intake is made with the app (create_app)")
    principal = principal_of(request)
    hint = request.query_params.get("workspace_id")
    retry_after = services.settings.server.retry_after_seconds
    try:
        slot = await uploads.reserve(principal, hint)
        try:
            received = await intake.read(request, services.vault, retry_after)
            try:
                raw, form_workspace = field_mapper(request, received.fields)
            except BaseException:
                received.upload.discard()
                raise
            recording = Recording(received.upload, received.filename, received.content_type)
            return await uploads.submit(slot, principal, recording, raw, form_workspace or hint)
        finally:
            slot.release()
    except DOMAIN_ERRORS as exc:
        raise as_http(exc, retry_after) from None


@get("/api/v1/jobs/{job_id:str}", summary="A job's state, progress and result ids", tags=["transcription"])
@off_loop
def get_job(request: Request, job_id: FromPath[str]) -> schemas.Job:
    return _job(_job_or_404(request, job_id))


@get("/api/v1/jobs/{job_id:str}/events", summary="Server-sent progress events until the job ends", tags=["transcription"])
async def job_events(request: Request, job_id: FromPath[str]) -> ServerSentEvent:
    services = services_of(request)
    await services.databases.in_thread(lambda _db: _job_or_404(request, job_id))

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        last: str | None = None
        while True:
            seen = services.notifier.version(job_id)  # before the read: a change after it wakes the wait below
            row = await services.databases.in_thread(jobs.get, job_id)
            if row is None:  # deleted while watching
                yield ServerSentEventMessage(event="gone", data=json.dumps({"id": job_id}))
                return
            doc = jobs.document(row)
            payload = json.dumps(doc)
            if payload != last:
                last = payload
                yield ServerSentEventMessage(event=doc["state"] if doc["state"] in jobs.TERMINAL else "progress", data=payload)
            if doc["state"] in jobs.TERMINAL:
                return
            # Woken by the worker on each change; the timeout also catches changes made by other
            # requests (a cancel) and a client that went away.
            await services.notifier.wait(job_id, EVENT_WAIT_SECONDS, since=seen)

    return ServerSentEvent(stream())


@delete(
    "/api/v1/jobs/{job_id:str}",
    status_code=200,
    tags=["transcription"],
    summary="Cancel a queued or running job; remove an ended one's record (file name, options, error)",
    opt={"scope": "transcribe"},
)
@off_loop
def cancel_job(request: Request, job_id: FromPath[str]) -> schemas.Job:
    services = services_of(request)
    before = _job_or_404(request, job_id, change=True)
    if before["state"] in ("done", "failed", "cancelled"):
        # Nothing to cancel: the owner wants the record gone. A done job's record stays while any of its
        # transcripts does (it is their provenance); it goes with the last of them.
        db = services.databases.get()
        jobs.forget_if_orphaned(db, job_id)
        checkpoint(db)
        return _job(before)
    row = jobs.request_cancel(services.databases.get(), job_id)
    if row is not None and row["state"] == "cancelled":
        services.vault.release(job_id)  # a queued job's audio is dropped at once
    services.notifier.changed(job_id)
    return _job(row)  # type: ignore[arg-type]


@get("/api/v1/transcripts", summary="Transcripts, newest first", tags=["transcripts"])
@off_loop
def list_transcripts(
    request: Request,
    limit: int = Parameter(default=50, ge=1, le=500),
    offset: int = Parameter(default=0, ge=0, le=1_000_000_000),
    workspace_id: FromQuery[str | None] = None,
) -> schemas.TranscriptPage:
    db = services_of(request).databases.get()
    visible = authz.visible_workspace_ids(db, principal_of(request))
    if workspace_id is not None:
        visible = [w for w in visible if w == workspace_id]
    page = transcripts.list_page(db, limit=limit, offset=offset, workspace_ids=visible)
    return msgspec.convert(page, schemas.TranscriptPage)


def _transcript_or_404(request: Request, transcript_id: str) -> Transcript:
    visible_transcript(request, transcript_id)
    doc = transcripts.get(services_of(request).databases.get(), transcript_id)
    if doc is None:
        raise NotFoundException(detail=Detail(N_("No transcript with id %(id)s."), id=repr(transcript_id)))
    return doc


PRIVATE_EXPORT = N_(
    "Transcript %(id)s is private: the server cannot read it, so it cannot export it. Open it in your "
    "browser, unlock it, and export from its page."
)


def _exportable(doc: Transcript) -> Transcript:
    """An export of a private transcript would be an empty file that looks complete: refuse instead."""
    if doc.private:
        raise HTTPException(status_code=409, detail=Detail(PRIVATE_EXPORT, id=doc.id))
    return doc


@get(
    "/api/v1/transcripts/{transcript_id:str}",
    summary="One transcript with segments and word timings",
    tags=["transcripts"],
)
@off_loop
def get_transcript(request: Request, transcript_id: FromPath[str]) -> Transcript:
    return _transcript_or_404(request, transcript_id)


@get(
    "/api/v1/transcripts/{transcript_id:str}/speakers/analytics",
    summary="Talk time, turns, longest monologue and interruptions per speaker",
    tags=["transcripts"],
)
@off_loop
def transcript_speaker_analytics(request: Request, transcript_id: FromPath[str]) -> SpeakerAnalytics:
    return speaker_analytics(_exportable(_transcript_or_404(request, transcript_id)))


@get(
    "/api/v1/transcripts/{transcript_id:str}/export",
    summary="The transcript as TXT, SRT, VTT, JSON, Markdown, CSV, DOCX or PDF",
    description="Options as query parameters: timestamps, speakers, max_chars_per_line, max_lines, "
    "max_cue_seconds, min_gap_seconds, vtt_voice_tags; lang (a UI language such as de or zh_Hans) puts the "
    "headings and labels of TXT, Markdown, CSV, DOCX and PDF in that language (default: a signed-in "
    "person's language; English for an API key).",
    tags=["transcripts"],
    media_type="application/octet-stream",
)
@off_loop
def export_transcript(
    request: Request,
    transcript_id: FromPath[str],
    format: str = Parameter(default="txt", pattern="^(txt|srt|vtt|json|md|csv|docx|pdf)$"),
    summary: bool = Parameter(
        default=True, description="DOCX, PDF, Markdown, JSON: include the latest AI summary when there is one"
    ),
) -> Response[bytes]:
    doc = _exportable(_transcript_or_404(request, transcript_id))
    options = _export_options(request)
    reader = reader_for(request)
    digest = None
    if summary and not doc.private:
        stored = summaries_store.get(services_of(request).databases.get(), transcript_id)
        digest = summaries_store.digest(stored, doc) if stored is not None else None
    try:
        export = exports.render(doc, format, options, digest, reader)
    except FontsMissing as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    return Response(
        export.content,
        media_type=export.media_type,
        headers={"Content-Disposition": attachment(f"{exports.safe_stem(doc)}.{format}")},
    )


def _export_options(request: Request) -> exports.ExportOptions:
    raw = {k: v for k, v in request.query_params.items() if k not in {"format", "formats", "ids", "summary", "lang"}}
    try:
        return exports.ExportOptions.parse(raw)
    except exports.OptionsError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


class BulkExport(msgspec.Struct):
    # Bounded at decoding: a request cannot name more work than 500 transcripts in each format once.
    ids: Annotated[list[str], msgspec.Meta(max_length=500)]
    formats: Annotated[list[str], msgspec.Meta(max_length=len(exports.FORMATS))] = msgspec.field(default_factory=lambda: ["txt"])


BULK_EXPORT_MAX_BYTES = 512 * 2**20  # the zip is built in RAM (never on disk): past this, the request fails
_bulk_exports = threading.BoundedSemaphore(2)  # PDFs take a CPU each: at most two bulk exports at once


async def _client_left(request: Request, gone: threading.Event) -> None:
    """Set `gone` when the client disconnects (the body is already read, so the next message is that)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


@post(
    "/api/v1/transcripts/export",
    summary="Several transcripts in chosen formats, as one zip",
    tags=["transcripts"],
    media_type="application/zip",
    status_code=200,
)
async def bulk_export(request: Request, data: JSONBody[BulkExport]) -> Response[bytes]:
    if not data.ids or len(data.ids) > 500:
        raise HTTPException(status_code=400, detail=N_("Give from 1 to 500 transcript ids."))
    unknown = [f for f in data.formats if f not in exports.FORMATS]
    if unknown or not data.formats:
        raise HTTPException(
            status_code=400, detail=Detail(N_("formats must be among %(formats)s"), formats=", ".join(exports.FORMATS))
        )
    formats = list(dict.fromkeys(data.formats))
    ids = list(dict.fromkeys(data.ids))
    docs = await services_of(request).databases.in_thread(
        lambda _db: [_exportable(_transcript_or_404(request, transcript_id)) for transcript_id in ids]
    )
    if not _bulk_exports.acquire(blocking=False):
        raise HTTPException(
            status_code=503, detail=N_("Other bulk exports are running; try again in a minute."), headers={"Retry-After": "30"}
        )
    gone = threading.Event()
    watcher = asyncio.create_task(_client_left(request, gone))
    try:
        options, reader = _export_options(request), reader_for(request)
        content = await asyncio.to_thread(
            exports.bundle, docs, formats, options, stop=gone.is_set, max_bytes=BULK_EXPORT_MAX_BYTES, reader=reader
        )
    except FontsMissing as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    except exports.BundleStopped as exc:
        raise HTTPException(
            status_code=413, detail=Detail(N_("Export stopped: %(reason)s. Export fewer transcripts at once."), reason=str(exc))
        ) from None
    finally:
        watcher.cancel()
        _bulk_exports.release()
    await services_of(request).databases.in_thread(
        audit.record,
        "transcripts.exported",
        actor=principal_of(request).user.email,
        detail={"count": len(docs), "formats": formats},
    )
    return Response(content, media_type="application/zip", headers={"Content-Disposition": attachment("transcripts.zip")})


@delete(
    "/api/v1/transcripts/{transcript_id:str}",
    status_code=204,
    summary="Delete a transcript permanently",
    tags=["transcripts"],
    opt={"scope": "transcribe"},
)
@off_loop
def delete_transcript(request: Request, transcript_id: FromPath[str]) -> None:
    row = visible_transcript(request, transcript_id, change=True)
    services = services_of(request)
    db = services.databases.get()
    if not transcripts.delete(db, transcript_id):
        raise NotFoundException(detail=Detail(N_("No transcript with id %(id)s."), id=repr(transcript_id)))
    principal = principal_of(request)
    audit.record(db, "transcript.deleted", actor=principal.user.email, target=transcript_id)
    data = {"transcript_id": transcript_id, "deleted_at": now()}
    if webhooks.enqueue(db, row["workspace_id"], "transcript.deleted", transcript_id, data) and services.webhooks:
        services.webhooks.wake()


@get("/api/v1/models", summary="Models this appliance can run", tags=["models"])
@off_loop
def list_models(request: Request) -> schemas.ModelList:
    services = services_of(request)
    models, problems = services.registry.scan()
    default = services.settings.models.default_model
    engines = services.engines.status()
    text_models, text_problems = scan_text_models(services.settings.models.models_dir)
    problems = {**problems, **text_problems}
    assist = services.assistant.describe()
    in_use = assist.get("model") if assist.get("where") == "this appliance" else None
    if in_use and in_use not in text_models:  # named by a path outside the models directory
        text_models[in_use] = find_text_model(services.settings.models.models_dir, services.settings.assist.model)
    return schemas.ModelList(
        models=[schemas.Model(**m.describe(), default=(name == default)) for name, m in models.items()],
        problems=problems,
        diarization=schemas.DiarizationEngines(
            default=services.engines.default_name(),
            available=[name for name, problem in engines.items() if problem is None],
            problems={name: problem for name, problem in engines.items() if problem is not None},
        ),
        text_models=[
            schemas.TextModel(**{k: v for k, v in m.describe().items() if k != "kind"}, in_use=(name == in_use))
            for name, m in text_models.items()
        ],
        assist=assist,
    )


@get(
    "/metrics",
    summary="Prometheus metrics (any signed-in caller; use a read-scoped key for the scraper)",
    tags=["health"],
    media_type="text/plain; version=0.0.4",
)
@off_loop
def metrics(request: Request) -> Response[bytes]:
    return Response(services_of(request).metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@get("/healthz", summary="Liveness and queue state", tags=["health"], opt={"public": True})
@off_loop
def healthz(request: Request) -> Response[schemas.Health]:
    services = services_of(request)
    alive = services.worker.alive()
    health = schemas.Health(
        status="ok" if alive else "degraded",
        worker_alive=alive,
        queued_jobs=jobs.count_waiting(services.databases.get()),
        audio_bytes_in_memory=services.vault.used,
        audio_memory_capacity=services.vault.capacity,
    )
    return Response(health, status_code=200 if alive else 503)


ROUTES = [
    create_transcription,
    get_job,
    job_events,
    cancel_job,
    list_transcripts,
    get_transcript,
    transcript_speaker_analytics,
    export_transcript,
    bulk_export,
    delete_transcript,
    list_models,
    metrics,
    healthz,
]
