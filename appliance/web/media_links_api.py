"""Media links: an administrator's list of intranet media hosts, and importing a recording from a link
on one of them (thin handlers over appliance/app/link_import.py and appliance/integrations/media_links.py)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody

from appliance.accounts import audit
from appliance.integrations import media_links
from appliance.transcription import jobs
from appliance.web import schemas
from appliance.web.auth import principal_of
from appliance.web.deps import services_of
from appliance.web.errors import DOMAIN_ERRORS, as_http
from appliance.web.i18n import N_, Detail
from appliance.web.offload import off_loop


class NewMediaHost(msgspec.Struct):
    name: str  # media.intranet.example, or media.intranet.example:8080


class LinkImportRequest(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    options: dict[str, Any] = msgspec.field(default_factory=dict)  # the upload's options (model, language, …)
    workspace_id: str | None = None
    keep_source: bool = False  # name the job and its transcripts by the link; otherwise the link is not kept


@get("/api/v1/media-hosts", opt={"scope": "admin"}, tags=["admin"], summary="The hosts recordings may be imported from by link")
@off_loop
def list_media_hosts(request: Request[Any, Any, Any]) -> list[media_links.MediaHost]:
    return media_links.list_hosts(services_of(request).databases.get())


@post("/api/v1/media-hosts", opt={"scope": "admin"}, tags=["admin"], summary="Allow imports by link from a host")
@off_loop
def add_media_host(request: Request[Any, Any, Any], data: JSONBody[NewMediaHost]) -> media_links.MediaHost:
    db = services_of(request).databases.get()
    principal = principal_of(request)
    try:
        host = media_links.add_host(db, data.name, principal.user.id)
    except media_links.LinkError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    audit.record(db, "media_host.added", actor=principal.user.email, target=host.name)
    return host


@delete("/api/v1/media-hosts/{name:str}", opt={"scope": "admin"}, tags=["admin"], status_code=204, summary="Remove a media host")
@off_loop
def remove_media_host(request: Request[Any, Any, Any], name: FromPath[str]) -> None:
    db = services_of(request).databases.get()
    if not media_links.remove_host(db, name):
        raise NotFoundException(detail=Detail(N_("%(name)s is not a media host."), name=repr(name)))
    audit.record(db, "media_host.removed", actor=principal_of(request).user.email, target=name)


@post(
    "/api/v1/transcriptions/from-link",
    status_code=202,
    tags=["transcription"],
    summary="Import a recording from an intranet media link (a file or a page with one) and queue it",
    opt={"scope": "transcribe"},
)
async def create_transcription_from_link(request: Request[Any, Any, Any], data: JSONBody[LinkImportRequest]) -> schemas.Job:
    """Async like the upload: the fetch runs in a thread, the database steps through `in_thread`."""
    services = services_of(request)
    links = services.links
    if links is None:
        raise RuntimeError("the link import is made with the app (create_app)")
    retry_after = services.settings.server.retry_after_seconds
    try:
        row = await links.submit(principal_of(request), data.url, data.options, data.workspace_id, keep_source=data.keep_source)
    except DOMAIN_ERRORS as exc:
        raise as_http(exc, retry_after) from None
    except (media_links.LinkTooLarge, jobs.UploadTooLarge):
        max_upload = services.settings.server.max_upload_bytes
        raise HTTPException(status_code=413, detail=media_links.too_large_text(max_upload)) from None
    except jobs.VaultFull:
        raise HTTPException(
            status_code=503,
            detail=N_("The appliance is holding as much audio in memory as it is allowed to. Please retry shortly."),
            headers={"Retry-After": str(retry_after)},
        ) from None
    except media_links.LinkRefused as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    except media_links.LinkUnreachable as exc:
        raise HTTPException(status_code=502, detail=str(exc)) from None
    except media_links.LinkTimeout as exc:
        raise HTTPException(status_code=504, detail=str(exc)) from None
    except media_links.LinkError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return msgspec.convert(jobs.document(row), schemas.Job)


ROUTES = [list_media_hosts, add_media_host, remove_media_host, create_transcription_from_link]
