"""Share links: management for signed-in users, and the public read-only page behind the link."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import Body, FromPath, JSONBody, Parameter
from litestar.response import Template

from appliance.accounts import audit, workspaces
from appliance.private import keys as private_keys
from appliance.transcripts import exports, shares
from appliance.transcripts import store as transcripts
from appliance.transcripts.exports.model import stamp, turns
from appliance.web.auth import failed_attempt, principal_of
from appliance.web.deps import attachment, visible_transcript
from appliance.web.i18n import N_, reader_for
from appliance.web.offload import off_loop


class ShareRequest(msgspec.Struct):
    password: str | None = None
    expires_in_days: float | None = None
    include_speakers: bool = True
    include_timestamps: bool = True
    formats: list[str] = msgspec.field(default_factory=lambda: ["txt", "srt", "pdf"])


class Policy(msgspec.Struct):
    allow_public_links: bool


PLAIN_LINK_REFUSED = (
    "A private transcript has no plain public link: the server cannot read it. Create an encrypted link from its page instead."
)


def _db(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.services.databases.get()


def allow_public_links(db: Any, row: dict[str, Any]) -> None:
    """Any link anyone can open, encrypted or not, needs the workspace's permission."""
    if not workspaces.allows_public_links(db, row["workspace_id"]):
        raise PermissionDeniedException(detail=N_("This workspace's admins do not allow public links."))


@post(
    "/api/v1/transcripts/{transcript_id:str}/shares",
    opt={"scope": "transcribe"},
    tags=["sharing"],
    summary="Create a share link (the URL is shown once)",
)
@off_loop
def create_share(request: Request[Any, Any, Any], transcript_id: FromPath[str], data: JSONBody[ShareRequest]) -> dict[str, Any]:
    row = visible_transcript(request, transcript_id, change=True)
    db = _db(request)
    allow_public_links(db, row)
    if private_keys.envelopes(db, transcript_id) is not None:
        raise HTTPException(status_code=409, detail=PLAIN_LINK_REFUSED)
    try:
        token, record = shares.create(
            request.app.state.services.databases.get(),
            transcript_id,
            principal_of(request).user.id,
            password=data.password,
            expires_in_days=data.expires_in_days,
            include_speakers=data.include_speakers,
            include_timestamps=data.include_timestamps,
            formats=data.formats,
        )
    except shares.ShareError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    audit.record(
        db,
        "share.created",
        actor=principal_of(request).user.email,
        target=record["id"],
        detail={"password": record["password"], "expires_at": record["expires_at"]},
    )
    return {**record, "path": f"/s/{token}"}


@get("/api/v1/transcripts/{transcript_id:str}/shares", tags=["sharing"], summary="A transcript's share links")
@off_loop
def list_shares(request: Request[Any, Any, Any], transcript_id: FromPath[str]) -> list[dict[str, Any]]:
    visible_transcript(request, transcript_id)
    return shares.for_transcript(_db(request), transcript_id)


@delete(
    "/api/v1/shares/{link_id:str}",
    opt={"scope": "transcribe"},
    status_code=204,
    tags=["sharing"],
    summary="Revoke a share link",
)
@off_loop
def revoke_share(request: Request[Any, Any, Any], link_id: FromPath[str]) -> None:
    link = shares.get(_db(request), link_id)
    if link is None:
        raise NotFoundException(detail=N_("No such share link."))
    visible_transcript(request, link["transcript_id"], change=True)
    shares.revoke(_db(request), link_id)
    audit.record(_db(request), "share.revoked", actor=principal_of(request).user.email, target=link_id)


@put(
    "/api/v1/workspaces/{workspace_id:str}/policy",
    opt={"scope": "transcribe"},
    tags=["workspaces"],
    summary="Workspace policy: may members create public links",
)
@off_loop
def set_policy(request: Request[Any, Any, Any], workspace_id: FromPath[str], data: JSONBody[Policy]) -> dict[str, Any]:
    role = workspaces.role_of(_db(request), workspace_id, principal_of(request).user.id)
    if role is None:
        raise NotFoundException(detail=N_("No such workspace."))
    if role != "admin":
        raise PermissionDeniedException(detail=N_("Only the workspace's admins set its policy."))
    workspaces.set_public_links(_db(request), workspace_id, data.allow_public_links)
    audit.record(
        _db(request),
        "workspace.policy",
        actor=principal_of(request).user.email,
        target=workspace_id,
        detail={"allow_public_links": data.allow_public_links},
    )
    return {"workspace_id": workspace_id, "allow_public_links": data.allow_public_links}


