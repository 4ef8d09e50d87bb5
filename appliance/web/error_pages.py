"""Errors as pages, for a person whose browser navigated somewhere that failed: a plain message inside
the usual layout (with the signed-in header when signed in) and a way back, instead of the API's JSON.
The API's paths keep their JSON errors, whoever asks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.response import Response, Stream

from appliance.web import i18n, layout
from appliance.web.i18n import N_
from appliance.web.middleware import HEADERS, HSTS

API_PREFIXES = ("/api/", "/v1/")  # this API and the OpenAI-compatible one

MESSAGES = {
    401: (N_("Sign in first"), N_("This page is for signed-in people. Sign in, then open it again.")),
    403: (
        N_("Not allowed"),
        N_("Your account is not allowed to see this page. An administrator can change what you may do."),
    ),
    404: (
        N_("Page not found"),
        N_("There is nothing here, or it is not yours to see. The link may be mistyped, or what it pointed to was deleted."),
    ),
    500: (
        N_("Something went wrong"),
        N_(
            "The appliance could not show this page. It logged the details for its administrator. Try again in a "
            "moment; if it keeps happening, tell your administrator."
        ),
    ),
}


def wanted(request: Request[Any, Any, Any]) -> bool:
    """A browser navigating to a page (it asks for HTML), not a program calling the API."""
    path = request.scope.get("path", "")
    return (
        request.method in ("GET", "HEAD")
        and not path.startswith(API_PREFIXES)
        and "text/html" in request.headers.get("accept", "")
    )


def page(request: Request[Any, Any, Any], status: int, detail: str, headers: dict[str, str] | None = None) -> Response[Any]:
    """The error page. Exception handlers run on the event loop, and the router's 404 comes before the
    guard has looked up the caller, so the session is resolved (in a thread) while the body is sent."""

    async def body() -> AsyncIterator[str]:
        yield await request.app.state.services.databases.in_thread(_render, request, status, detail)

    # An address no route matches is answered before the app's middleware, security headers included.
    security = [*HEADERS, HSTS] if request.scope.get("scheme") == "https" else HEADERS
    return Stream(
        body(),
        status_code=status,
        media_type="text/html",
        headers={**(headers or {}), **{k.decode(): v.decode() for k, v in security}, "Cache-Control": "no-store"},
    )


def _render(db: Any, request: Request[Any, Any, Any], status: int, detail: str) -> str:
    from appliance.web.auth import resolve_principal  # auth's handlers call this module

    if "principal" not in request.scope.get("state", {}):  # no route matched, so no guard ran
        request.state.principal = resolve_principal(db, request)
    # In the person's language, now that it is known who they are.
    tr = i18n.translations(request)
    title, message = MESSAGES.get(status, (N_("This page cannot be shown"), detail))
    title, message = tr.gettext(title), i18n.translate_detail(message, tr)  # a Detail: its template, its values
    if status == 403 and detail and detail != "Forbidden":  # a reason written for people: give it
        message = tr.gettext("%(reason)s An administrator can change what your account may do.") % {
            "reason": i18n.translate_detail(detail, tr)
        }
    context = layout.context(request, layout.signed_in(request))
    engine = request.app.template_engine
    if engine is None:
        raise RuntimeError("the app is made with its templates (create_app)")
    template = engine.get_template("error.html")
    return str(template.render(**context, request=request, status=status, title=title, message=message))
