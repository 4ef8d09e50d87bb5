"""The one guard every route passes: who is calling (session cookie or Bearer key), CSRF for cookie
requests that change things, the route's required scope, and the per-caller request rate."""

from __future__ import annotations

import dataclasses
import hmac
import logging
import threading
import time
from collections import defaultdict, deque
from typing import Any

import sqlite_utils
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect

from appliance.accounts import apikeys, factors, sessions
from appliance.accounts import users as accounts
from appliance.accounts.authz import Forbidden, NotVisible, Principal, Unauthenticated, principal_for, require_scope
from appliance.licensing.store import LicenseBlocked
from appliance.web import error_pages, i18n
from appliance.web.i18n import N_, Detail

log = logging.getLogger(__name__)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_HEADER = "x-csrf-token"


class RateLimiter:
    """A sliding one-minute window per caller, in memory (one process serves the appliance)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, key: str) -> int | None:
        """None if allowed; else seconds until the caller may retry."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and hits[0] <= now - 60:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(1, int(60 - (now - hits[0])) + 1)
            hits.append(now)
            return None

    def blocked(self, key: str) -> int | None:
        """Like check, without counting this call: seconds to wait while the window is full, else None."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key)
            while hits and hits[0] <= now - 60:
                hits.popleft()
            if hits is not None and len(hits) >= self.per_minute:
                return max(1, int(60 - (now - hits[0])) + 1)
            return None


def resolve_principal(db: sqlite_utils.Database, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    services = connection.app.state.services
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        key = apikeys.resolve(db, header[7:].strip())
        if key is None:
            return None
        user = accounts.get(db, key.user_id)
        if user is None or user.disabled:
            return None
        return principal_for(user, key_scope=key.scope, key_id=key.id, key_stores=key.store)
    token = connection.cookies.get(sessions.COOKIE)
    session = sessions.resolve(db, token, services.settings.security.session_idle_minutes)
    if session is None:
        return None
    user = accounts.get(db, session.user_id)
    if user is None or user.disabled:
        return None
    principal = principal_for(user, session=session)
    if factors.enrolment_needed(db, user):
        principal = dataclasses.replace(principal, must_enrol=True)
    return principal


ENROL_PAGE = "/account/second-factor"


class EnrolFirst(Exception):
    """A signed-in person whose role requires a second factor, on their way anywhere but the enrolment."""


def refuse_cross_site(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A change sent by a browser from another site is refused, signed in or not (a cross-site form could
    otherwise sign the victim into the attacker's account: login CSRF). Browsers say where a request
    comes from in Sec-Fetch-Site, or failing that in Origin; API clients send neither and pass. Public
    JSON routes also insist on a JSON body, which a cross-site form cannot send without a CORS preflight."""
    method = connection.scope.get("method", "GET")
    if method in SAFE_METHODS:
        return
    site = connection.headers.get("sec-fetch-site")
    origin = connection.headers.get("origin")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise PermissionDeniedException(detail=N_("Cross-site requests cannot change anything here."))
    elif origin is not None and origin != "null":
        host = connection.headers.get("host", "")
        if origin.split("://", 1)[-1].rstrip("/").lower() != host.lower():
            raise PermissionDeniedException(detail=N_("Cross-site requests cannot change anything here."))
    elif origin == "null":
        raise PermissionDeniedException(detail=N_("Cross-site requests cannot change anything here."))


