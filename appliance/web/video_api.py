"""Subtitles on a video, rendered in the background: start (the video is sent again: the appliance keeps
no media), follow the progress, download the result (streamed from memory), cancel or discard.

Whoever may read a transcript may render it; a render is seen only by the person who started it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec
from litestar import Request, delete, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath
from litestar.response import Stream

from appliance.app.video_renders import NotReady, Render, RenderGone, RendersBusy, VideoRenders
from appliance.transcripts import store as transcripts
from appliance.transcripts.document import Transcript
from appliance.transcripts.exports import OptionsError
from appliance.transcripts.exports.video import KINDS, POSITIONS, SIZES, BadVideo, VideoOptions
from appliance.web import intake
from appliance.web.auth import principal_of
from appliance.web.deps import attachment, services_of, visible_transcript
from appliance.web.i18n import N_, Detail
from appliance.web.offload import off_loop

CHUNK = 1024 * 1024
PRIVATE = "Transcript {id} is private: the server cannot read it, so it cannot put its subtitles on a video."


class VideoRender(msgspec.Struct):
    id: str
    transcript_id: str
    state: str  # running | done | failed | cancelled
    progress: float  # 0 to 1
    kind: str
    filename: str
    size_bytes: int
    error: str | None


def _document(item: Render) -> VideoRender:
    return VideoRender(
        item.id,
        item.transcript_id,
        item.state,
        round(item.progress, 3),
        item.options.kind,
        item.filename,
        item.size_bytes,
        item.error,
    )


def _renders(request: Request) -> VideoRenders:
    renders = services_of(request).videos
    if renders is None:
        raise RuntimeError("video renders are made with the app (create_app)")
    return renders


def _transcript(request: Request, transcript_id: str) -> Transcript:
    visible_transcript(request, transcript_id)
    doc = transcripts.get(services_of(request).databases.get(), transcript_id)
    if doc is None:
        raise NotFoundException(detail=Detail(N_("No transcript with id %(id)s."), id=repr(transcript_id)))
    if doc.private:
        raise HTTPException(status_code=409, detail=PRIVATE.format(id=transcript_id))
    return doc


def _busy(request: Request) -> HTTPException:
    renders = _renders(request)
    if renders.max_running == 0:
        return HTTPException(
            status_code=503, detail=N_("Video rendering is turned off on this appliance (server.max_video_renders).")
        )
    return HTTPException(
        status_code=503,
        detail=Detail(
            N_("The appliance is already rendering %(count)s video(s), as many as it allows at once. Try again in a minute."),
            count=renders.max_running,
        ),
        headers={"Retry-After": str(services_of(request).settings.server.retry_after_seconds)},
    )


@dataclass
class VideoOperation(Operation):
    """Documents the multipart body, which the handler streams itself (into memory) instead of Litestar."""

    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING)
        self.request_body = RequestBody(
            required=True,
            description="The video in a `file` field; options as fields (all optional).",
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["file"],
                        properties={
                            "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY),
                            "kind": Schema(type=OpenAPIType.STRING, enum=list(KINDS)),
                            "size": Schema(type=OpenAPIType.STRING, enum=list(SIZES)),
                            "position": Schema(type=OpenAPIType.STRING, enum=list(POSITIONS)),
                            "speakers": text,
                            "max_chars_per_line": text,
                        },
                    )
                )
            },
        )


@post(
    "/api/v1/transcripts/{transcript_id:str}/video",
    operation_class=VideoOperation,
    status_code=202,
    request_max_body_size=None,  # the intake enforces the upload caps while streaming, in memory
    summary="Put a transcript's subtitles on a video (multipart: `file` and the options kind, size, position, "
    "speakers, max_chars_per_line); answers with a render to follow",
    tags=["transcripts"],
)
async def start_video_render(request: Request, transcript_id: FromPath[str]) -> VideoRender:
    services = services_of(request)
    renders = _renders(request)
    doc = await services.databases.in_thread(lambda _db: _transcript(request, transcript_id))
    if not renders.has_room():
        raise _busy(request)  # before a byte of the video is read
    received = await intake.read(request, services.vault, services.settings.server.retry_after_seconds)
    try:
        options = VideoOptions.parse(received.fields)
    except OptionsError as exc:
        received.upload.discard()
        raise HTTPException(status_code=400, detail=str(exc)) from None
    try:
        item = await asyncio.to_thread(renders.start, principal_of(request).user.id, doc, received.upload, options)
    except BadVideo as exc:
        raise HTTPException(status_code=415, detail=str(exc)) from None
    except RendersBusy:
        raise _busy(request) from None
    return _document(item)


def _render_or_404(request: Request, render_id: str) -> Render:
    try:
        return _renders(request).get(principal_of(request).user.id, render_id)
    except RenderGone:
        raise NotFoundException(
            detail=Detail(N_("No video render %(id)s (finished ones are kept for a few minutes)."), id=repr(render_id))
        ) from None


@get("/api/v1/video-renders/{render_id:str}", summary="A video render's state and progress", tags=["transcripts"])
@off_loop
def get_video_render(request: Request, render_id: FromPath[str]) -> VideoRender:
    return _document(_render_or_404(request, render_id))


@get(
    "/api/v1/video-renders/{render_id:str}/file",
    summary="The rendered video (then it is dropped from memory)",
    tags=["transcripts"],
)
@off_loop
def video_render_file(request: Request, render_id: FromPath[str]) -> Stream:
    owner = principal_of(request).user.id
    renders = _renders(request)
    _render_or_404(request, render_id)
    try:
        item, data = renders.result(owner, render_id)
    except NotReady as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None

    def chunks() -> Iterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            yield bytes(view[start : start + CHUNK])
        # Downloaded to the end: nothing is kept (a broken download can be retried until the time is up).
        renders.discard(owner, render_id)

    return Stream(
        chunks(),
        media_type=item.options.media_type,
        headers={"Content-Disposition": attachment(item.filename), "Content-Length": str(len(data))},
    )


@delete(
    "/api/v1/video-renders/{render_id:str}",
    status_code=200,
    summary="Cancel a running video render, or drop a finished one",
    tags=["transcripts"],
)
@off_loop
def discard_video_render(request: Request, render_id: FromPath[str]) -> VideoRender:
    _render_or_404(request, render_id)
    try:
        item = _renders(request).discard(principal_of(request).user.id, render_id)
    except RenderGone:
        raise NotFoundException(detail=Detail(N_("No video render %(id)s."), id=repr(render_id))) from None
    return _document(item)


ROUTES = [start_video_render, get_video_render, video_render_file, discard_video_render]
