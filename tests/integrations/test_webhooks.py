"""Webhooks through the real app: a receiver written here from the documented signing scheme
(docs/webhooks.md) gets job.done, transcript.deleted and ping; a host an administrator did not allow is
refused; a receiver that fails is retried; and under `appliance serve` with the kernel egress lock on,
the only way out is the broker (the server's own threads cannot create a socket)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.core.config import Settings
from appliance.integrations import webhooks
from appliance.web.server import free_port
from tests.support import REPO, FakeRecognizer, Scenario, settings_in, wait_for_job


def documented_signature_ok(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """docs/webhooks.md, step by step: t and v1 from the header, HMAC-SHA256 over "<t>.<body>"."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    if abs(time.time() - int(parts["t"])) > tolerance:
        return False
    mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"])


class Receiver:
    """An intranet service that collects what it is sent; answers 500 to the first `fail` requests."""

    def __init__(self, fail: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail = fail
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = 500 if outer.fail > 0 else 204
                outer.fail -= 1
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, secret: str) -> list[dict[str, Any]]:
        out = []
        for headers, body in self.received:
            assert documented_signature_ok(secret, body, headers["sotto-signature"]), headers
            event = json.loads(body)
            assert headers["sotto-event"] == event["event"] and headers["sotto-delivery"] == event["id"]
            out.append(event)
        return out

    def wait_for(self, secret: str, event: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events(secret) if e["event"] == event]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no {event} within {timeout}s: {[e['event'] for e in self.events(secret)]}")

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_signature_scheme_and_urls() -> None:
    body = b'{"event":"ping"}'
    header = webhooks.sign("whsec_x", body)
    assert webhooks.verify("whsec_x", body, header) and documented_signature_ok("whsec_x", body, header)
    assert not webhooks.verify("whsec_x", body + b" ", header)  # the body was changed
    assert not webhooks.verify("whsec_x", body, webhooks.sign("whsec_x", body, int(time.time()) - 3600))  # replayed later
    allowed = ("hooks.intranet.example:443", "10.0.0.5:8080")
    assert webhooks.parse_url("https://hooks.intranet.example/sotto?x=1", allowed).path == "/sotto?x=1"
    assert webhooks.parse_url("http://10.0.0.5:8080/", allowed).destination.port == 8080
    for url, says in [
        ("https://evil.example/", "not on this appliance's list"),
        ("http://10.0.0.5/", "not on this appliance's list"),  # another port
        ("https://user:pw@hooks.intranet.example/", "no user name or password"),
        ("ftp://hooks.intranet.example/", "http:// or https://"),
    ]:
        with pytest.raises(webhooks.WebhookError, match=says):
            webhooks.parse_url(url, allowed)


def test_job_done_deleted_and_ping_reach_the_receiver_signed(
    tmp_path: Path, receiver: Receiver, speech_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = Scenario(settings_in(tmp_path, APPLIANCE_SECURITY__EGRESS_ALLOW=f"127.0.0.1:{receiver.port}"))
    alice = scenario.person("alice@example.org", role="admin", scope="admin")
    mallory = scenario.person("mallory@example.org")
    workspace = alice.user.personal_workspace_id
    with (
        scenario.serve(FakeRecognizer()) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {alice.key}"}) as http,
    ):
        refused = http.post(f"/api/v1/workspaces/{workspace}/webhooks", json={"url": "https://hooks.elsewhere.example/"})
        assert refused.status_code == 400 and "security.egress_allow" in refused.json()["detail"]
        made = http.post(
            f"/api/v1/workspaces/{workspace}/webhooks",
            json={"url": f"http://127.0.0.1:{receiver.port}/hook", "include_text": True},
        )
        assert made.status_code == 201, made.text
        secret, hook = made.json()["secret"], made.json()["webhook"]
        listing = http.get(f"/api/v1/workspaces/{workspace}/webhooks").json()
        assert "secret" not in json.dumps(listing) and listing["allowed_receivers"] == [f"127.0.0.1:{receiver.port}"]
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {mallory.key}"}) as other:
            assert other.get(f"/api/v1/workspaces/{workspace}/webhooks").status_code == 404  # not her workspace
            assert other.post(f"/api/v1/webhooks/{hook['id']}/test").status_code == 404

        job = http.post("/api/v1/transcriptions", files={"file": ("clip.wav", speech_bytes)}).json()
        done = wait_for_job(http.get, job["job_id"])
        event = receiver.wait_for(secret, "job.done")
        assert event["data"]["job_id"] == job["job_id"] and event["data"]["transcript_ids"] == [done["transcript_id"]]
        assert event["data"]["transcripts"][0]["text"] and event["workspace_id"] == workspace

        assert http.delete(f"/api/v1/transcripts/{done['transcript_id']}").status_code == 204
        assert receiver.wait_for(secret, "transcript.deleted")["data"]["transcript_id"] == done["transcript_id"]
        assert http.post(f"/api/v1/webhooks/{hook['id']}/test").status_code == 202
        receiver.wait_for(secret, "ping")
        log = http.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()
        assert {d["event"] for d in log} == {"job.done", "transcript.deleted", "ping"} and {d["state"] for d in log} == {
            "delivered"
        }
        assert http.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
        assert http.get(f"/api/v1/webhooks/{hook['id']}/deliveries").status_code == 404


def test_a_failing_receiver_is_retried_and_the_log_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "BACKOFF", (0.3, 0.3, 0.3, 0.3, 0.3, 0.3))
    flaky = Receiver(fail=2)
    try:
        scenario = Scenario(settings_in(tmp_path, APPLIANCE_SECURITY__EGRESS_ALLOW=f"127.0.0.1:{flaky.port}"))
        alice = scenario.person("alice@example.org", role="admin", scope="admin")
        with (
            scenario.serve(FakeRecognizer()) as server,
            httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {alice.key}"}) as http,
        ):
            made = http.post(
                f"/api/v1/workspaces/{alice.user.personal_workspace_id}/webhooks", json={"url": f"http://127.0.0.1:{flaky.port}/"}
            ).json()
            http.post(f"/api/v1/webhooks/{made['webhook']['id']}/test")
            flaky.wait_for(made["secret"], "ping")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                (entry,) = http.get(f"/api/v1/webhooks/{made['webhook']['id']}/deliveries").json()
                if entry["state"] == "delivered":
                    break
                time.sleep(0.1)
            assert entry["state"] == "delivered" and entry["attempts"] == 3 and len(flaky.received) == 3
    finally:
        flaky.close()


