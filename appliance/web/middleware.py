"""ASGI middleware: security headers on every response, and the content-free request log."""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import threading
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Message, Receive, Scope, Send

from appliance.core.clock import now
from appliance.core.db import request_scope

access = logging.getLogger("appliance.access")

# No inline script or style anywhere, so the policy needs neither unsafe-inline nor unsafe-eval.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def security_headers(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        if any(ord(c) < 0x20 or c == "\x7f" for c in scope.get("path", "")):
            # A NUL or control character in the path names no resource; file lookups would crash on it.
            body = b"Bad request: the address contains control characters.\n"
            start: HTTPResponseStartEvent = {
                "type": "http.response.start",
                "status": 400,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()), *HEADERS],
            }
            end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
            await send(start)
            await send(end)
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
    """One line per request, on the console and in the database: method, route template, status,
    duration and a request id (also sent as X-Request-Id, so a user's report can be matched to it).
    Never the path itself (transcript ids, share tokens), the query string, the body or the client's
    address."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = secrets.token_hex(8)

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        state = scope.setdefault("state", {})
        try:
            with request_scope(state):  # handlers (in threads) share one pooled connection per request
                await app(scope, receive, capture)
        finally:
            services = getattr(getattr(scope.get("app"), "state", None), "services", None)
            if services is not None:  # the connection a sync handler borrowed goes back to the pool
                services.databases.release_request(state)
            _write(scope, status, (time.perf_counter() - started) * 1000, request_id)

    return middleware


class RequestLogWriter:
    """Writes the request log's rows from a thread of its own. The event loop only queues them: an
    INSERT there would wait for SQLite's write lock (held for seconds while the worker stores a long
    transcript) with every other request stuck behind it."""

    def __init__(self, databases: Any) -> None:
        self.databases = databases
        self.rows: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="request-log", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.rows.put(None)
            self.thread.join(timeout=10)

    def put(self, row: dict[str, Any]) -> None:
        self.rows.put(row)

    def _run(self) -> None:
        db = self.databases.get()  # this thread's own, for as long as the app runs
        while True:
            row = self.rows.get()
            if row is None:
                return
            batch = [row]
            while len(batch) < 500:  # whatever queued up while the lock was held goes in one transaction
                try:
                    more = self.rows.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._insert(db, batch)
                    return
                batch.append(more)
            self._insert(db, batch)

    @staticmethod
    def _insert(db: Any, rows: list[dict[str, Any]]) -> None:
        with contextlib.suppress(Exception):  # the log never takes a request or the app down
            db.table("request_log").insert_all(rows)


def _route(scope: Scope) -> str:
    # The template ("/api/v1/transcripts/{transcript_id:str}"), never the concrete path.
    return scope.get("path_template") or "(unmatched)"


def _write(scope: Scope, status: int, duration_ms: float, request_id: str) -> None:
    if scope.get("path") == "/healthz":
        return  # health probes every few seconds would drown the log
    access.info(
        "request id=%s method=%s route=%s status=%d ms=%.1f",
        request_id,
        scope.get("method", "?"),
        _route(scope),
        status,
        duration_ms,
    )
    app: Any = scope.get("app")
    services = getattr(getattr(app, "state", None), "services", None)
    if services is None:
        return
    principal = scope.get("state", {}).get("principal")
    if services.request_log is not None:
        services.request_log.put(
            {
                "at": now(),
                "method": scope.get("method", "?"),
                "route": _route(scope),
                "status": status,
                "user_id": principal.user.id if principal else None,
                "duration_ms": round(duration_ms, 2),
            }
        )
