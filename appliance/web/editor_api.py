"""JSON API behind the web UI's editor, search and library: thin handlers over editing, search and
transcripts. Available to API keys too (an integration can correct a transcript the same way)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from appliance.accounts import audit, authz
from appliance.transcripts import editing, revisions, search
from appliance.transcripts import store as transcripts
from appliance.web.auth import principal_of
from appliance.web.deps import visible_transcript
from appliance.web.i18n import N_
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
            keep_revisions=services.settings.retention.revisions_per_transcript,
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
        raise HTTPException(status_code=400, detail=N_("Give from 1 to 500 transcript ids."))
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
        raise NotFoundException(detail=N_("That transcript is not one of this job's results."))
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


# Revisions follow the rules for editing: an earlier version may hold words an editor removed on purpose,
# so reading the history needs the right to change the transcript, not only to read it.
@get(
    "/api/v1/transcripts/{transcript_id:str}/revisions",
    opt={"scope": "transcribe"},
    tags=["transcripts"],
    summary="The transcript's edit history, newest first (who, when, what); earlier versions can be viewed and restored",
    description="Each save keeps the version it replaced, up to `retention.revisions_per_transcript` per transcript. "
    "Private transcripts keep none on the server (`private: true`, only the current revision).",
)
@off_loop
def list_revisions(request: Request[Any, Any, Any], transcript_id: FromPath[str]) -> revisions.RevisionList:
    visible_transcript(request, transcript_id, change=True)
    services = request.app.state.services
    return revisions.history(services.databases.get(), transcript_id, limit=services.settings.retention.revisions_per_transcript)


@get(
    "/api/v1/transcripts/{transcript_id:str}/revisions/{revision:int}",
    opt={"scope": "transcribe"},
    tags=["transcripts"],
    summary="One earlier version of the transcript (title, note, speakers, segments), to read",
)
@off_loop
def get_revision(request: Request[Any, Any, Any], transcript_id: FromPath[str], revision: FromPath[int]) -> revisions.Snapshot:
    visible_transcript(request, transcript_id, change=True)
    try:
        return revisions.at_revision(request.app.state.services.databases.get(), transcript_id, revision)
    except revisions.NotKept as exc:
        raise NotFoundException(detail=str(exc)) from None


@post(
    "/api/v1/transcripts/{transcript_id:str}/revisions/{revision:int}/restore",
    opt={"scope": "transcribe"},
    status_code=200,
    tags=["transcripts"],
    summary="Make an earlier version current again, as a new revision (the version it replaces is kept)",
)
@off_loop
def restore_revision(request: Request[Any, Any, Any], transcript_id: FromPath[str], revision: FromPath[int]) -> dict[str, Any]:
    visible_transcript(request, transcript_id, change=True)
    services = request.app.state.services
    principal = principal_of(request)
    try:
        new = revisions.restore(
            services.databases.get(),
            transcript_id,
            revision,
            user_id=principal.user.id,
            limit=services.settings.retention.revisions_per_transcript,
        )
    except revisions.NotKept as exc:
        raise NotFoundException(detail=str(exc)) from None
    audit.record(
        services.databases.get(),
        "transcript.revision_restored",
        actor=principal.user.email,
        target=transcript_id,
        detail={"revision": revision, "new_revision": new},
    )
    return {"revision": new, "restored": revision}


ROUTES = [save_edits, list_revisions, get_revision, restore_revision, search_transcripts, bulk_delete, keep_one]