# --------------------------------------------------------------------------- the public side


def _cookie_name(link_id: str) -> str:
    return f"sotto_share_{link_id[:16]}"


def _open(request: Request[Any, Any, Any], token: str) -> tuple[shares.Link, dict[str, Any]]:
    try:
        return shares.open_link(_db(request), token)
    except shares.LinkGone:
        raise HTTPException(status_code=404, detail=N_("This link does not exist or was revoked.")) from None
    except shares.LinkExpired:
        raise HTTPException(status_code=410, detail=N_("This link has expired.")) from None


def _page(name: str, status: int = 200, **context: Any) -> Template:
    # A shared transcript (or the form in front of it) must not stay in a browser's or proxy's cache
    # after the link is revoked or expires.
    return Template(name, context=context, status_code=status, headers={"Cache-Control": "no-store"})


@get("/s/{token:str}", opt={"public": True}, include_in_schema=False)
@off_loop
def share_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    try:
        link, _row = _open(request, token)
    except HTTPException as exc:
        return _page("share_error.html", exc.status_code, message=exc.detail)
    if link.sealed:  # the page decrypts in the browser with the key from the fragment; no view counted yet
        return _page("share_sealed.html", token=token)
    secret = request.app.state.services.secret
    if link.needs_password and not shares.granted(secret, link.id, request.cookies.get(_cookie_name(link.id))):
        return _page("share_password.html", token=token)
    doc = transcripts.get(_db(request), link.transcript_id)
    if doc is None:
        return _page("share_error.html", 404, message=N_("This link does not exist or was revoked."))
    shares.count_view(_db(request), link.id)
    shown = shares.public_document(doc, link)
    options = exports.ExportOptions(timestamps=link.include_timestamps, speakers=link.include_speakers)
    return _page(
        "share.html",
        token=token,
        doc=shown,
        paragraphs=turns(shown, options),
        formats=link.formats,
        timestamps=link.include_timestamps,
        stamp=stamp,
    )


@post("/s/{token:str}", opt={"public": True, "throttle": "password"}, include_in_schema=False, status_code=200)
@off_loop
def share_password(
    request: Request[Any, Any, Any],
    token: FromPath[str],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template | Response[Any]:
    try:
        link, row = _open(request, token)
    except HTTPException as exc:
        return _page("share_error.html", exc.status_code, message=exc.detail)
    if not link.needs_password:
        return Response(content=None, status_code=303, headers={"Location": f"/s/{token}"})
    try:
        ok = shares.check_password(request.app.state.services.databases.get(), row, data.get("password", ""))
    except shares.LinkLocked as exc:
        template = _page("share_password.html", 429, token=token, error=str(exc))
        template.headers["Retry-After"] = str(exc.retry_after)
        return template
    if not ok:
        failed_attempt(request)
        return _page("share_password.html", 401, token=token, error=N_("That password is not right."))
    cookie = Cookie(
        key=_cookie_name(link.id),
        value=shares.grant(request.app.state.services.secret, link.id),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path=f"/s/{token}",
        max_age=12 * 3600,
    )
    return Response(content=None, status_code=303, headers={"Location": f"/s/{token}"}, cookies=[cookie])


@get("/s/{token:str}/export", opt={"public": True}, include_in_schema=False)
@off_loop
def share_export(
    request: Request[Any, Any, Any], token: FromPath[str], format: str = Parameter(default="txt")
) -> Response[bytes]:
    link, _row = _open(request, token)
    if link.sealed:
        raise HTTPException(status_code=404, detail=N_("An encrypted link has no server export: use the page's download."))
    if link.needs_password and not shares.granted(
        request.app.state.services.secret, link.id, request.cookies.get(_cookie_name(link.id))
    ):
        raise HTTPException(status_code=401, detail=N_("Enter the link's password first."))
    if format not in link.formats:
        raise HTTPException(status_code=403, detail=N_("This link does not offer that format."))
    doc = transcripts.get(_db(request), link.transcript_id)
    if doc is None:
        raise HTTPException(status_code=404, detail=N_("This link does not exist or was revoked."))
    shown = shares.public_document(doc, link)
    options = exports.ExportOptions(timestamps=link.include_timestamps, speakers=link.include_speakers)
    export = exports.render(shown, format, options, reader=reader_for(request))
    return Response(
        export.content,
        media_type=export.media_type,
        headers={"Content-Disposition": attachment(f"{exports.safe_stem(shown)}.{format}")},
    )


ROUTES = [create_share, list_shares, revoke_share, set_policy, share_page, share_password, share_export]