async def authorize(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """App-wide guard. Routes declare `opt={"public": True}` or `opt={"scope": "read|transcribe|admin"}`."""
    opt = handler.opt
    refuse_cross_site(connection)
    throttle = opt.get("throttle")
    if throttle and connection.scope.get("method", "GET") not in SAFE_METHODS:
        limiter = connection.app.state.services.address_limiter
        retry = limiter.blocked(_address_key(connection, throttle)) if limiter else None
        if retry is not None:
            raise HTTPException(
                status_code=429,
                detail=N_("Too many failed attempts from your address. Please wait a minute."),
                headers={"Retry-After": str(retry)},
            )
    if (
        opt.get("public")
        and connection.scope.get("path", "").startswith("/api/")
        and connection.scope.get("method", "GET") not in SAFE_METHODS
    ):
        kind = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            raise HTTPException(status_code=415, detail=N_("Send this request as JSON (Content-Type: application/json)."))
    # Off the event loop: the session lookup waits for SQLite like any other query.
    principal = await connection.app.state.services.databases.in_thread(resolve_principal, connection)
    connection.state.principal = principal
    if principal is not None and principal.must_enrol and not opt.get("enrolment") and (opt.get("page") or not opt.get("public")):
        raise EnrolFirst()
    # The OpenAPI document describes the API, not anyone's data: readable without signing in.
    if opt.get("public") or connection.scope.get("path", "").startswith("/schema"):
        return
    try:
        require_scope(principal, opt.get("scope", "read"))
    except Unauthenticated:
        raise NotAuthorizedException(
            detail=N_("Sign in, or send an API key as 'Authorization: Bearer <key>'."), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    except Forbidden as exc:
        raise PermissionDeniedException(detail=str(exc)) from None
    assert principal is not None
    if opt.get("credentials") and principal.via == "key" and principal.scope != "admin":
        # Keys, passwords, sessions and the wrapped private keys: a leaked read or transcribe key must
        # not be able to mint keys that outlive it, lock the owner out, or fetch material to attack
        # the passphrase offline.
        raise PermissionDeniedException(detail=N_("Managing credentials needs a signed-in session or an admin-scoped API key."))
    method = connection.scope.get("method", "GET")
    if principal.via == "session" and method not in SAFE_METHODS:
        sent = connection.headers.get(CSRF_HEADER, "")
        if not (principal.session and hmac.compare_digest(sent, principal.session.csrf_token)):
            raise PermissionDeniedException(detail=N_("The request is missing its CSRF token (X-CSRF-Token header)."))
    retry = connection.app.state.services.limiter.check(principal.rate_key)
    if retry is not None:
        raise HTTPException(
            status_code=429, detail=N_("Too many requests. Please slow down."), headers={"Retry-After": str(retry)}
        )


def _address_key(connection: ASGIConnection[Any, Any, Any, Any], throttle: str) -> str:
    return f"{throttle}:{connection.client.host if connection.client else '?'}"


def failed_attempt(request: Request[Any, Any, Any]) -> None:
    """Count a wrong password or code against the caller's address (routes with opt "throttle"). Only
    failures count, so an office behind one address can sign in as often as it likes; guessing cannot."""
    throttle = request.route_handler.opt.get("throttle")
    limiter = request.app.state.services.address_limiter
    if throttle and limiter is not None:
        limiter.check(_address_key(request, throttle))


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    principal = request.state.get("principal")
    if principal is None:  # a public route that needs a caller after all
        raise NotAuthorizedException(detail=N_("Sign in first."), headers={"WWW-Authenticate": "Bearer"})
    return principal


def _error(
    request: Request[Any, Any, Any], status: int, detail: str, headers: dict[str, str] | None = None, **more: Any
) -> Response[Any]:
    """The API's JSON error; a page in the layout for a browser that navigated here (web/error_pages.py)."""
    if error_pages.wanted(request):
        return error_pages.page(request, status, detail, headers)
    if isinstance(detail, str) and _read_by_a_person(request):
        # A person in the browser reads this message (the scripts show `detail`): in their language. A
        # program keeps the English it may match on.
        detail = i18n.translate_detail(detail, i18n.translations(request))
    return Response({"status_code": status, "detail": detail, **more}, status_code=status, headers=headers or {})


def _read_by_a_person(request: Request[Any, Any, Any]) -> bool:
    """A browser session; or no credentials at all from a browser (the sign-in form), told by the language
    cookie or an Accept-Language header, which browsers always send and HTTP libraries do not. Anything
    with an API key, valid or not, is a program."""
    principal = request.scope.get("state", {}).get("principal")
    if principal is not None:
        return bool(principal.via == "session")
    if request.headers.get("authorization"):
        return False
    return i18n.COOKIE in request.cookies or "accept-language" in request.headers


def forbidden_handler(request: Request[Any, Any, Any], exc: Forbidden) -> Response[Any]:
    return _error(request, 403, str(exc) or N_("You are not allowed to do this."))


def not_visible_handler(request: Request[Any, Any, Any], exc: NotVisible) -> Response[Any]:
    return _error(request, 404, N_("Not found."))


def unauthenticated_handler(request: Request[Any, Any, Any], exc: Unauthenticated) -> Response[Any]:
    return _error(request, 401, N_("Sign in first."), {"WWW-Authenticate": "Bearer"})


def enrol_first_handler(request: Request[Any, Any, Any], exc: EnrolFirst) -> Response[Any]:
    if request.route_handler.opt.get("page") or error_pages.wanted(request):
        return Redirect(ENROL_PAGE)
    return _error(
        request,
        403,
        Detail(N_("Your role requires a second factor. Set one up at %(page)s first."), page=ENROL_PAGE),
        code="second_factor_enrolment_required",
    )


def license_blocked_handler(request: Request[Any, Any, Any], exc: LicenseBlocked) -> Response[Any]:
    # 402 while the licence state pauses new work; 403 for a feature the licence does not include.
    status = 403 if exc.code == "feature_not_licensed" else 402
    return _error(request, status, str(exc), code=exc.code, license_state=exc.state.state)


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    more = {"extra": exc.extra} if exc.extra else {}
    return _error(request, exc.status_code, exc.detail, exc.headers or {}, **more)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything unexpected: logged with its traceback for the operator, a plain 500 for the caller."""
    log.exception("unhandled error on %s %s", request.method, request.scope.get("path_template") or "?", exc_info=exc)
    return _error(request, 500, N_("Internal error. The appliance logged the details."))


EXCEPTION_HANDLERS = {
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
    Forbidden: forbidden_handler,
    NotVisible: not_visible_handler,
    Unauthenticated: unauthenticated_handler,
    LicenseBlocked: license_blocked_handler,
    EnrolFirst: enrol_first_handler,
}
