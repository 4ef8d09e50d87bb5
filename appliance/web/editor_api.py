"""JSON API behind the web UI's editor, search and library: thin handlers over editing, search and
transcripts. Available to API keys too (an integration can correct a transcript the same way)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from appliance.accounts import audit, authz
from appliance.transcripts import editing, search
from appliance.transcripts import store as transcripts
from appliance.web.auth import principal_of
from appliance.web.deps import visible_transcript
from appliance.web.offload import off_loop


class EditBatch(msgspec.Struct):
    base_revision: int
    ops: list[dict[str, Any]]
    force: bool = False


class EditResult(msgspec.Struct):
    revision: int
    rebased_over: list[str]
    updated_at: str


class TranscriptIds(msgspec.Struct):
    ids: list[str]


class Keep(msgspec.Struct):
    transcript_id: str


@post(
    "/api/v1/transcripts/{transcript_id:str}/edits",
    opt={"scope": "transcribe"},
    status_code=200,
    tags=["transcripts"],
    summary="Save edits (word text and times, speakers, splits, merges, notes, title) against a base revision",
    description="409 with `current_revision` when the transcript changed elsewhere in the same place since "
    "`base_revision`; edits to other segments are applied on top (rebased). `force` saves over the other change.",
)
@off_loop
def save_edits(request: Request[Any, Any, Any], transcript_id: FromPath[str], data: JSONBody[EditBatch]) -> EditResult:
    visible_transcript(request, transcript_id, change=True)
    services = request.app.state.services
    principal = principal_of(request)
    try:
        result = editing.apply(
            services.databases.get(),
            transcript_id,
            base_revision=data.base_revision,
            ops=data.ops,
            user_id=principal.user.id,
            force=data.force,
        )
    except editing.Conflict as exc:
        raise HTTPException(
            status_code=409, detail=str(exc), extra={"current_revision": exc.current_revision, "touched": exc.touched}
        ) from None
    except editing.EditError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return EditResult(**result)


@get("/api/v1/search", tags=["transcripts"], summary="Full-text search across the transcripts you may see")
@off_loop
def search_transcripts(
    request: Request[Any, Any, Any],
    q: str = Parameter(max_length=500),
    language: str | None = Parameter(default=None, max_length=20),
    speaker: str | None = Parameter(default=None, max_length=100),
    date_from: Annotated[str | None, QueryParameter(name="from", pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    date_to: Annotated[str | None, QueryParameter(name="to", pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    limit: int = Parameter(default=50, ge=1, le=200),
    offset: int = Parameter(default=0, ge=0, le=100_000),
) -> dict[str, Any]:
    db = request.app.state.services.databases.get()
    visible = authz.visible_workspace_ids(db, principal_of(request))
    return search.search(
        db,
        q,
        workspace_ids=visible,
        language=language,
        speaker=speaker,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        offset=offset,
    )


@post(
    "/api/v1/transcripts/delete",
    opt={"scope": "transcribe"},
    status_code=200,
    tags=["transcripts"],
    summary="Delete several transcripts permanently (all or nothing: every id must be yours to delete)",
)
@off_loop
def bulk_delete(request: Request[Any, Any, Any], data: JSONBody[TranscriptIds]) -> dict[str, Any]:
    ids = list(dict.fromkeys(data.ids))
    if not ids or len(ids) > 500:
        raise HTTPException(status_code=400, detail="Give from 1 to 500 transcript ids.")
    for transcript_id in ids:  # check them all before deleting any
        visible_transcript(request, transcript_id, change=True)
    services = request.app.state.services
    actor = principal_of(request).user.email
    for transcript_id in ids:
        transcripts.delete(services.databases.get(), transcript_id)
        audit.record(services.databases.get(), "transcript.deleted", actor=actor, target=transcript_id)
    return {"deleted": ids}


@post(
    "/api/v1/jobs/{job_id:str}/keep",
    opt={"scope": "transcribe"},
    status_code=200,
    tags=["transcription"],
    summary="Compare models: keep one transcript of a multi-model job and delete the others",
)
@off_loop
def keep_one(request: Request[Any, Any, Any], job_id: FromPath[str], data: JSONBody[Keep]) -> dict[str, Any]:
    services = request.app.state.services
    ids = transcripts.for_job(services.databases.get(), job_id)
    if data.transcript_id not in ids:
        raise NotFoundException(detail="That transcript is not one of this job's results.")
    for transcript_id in ids:
        visible_transcript(request, transcript_id, change=True)
    actor = principal_of(request).user.email
    others = [t for t in ids if t != data.transcript_id]
    for transcript_id in others:
        transcripts.delete(services.databases.get(), transcript_id)
        audit.record(
            services.databases.get(),
            "transcript.deleted",
            actor=actor,
            target=transcript_id,
            detail={"reason": "compare: kept another model's transcript"},
        )
    return {"kept": data.transcript_id, "deleted": others}


ROUTES = [save_edits, search_transcripts, bulk_delete, keep_one]
