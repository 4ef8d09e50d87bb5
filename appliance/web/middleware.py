"""ASGI middleware: security headers on every response, and the content-free request log."""

from __future__ import annotations

import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from appliance.jobs import now

# No inline script or style anywhere, so the policy needs neither unsafe-inline nor unsafe-eval.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def security_headers(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in HEADERS if h[0] not in present]
                if scope.get("scheme") == "https":
                    headers.append(HSTS)
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def request_log(app: ASGIApp) -> ASGIApp:
    """Method, route template, status, user, duration: never the query string, body or content."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            _write(scope, status, (time.perf_counter() - started) * 1000)

    return middleware


def _write(scope: Scope, status: int, duration_ms: float) -> None:
    app: Any = scope.get("app")
    services = getattr(getattr(app, "state", None), "services", None)
    if services is None or scope.get("path") == "/healthz":
        return  # health probes every few seconds would drown the log
    principal = scope.get("state", {}).get("principal")
    try:
        services.databases.get()["request_log"].insert({
            "at": now(), "method": scope.get("method", "?"), "route": scope.get("path_template") or "(unmatched)",
            "status": status, "user_id": principal.user.id if principal else None, "duration_ms": round(duration_ms, 2),
        })
    except Exception:  # noqa: BLE001 - logging must never break a response
        pass
