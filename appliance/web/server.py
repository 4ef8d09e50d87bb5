"""Run the app under uvicorn in a background thread (tests, benchmarks, self-tests)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class HardenedConfig(uvicorn.Config):
    """uvicorn's config with the TLS context raised to TLS 1.2 minimum."""

    def load(self) -> None:
        super().load()
        if self.ssl is not None:
            from appliance.tls import harden

            harden(self.ssl)


def server_config(app: Any, host: str, port: int, *, certfile: Path | None = None, keyfile: Path | None = None,
                  log_level: str = "info", lifespan: str = "on") -> uvicorn.Config:
    return HardenedConfig(app, host=host, port=port, log_level=log_level, lifespan=lifespan,
                          ssl_certfile=str(certfile) if certfile else None, ssl_keyfile=str(keyfile) if keyfile else None)


class BackgroundServer:
    """`with BackgroundServer(app) as server:` serves on a free loopback port until the block ends."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None, *,
                 certfile: Path | None = None, keyfile: Path | None = None, lifespan: str = "on") -> None:
        self.port = port or free_port(host)
        self.url = f"{'https' if certfile else 'http'}://{host}:{self.port}"
        self.server = uvicorn.Server(server_config(app, host, self.port, certfile=certfile, keyfile=keyfile,
                                                   log_level="warning", lifespan=lifespan))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

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
