"""Encrypted snapshot links over HTTP: create one, store its snapshot (sealed in the browser), and the
public route the viewer page fetches it from. The key never reaches the server: it is in the link's
fragment, which browsers do not send (and the request log records the route template only)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post, put
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, JSONBody

from appliance.accounts import audit
from appliance.private import crypto as private_crypto
from appliance.private import keys as private_keys
from appliance.private import sealed_shares
from appliance.transcripts import shares
from appliance.web.auth import principal_of
from appliance.web.deps import visible_transcript
from appliance.web.i18n import N_
from appliance.web.offload import off_loop
from appliance.web.private_api import NO_STORE
from appliance.web.share_api import allow_public_links

MAX_SNAPSHOT_REQUEST = private_crypto.MAX_DOCUMENT_CT * 4 // 3 + 64 * 1024


class SealedShareRequest(msgspec.Struct):
    expires_in_days: float | None = 7
    max_views: int | None = None


class Snapshot(msgspec.Struct):
    envelope: str


def _db(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.services.databases.get()


@post(
    "/api/v1/transcripts/{transcript_id:str}/sealed-shares",
    opt={"scope": "transcribe"},
    tags=["sharing"],
    summary="Create an encrypted link; then PUT its snapshot, sealed in the browser under a key kept in the link's fragment",
)
@off_loop
def create_sealed_share(
    request: Request[Any, Any, Any], transcript_id: FromPath[str], data: JSONBody[SealedShareRequest]
) -> dict[str, Any]:
    row = visible_transcript(request, transcript_id, change=True)
    db = _db(request)
    allow_public_links(db, row)
    try:
        token, record = shares.create(
            request.app.state.services.databases.get(),
            transcript_id,
            principal_of(request).user.id,
            expires_in_days=data.expires_in_days,
            formats=[],
            sealed=True,
            max_views=data.max_views,
        )
    except shares.ShareError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    audit.record(
        db,
        "share.created",
        actor=principal_of(request).user.email,
        target=record["id"],
        detail={"sealed": True, "expires_at": record["expires_at"], "max_views": record["max_views"]},
    )
    return {**record, "path": f"/s/{token}"}


@put(
    "/api/v1/shares/{link_id:str}/envelope",
    opt={"scope": "transcribe"},
    tags=["sharing"],
    request_max_body_size=MAX_SNAPSHOT_REQUEST,
    summary="Store an encrypted link's snapshot (once; the envelope's header names the link)",
)
@off_loop
def put_snapshot(request: Request[Any, Any, Any], link_id: FromPath[str], data: JSONBody[Snapshot]) -> dict[str, Any]:
    link = shares.get(_db(request), link_id)
    if link is None:
        raise NotFoundException(detail=N_("No such share link."))
    visible_transcript(request, link["transcript_id"], change=True)
    if link["created_by"] != principal_of(request).user.id:
        raise PermissionDeniedException(detail=N_("Only the person who created the link stores its snapshot."))
    try:
        sealed_shares.store(request.app.state.services.databases.get(), link_id, data.envelope)
    except private_keys.KeyRecordError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return {"stored": True}


@get(
    "/s/{token:str}/snapshot",
    opt={"public": True},
    tags=["sharing"],
    summary="Public: an encrypted link's snapshot (counts a view; gone after revocation, expiry or the last view)",
)
@off_loop
def get_snapshot(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[dict[str, Any]]:
    try:
        found = sealed_shares.open_snapshot(request.app.state.services.databases.get(), token)
    except shares.LinkGone:
        raise HTTPException(status_code=404, detail=N_("This link does not exist, was revoked, or was used up.")) from None
    except shares.LinkExpired:
        raise HTTPException(status_code=410, detail=N_("This link has expired.")) from None
    return Response(found, headers=NO_STORE)


ROUTES = [create_sealed_share, put_snapshot, get_snapshot]
