"""What every HTML page's layout needs: who is signed in (the header's links and the CSRF token the
page's scripts send) and the licence banner. Pages, the privacy statement, the licence page and the
error pages all render through it, so a signed-in person sees the same header on each of them."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template

from appliance.accounts import authz
from appliance.accounts.authz import Principal


def signed_in(request: Request[Any, Any, Any]) -> Principal | None:
    """The person behind a browser session; an API key is a program, not someone looking at a page."""
    principal = request.state.get("principal")
    return principal if principal is not None and principal.via == "session" else None


def context(request: Request[Any, Any, Any], principal: Principal | None) -> dict[str, Any]:
    """The layout's variables; reads the licence state, so call it off the event loop."""
    services = request.app.state.services
    shared: dict[str, Any] = {"license": services.licenses.state(), "me": None}
    if principal is None:
        return shared
    return {
        **shared,
        "me": principal.user,
        "scope": principal.scope,
        "csrf": principal.session.csrf_token if principal.session else "",
        "is_admin": principal.user.role == "admin",
        "can_write": authz.LEVEL[principal.scope] >= authz.LEVEL["transcribe"],
    }


def page(request: Request[Any, Any, Any], name: str, principal: Principal | None, **extra: Any) -> Template:
    return Template(name, context={**context(request, principal), **extra})
