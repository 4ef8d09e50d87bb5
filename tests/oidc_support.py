"""A real OpenID provider for the single sign-on tests: node-oidc-provider (OpenID Certified), pinned in
tests/data/oidc-provider/package-lock.json (scripts/test runs npm ci there), on a loopback port; and its development
login and consent forms driven over HTTP up to the callback URL (code and state) it sends the browser to."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PROVIDER_DIR = Path(__file__).resolve().parent / "data" / "oidc-provider"


@dataclass
class OpenIdProvider:
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, key_id: str) -> None:
        node = shutil.which("node")
        if node is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            pytest.fail("node and tests/data/oidc-provider/node_modules are required (scripts/test runs npm ci there)")
        self.process = subprocess.Popen(
            [node, "provider.mjs"],
            cwd=PROVIDER_DIR,
            env={**os.environ, **self.env, "ISSUER": self.issuer, "KEY_ID": key_id, "NODE_ENV": "test"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the provider did not start: {self.process.stderr.read().decode() if self.process.stderr else ''}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def code_flow(appliance_url: str, issuer: str, name: str) -> str:
    """A real callback URL (code and state) from the provider, not yet delivered to the appliance: the
    provider's development login and consent forms driven over HTTP (the browser flow is the test above)."""
    with httpx.Client(base_url=appliance_url, timeout=30) as appliance, httpx.Client(timeout=30) as browser:
        location = appliance.get("/auth/oidc/start").headers["location"]
        for _ in range(12):
            if "/auth/oidc/callback" in location:
                return location
            url = location if location.startswith("http") else issuer + location
            response = browser.get(url)
            if response.status_code == 200 and "/interaction/" in url:
                prompt = "login" if 'name="login"' in response.text else "consent"
                form = {"prompt": prompt, "login": name, "password": "anything"} if prompt == "login" else {"prompt": "consent"}
                response = browser.post(url, data=form)
            location = response.headers.get("location", "")
            assert location, (response.status_code, response.text[:300])
    raise AssertionError("the provider never sent the browser back")