def test_under_serve_with_the_egress_lock_only_the_broker_reaches_the_receiver(
    tmp_path: Path, receiver: Receiver, speech_bytes: bytes
) -> None:
    """The real `appliance serve`: the kernel lock forbids the server's threads any new socket, so the
    delivery can only have come through the broker forked before the lock; the lock counted no refusal."""
    settings: Settings = settings_in(tmp_path)
    scenario = Scenario(settings)
    alice = scenario.person("alice@example.org", role="admin", scope="admin")
    scenario.close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update(
        {
            "APPLIANCE_DATA_DIR": str(settings.storage.data_dir),
            "APPLIANCE_MODELS_DIR": str(settings.models.models_dir),
            "APPLIANCE_SECURITY__EGRESS_ALLOW": f"127.0.0.1:{receiver.port}",
            "HOME": str(tmp_path / "home"),
            "PYTHONPATH": str(REPO),
        }
    )
    (tmp_path / "home").mkdir()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "appliance.cli", "serve", "--port", str(port)], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {alice.key}"}, timeout=60) as http:
            made = http.post(
                f"/api/v1/workspaces/{alice.user.personal_workspace_id}/webhooks",
                json={"url": f"http://127.0.0.1:{receiver.port}/"},
            )
            assert made.status_code == 201, made.text
            job = http.post("/api/v1/transcriptions", files={"file": ("clip.wav", speech_bytes)}).json()
            assert wait_for_job(http.get, job["job_id"])["state"] == "done"
            receiver.wait_for(made.json()["secret"], "job.done")
        output = log.read_text()
        assert "kernel egress lock active" in output and "egress broker" in output, output
        state = json.loads((settings.storage.data_dir / "run" / "egress-lock.json").read_text())
        assert state["server_pid"] == process.pid and (state["mode"] != "counted" or state["refused"] == 0), state
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_integrations_page_adds_tests_and_removes_a_webhook(tmp_path: Path, receiver: Receiver) -> None:
    """In Chromium, keyboard only where it matters: the secret is shown once, Enter confirms removal."""
    import shutil

    from playwright.sync_api import sync_playwright

    from tests.browser import ARGS
    from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD

    scenario = Scenario(settings_in(tmp_path, APPLIANCE_SECURITY__EGRESS_ALLOW=f"127.0.0.1:{receiver.port}"))
    alice = scenario.person(ADMIN_EMAIL, role="admin", scope="admin")
    with scenario.serve(FakeRecognizer()) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(f"{server.url}/login")
        page.fill("input[name=email]", ADMIN_EMAIL)
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server.url}/")
        page.goto(f"{server.url}/account")
        page.click("text=Integrations: webhooks")
        page.fill(".hook-form input[name=url]", f"http://127.0.0.1:{receiver.port}/in")
        page.click(".hook-form button[type=submit]")
        page.wait_for_selector("#hook-secret[open]")
        secret = page.inner_text("#hook-secret-value")
        assert secret.startswith("whsec_")
        page.keyboard.press("Enter")
        page.wait_for_selector(".hook >> text=Send a test")
        page.click(".hook >> text=Send a test")
        receiver.wait_for(secret, "ping")  # the secret the page showed verifies what the receiver got
        page.click(".hook .danger")
        page.wait_for_selector("#hook-delete[open]")
        page.keyboard.press("Escape")  # Esc cancels: still there
        assert page.locator(".hook").count() == 1
        page.click(".hook .danger")
        page.keyboard.press("Enter")  # Enter confirms
        page.wait_for_selector("text=No webhooks yet.")
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {alice.key}"}) as http:
            assert http.get(f"/api/v1/workspaces/{alice.user.personal_workspace_id}/webhooks").json()["webhooks"] == []
        browser.close()
