"""Run the app under uvicorn in a background thread (tests, benchmarks, self-tests)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Literal

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# The request line and headers together; browsers send a few kB, a URL with a long query a few more.
MAX_HEAD_BYTES = 64 * 1024
# Connections and tasks at once; beyond them uvicorn answers 503 instead of growing without bound.
MAX_CONCURRENCY = 1000


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the cap it lacks: httptools buffers a header until it ends, so
    one 100 MB header used 100 MB of RAM per connection, before any authentication. Past MAX_HEAD_BYTES
    of request head the connection gets 431 and is closed."""

    _head_bytes = 0
    _in_head = True
    _tail = b""

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._tail = window[-3:]
            if self._head_bytes > MAX_HEAD_BYTES:
                self.transport.write(
                    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
                    b"content-length: 31\r\nconnection: close\r\n\r\nRequest headers are too large.\n"
                )
                self.transport.close()
                self._in_head = False
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes, self._tail = True, 0, b""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket: made before the egress lock, which forbids new sockets."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class HardenedConfig(uvicorn.Config):
    """uvicorn's config with the TLS context raised to TLS 1.2 minimum."""

    def load(self) -> None:
        super().load()
        if self.ssl is not None:
            from appliance.core.tls import harden

            harden(self.ssl)


def server_config(
    app: Any,
    host: str,
    port: int,
    *,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    log_level: str = "info",
    lifespan: Literal["auto", "on", "off"] = "on",
) -> uvicorn.Config:
    # No access log: its lines carry paths (transcript ids, share tokens), query strings and client
    # addresses. appliance/web/middleware.py logs one content-free line per request instead.
    return HardenedConfig(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan=lifespan,
        access_log=False,
        http=BoundedHttpToolsProtocol,
        limit_concurrency=MAX_CONCURRENCY,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
    )


class BackgroundServer:
    """`with BackgroundServer(app) as server:` serves on a free loopback port until the block ends."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        lifespan: Literal["auto", "on", "off"] = "on",
        sock: socket.socket | None = None,
    ) -> None:
        self.port = sock.getsockname()[1] if sock is not None else port or free_port(host)
        self.sockets = [sock] if sock is not None else None
        self.url = f"{'https' if certfile else 'http'}://{host}:{self.port}"
        self.server = uvicorn.Server(
            server_config(app, host, self.port, certfile=certfile, keyfile=keyfile, log_level="warning", lifespan=lifespan)
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": self.sockets}, name="uvicorn", daemon=True)

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
