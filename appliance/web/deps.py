"""What handlers across the web package share: the app's services, and "may this caller see it?"
lookups that answer 404 without revealing whether the thing exists."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import NotFoundException

from appliance.accounts import authz
from appliance.transcripts import store as transcripts
from appliance.web.auth import principal_of
from appliance.web.i18n import N_, Detail
from appliance.web.services import Services


def services_of(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def visible_transcript(request: Request[Any, Any, Any], transcript_id: str, *, change: bool = False) -> dict[str, Any]:
    """The transcript's ownership row. 404 unless the caller may see the transcript (its existence is
    not revealed); 403 if they may see it but not change it."""
    db = services_of(request).databases.get()
    row = transcripts.row(db, transcript_id)
    try:
        if row is None:
            raise authz.NotVisible()
        (authz.can_change if change else authz.can_read)(db, principal_of(request), row)
    except authz.NotVisible:
        raise NotFoundException(detail=Detail(N_("No transcript with id %(id)s."), id=repr(transcript_id))) from None
    return row


def attachment(name: str) -> str:
    """Content-Disposition with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    from urllib.parse import quote

    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
