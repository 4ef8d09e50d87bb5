"""Attacks on a running appliance, made the way the security review made them (real HTTP, real Chromium,
real threads), each one a weakness that was found and fixed. docs/threat-model.md lists them."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from appliance.core.config import Settings
from appliance.web.pages import local_path
from tests.browser import ARGS
from tests.support import LiveServer, bootstrap

ATTACKER_EMAIL = "mallory@example.org"
ATTACKER_PASSWORD = "mallory owns this password"


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    from appliance.accounts import users as accounts
    from appliance.core.db import connect
    from appliance.web.app import create_app

    bootstrap(settings)
    db = connect(settings.storage.database_path)
    accounts.create(db, ATTACKER_EMAIL, ATTACKER_PASSWORD, "member")
    db.conn.close()
    with LiveServer(create_app(settings)) as server:
        yield server


class _EvilSite:
    """A page on another origin (127.0.0.2) that posts a form to the appliance as soon as it loads."""

    def __init__(self, html: str) -> None:
        page = html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.url = f"http://127.0.0.2:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_a_cross_site_form_cannot_sign_the_victim_in(live: LiveServer) -> None:
    """Login CSRF: a text/plain form whose body parses as JSON, posted from another site."""
    from playwright.sync_api import sync_playwright

    body = json.dumps({"email": ATTACKER_EMAIL, "password": ATTACKER_PASSWORD, "x": ""})[:-2]  # the form adds '="}'

    evil = _EvilSite(f"""<!doctype html><form id=f method=post enctype=text/plain action="{live.url}/api/v1/auth/login">
        <input name='{body}' value='"}}'></form><script>document.getElementById('f').submit()</script>""")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
            try:
                context = browser.new_context()
                page = context.new_page()
                with page.expect_navigation(url=f"{live.url}/api/v1/auth/login"):
                    page.goto(evil.url)
                assert "Cross-site requests cannot change anything" in page.content()
                assert [c for c in context.cookies(live.url) if c["name"].startswith("sotto")] == []
                # The victim is not signed in as anyone: the API still asks for a sign-in.
                page.goto(f"{live.url}/api/v1/me")
                assert '"status_code":401' in page.content().replace(" ", "")
            finally:
                browser.close()
    finally:
        evil.close()
    # The same request from a non-browser client with the wrong content type is refused too.
    with httpx.Client(base_url=live.url) as client:
        plain = client.post(
            "/api/v1/auth/login",
            content=f'{{"email": "{ATTACKER_EMAIL}", "password": "{ATTACKER_PASSWORD}"}}',
            headers={"Content-Type": "text/plain"},
        )
        assert plain.status_code == 415
        assert (
            client.post(
                "/api/v1/auth/login",
                json={"email": ATTACKER_EMAIL, "password": ATTACKER_PASSWORD},
                headers={"Origin": "http://127.0.0.2:9"},
            ).status_code
            == 403
        )
        assert client.post("/api/v1/auth/login", json={"email": ATTACKER_EMAIL, "password": ATTACKER_PASSWORD}).status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "/%5Cevil.example/x",
        "/\\evil.example/x",
        "//evil.example",
        "https://evil.example/",
        "/\t/evil.example",
        "javascript:alert(1)",
    ],
)
def test_sign_in_never_redirects_off_the_appliance(live: LiveServer, target: str) -> None:
    with httpx.Client(base_url=live.url) as client:
        page = client.get("/login", params={"next": target.replace("%5C", "\\").replace("%09", "\t")}).text
    assert 'data-next="/"' in page


def test_local_paths_are_kept() -> None:
    assert local_path("/t/abc?t=3#s-1") == "/t/abc?t=3#s-1" and local_path("/search?q=a%2Fb") == "/search?q=a%2Fb"
    assert local_path("/\\evil") == "/" and local_path("") == "/"


PROMPT_CANARY = "zirconostrich"
VOCAB_CANARY = "quasarwidget"


def _data_files_containing(folder: Path, needle: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_private_jobs_prompt_and_vocabulary_never_reach_the_database(settings: Settings, speech_bytes: bytes) -> None:
    """Done, failed and cancelled private jobs, read back while running and after, as anyone who may read the job would."""
    from appliance.private import crypto as pc
    from appliance.web.app import create_app
    from tests.support import ADMIN_PASSWORD, FakeRecognizer, wait_for_job

    class Recording(FakeRecognizer):
        prompts: ClassVar[list[str | None]] = []

        def transcribe(self, model, audio, options, progress, cancelled):  # type: ignore[no-untyped-def]
            self.prompts.append(f"{options.initial_prompt} {options.hotwords}")
            return super().transcribe(model, audio, options, progress, cancelled)

    recognizer = Recording(delay=1.5, explode=lambda audio: len(audio) < 16000 * 1.2)
    key = bootstrap(settings)
    options = {"private": "true", "initial_prompt": f"Names: {PROMPT_CANARY}", "hotwords": VOCAB_CANARY}
    with (
        LiveServer(create_app(settings, recognizer=recognizer)) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http,
    ):
        uid = http.get("/api/v1/me").json()["user"]["id"]
        enrolment = pc.enrol("a passphrase for this test", uid)
        assert (
            http.put("/api/v1/me/private-keys", json={**enrolment.record, "current_password": ADMIN_PASSWORD}).status_code == 201
        )
        done = http.post("/api/v1/transcriptions", files={"file": ("a.wav", speech_bytes, "audio/wav")}, data=options).json()
        running = http.post("/api/v1/transcriptions", files={"file": ("b.wav", speech_bytes, "audio/wav")}, data=options).json()
        short = _clip(speech_bytes, 1.0)
        failing = http.post("/api/v1/transcriptions", files={"file": ("c.wav", short, "audio/wav")}, data=options).json()
        seen = [http.get(f"/api/v1/jobs/{j['job_id']}").json() for j in (done, running, failing)]
        assert wait_for_job(http.get, done["job_id"])["state"] == "done"
        # Cancelled once the recognizer has it (a job cancelled before that never reaches the model).
        while http.get(f"/api/v1/jobs/{running['job_id']}").json()["progress"] <= 0:
            time.sleep(0.05)
        seen.append(http.get(f"/api/v1/jobs/{running['job_id']}").json())
        assert http.delete(f"/api/v1/jobs/{running['job_id']}").status_code == 200
        assert wait_for_job(http.get, running["job_id"])["state"] == "cancelled"
        assert wait_for_job(http.get, failing["job_id"])["state"] == "failed"
        seen += [http.get(f"/api/v1/jobs/{j['job_id']}").json() for j in (done, running, failing)]
        assert recognizer.calls == 3
        # The recognizer did get them, from memory.
        assert recognizer.prompts == [f"Names: {PROMPT_CANARY} {VOCAB_CANARY}"] * 3
    for job in seen:
        assert PROMPT_CANARY not in str(job) and VOCAB_CANARY not in str(job), job
    for needle in (PROMPT_CANARY.encode(), VOCAB_CANARY.encode()):
        assert _data_files_containing(settings.storage.data_dir, needle) == [], needle


def _clip(wav: bytes, seconds: float) -> bytes:
    import io
    import wave

    with wave.open(io.BytesIO(wav)) as source:
        frames = source.readframes(int(source.getframerate() * seconds))
        params = source.getparams()
    out = io.BytesIO()
    with wave.open(out, "wb") as target:
        target.setparams(params)
        target.writeframes(frames)
    return out.getvalue()


def test_an_owner_can_remove_a_failed_jobs_record(settings: Settings, speech_bytes: bytes) -> None:
    from tests.support import FakeRecognizer, running, wait_for_job

    with running(settings, recognizer=FakeRecognizer(explode=lambda audio: True)) as http:
        job = http.post("/api/v1/transcriptions", files={"file": ("kestrelminutes.wav", speech_bytes, "audio/wav")}).json()
        assert wait_for_job(http.get, job["job_id"])["state"] == "failed"
        assert _data_files_containing(settings.storage.data_dir, b"kestrelminutes")  # the record names the file
        assert http.delete(f"/api/v1/jobs/{job['job_id']}").status_code == 200
        assert http.get(f"/api/v1/jobs/{job['job_id']}").status_code == 404
    assert _data_files_containing(settings.storage.data_dir, b"kestrelminutes") == []


def test_a_read_key_cannot_manage_credentials_and_keys_die_with_the_accounts_recovery(
    settings: Settings, speech_bytes: bytes
) -> None:
    from appliance.accounts import apikeys
    from appliance.accounts import users as accounts
    from appliance.core.db import connect
    from appliance.web.app import create_app
    from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, FakeRecognizer, wait_for_job

    admin_key = bootstrap(settings)  # alice, admin, with an admin-scoped key
    db = connect(settings.storage.database_path)
    alice = accounts.by_email(db, ADMIN_EMAIL)
    assert alice is not None
    read_key, _ = apikeys.create(db, alice.id, "leaked", "read")
    bob = accounts.create(db, "bob@example.org", ADMIN_PASSWORD, "member")
    bob_key, _ = apikeys.create(db, bob.id, "bob's", "transcribe")
    db.conn.close()
    with LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server:
        leaked = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {read_key}"})
        admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"})
        keys = admin.get("/api/v1/apikeys").json()
        admin_key_id = next(k["id"] for k in keys if k["name"] == "tests")
        # Everything the review did with a read key is refused.
        attempts = [
            leaked.post("/api/v1/apikeys", json={"name": "mine now", "scope": "read"}),
            leaked.delete(f"/api/v1/apikeys/{admin_key_id}"),
            leaked.post("/api/v1/auth/logout-all"),
            leaked.get("/api/v1/me/private-keys"),
            leaked.post("/api/v1/me/password", json={"current_password": "x", "new_password": "y" * 12}),
        ]
        assert [r.status_code for r in attempts] == [403] * 5, [r.text for r in attempts]
        assert leaked.get("/api/v1/transcripts").status_code == 200  # reading, which the key is for, still works
        # Sign out everywhere revokes every key of the account.
        assert admin.post("/api/v1/auth/logout-all").json()["api_keys_revoked"] == 2
        assert leaked.get("/api/v1/transcripts").status_code == 401
        assert admin.get("/api/v1/transcripts").status_code == 401
        # A signed-in session (the account page) can still manage keys.
        web = httpx.Client(base_url=server.url)
        csrf = web.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()["csrf_token"]
        fresh = web.post("/api/v1/apikeys", json={"name": "new", "scope": "admin"}, headers={"X-CSRF-Token": csrf}).json()["key"]
        admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {fresh}"})
        # An admin's reset of bob's password revokes bob's keys; bob's share link stops when he is disabled.
        bob_http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {bob_key}"})
        job = bob_http.post("/api/v1/transcriptions", files={"file": ("b.wav", speech_bytes, "audio/wav")}).json()
        tid = wait_for_job(bob_http.get, job["job_id"])["transcript_id"]
        link = bob_http.post(f"/api/v1/transcripts/{tid}/shares", json={}).json()["path"]
        assert web.get(link).status_code == 200
        reset = admin.post(f"/api/v1/users/{bob.id}/password", json={"password": "a brand new password"})
        assert reset.status_code == 200 and reset.json()["api_keys_revoked"] == 1
        assert bob_http.get("/api/v1/transcripts").status_code == 401
        assert admin.post(f"/api/v1/users/{bob.id}/disable").status_code == 200
        assert web.get(link).status_code == 404
        assert admin.post(f"/api/v1/users/{bob.id}/enable").status_code == 200
        assert web.get(link).status_code == 200
        # Changing one's own password ends the other sessions and revokes the keys.
        changed = web.post(
            "/api/v1/me/password",
            json={"current_password": ADMIN_PASSWORD, "new_password": "another long password"},
            headers={"X-CSRF-Token": csrf},
        )
        assert changed.status_code == 200 and changed.json()["api_keys_revoked"] == 1
        assert admin.get("/api/v1/transcripts").status_code == 401
        assert web.get("/api/v1/me").status_code == 200  # this session stays


def _burst(count: int, parallel: int, attempt) -> list[int]:  # type: ignore[no-untyped-def]
    """`count` calls of attempt() from `parallel` real threads released together; their status codes."""
    from concurrent.futures import ThreadPoolExecutor

    gate = threading.Barrier(parallel)

    def one(i: int) -> int:
        if i < parallel:
            gate.wait()
        return attempt()

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, range(count)))


def test_parallel_guesses_cannot_outrun_the_share_link_and_account_lockouts(settings: Settings, speech_bytes: bytes) -> None:
    import dataclasses

    from appliance.web.app import create_app
    from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, FakeRecognizer, wait_for_job

    # The per-address throttle (tested below) is lifted here: this is about the counters themselves.
    settings = settings.replace("security", address_attempts_per_minute=100_000)
    settings = dataclasses.replace(settings, quotas=dataclasses.replace(settings.quotas, requests_per_minute=100_000))
    key = bootstrap(settings)
    with LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server:
        owner = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"})
        job = owner.post("/api/v1/transcriptions", files={"file": ("a.wav", speech_bytes, "audio/wav")}).json()
        tid = wait_for_job(owner.get, job["job_id"])["transcript_id"]
        path = owner.post(f"/api/v1/transcripts/{tid}/shares", json={"password": "open sesame"}).json()["path"]
        local = threading.local()

        def guess_link() -> int:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=server.url, timeout=60)
            return local.client.post(path, data={"password": "guess"}).status_code

        statuses = _burst(200, 50, guess_link)
        # Exactly five guesses were checked (four "not right", the fifth locks); every other one was refused unchecked.
        assert statuses.count(401) == 4 and statuses.count(429) == 196, sorted(set(statuses))
        assert httpx.post(f"{server.url}{path}", data={"password": "open sesame"}).status_code == 429  # still locked

        def guess_account() -> int:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=server.url, timeout=60)
            return local.client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "wrong guess"}).status_code

        assert set(_burst(60, 30, guess_account)) == {401}
        # The account is locked: the right password is refused now (it was let in after 11 guesses before).
        assert (
            httpx.post(f"{server.url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).status_code
            == 401
        )
        from appliance.core.db import connect

        db = connect(settings.storage.database_path)
        assert next(iter(db.query("SELECT locked_until FROM users WHERE email = ?", [ADMIN_EMAIL])))["locked_until"]
        db.conn.close()


def test_password_guessing_is_throttled_per_address(live: LiveServer) -> None:
    from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD

    with httpx.Client(base_url=live.url) as client:
        # Signing in successfully never counts: an office behind one address signs in as often as it needs.
        assert {
            client.post("/api/v1/auth/login", json={"email": ATTACKER_EMAIL, "password": ATTACKER_PASSWORD}).status_code
            for _ in range(30)
        } == {200}
        statuses = [
            client.post("/api/v1/auth/login", json={"email": f"user{i}@example.org", "password": "x"}).status_code
            for i in range(25)
        ]
        assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
        # Then the address waits, even with a right password, and for the setup code too.
        right = client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
        assert client.post("/setup", data={"setup_code": "x", "email": "e@example.org", "password": "p" * 12}).status_code == 429


def _bomb(path: Path, hours: float) -> bytes:
    """Silence in FLAC written to a pipe: about 0.7 MB an hour, and no length in its header."""
    import subprocess

    with path.open("wb") as out:
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "anullsrc=r=16000:cl=mono",
                "-t",
                str(int(hours * 3600)),
                "-c:a",
                "flac",
                "-f",
                "flac",
                "-",
            ],
            stdout=out,
            check=True,
        )
    return path.read_bytes()


class _PeakRss:
    """The process's resident memory, sampled every 20 ms while the block runs."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_decompression_bomb_is_stopped_by_length_and_by_memory(tmp_path: Path, speech_bytes: bytes) -> None:
    from appliance.core.config import load
    from appliance.web.app import create_app
    from tests.support import FakeRecognizer, running, settings_in, wait_for_job

    bomb = _bomb(tmp_path / "silence.flac", 2)
    assert len(bomb) < 2_000_000  # 1.3 MB that decodes to 2 hours (460 MB of samples)
    settings = load(
        None,
        {
            "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
            "APPLIANCE_MODELS_DIR": str(tmp_path),
            "APPLIANCE_WORKER__WORKERS_PER_DEVICE": "1",
            "APPLIANCE_SERVER__MAX_AUDIO_SECONDS": "1200",
            "APPLIANCE_SERVER__MAX_AUDIO_MEMORY_BYTES": str(150 * 2**20),
        },
    )
    key = bootstrap(settings)
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as http,
    ):
        # A file that says how long it is, over the limit: refused at upload.
        _bomb(tmp_path / "honest.flac", 0.5)
        import subprocess

        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(tmp_path / "honest.flac"), str(tmp_path / "honest.wav")], check=True
        )
        refused = http.post(
            "/api/v1/transcriptions", files={"file": ("long.wav", (tmp_path / "honest.wav").read_bytes(), "audio/wav")}
        )
        assert (
            refused.status_code == 413
            and "30 minutes long" in refused.json()["detail"]
            and "20 minutes" in refused.json()["detail"]
        )
        # The bomb hides its length: decoding stops at the 20-minute limit, with memory to match.
        with _PeakRss() as rss:
            job = http.post("/api/v1/transcriptions", files={"file": ("silence.flac", bomb, "audio/flac")}).json()
            failed = wait_for_job(http.get, job["job_id"])
        assert failed["state"] == "failed" and "longer than this appliance accepts (20 minutes)" in failed["error"]
        assert rss.peak - rss.start < 250 * 2**20, (rss.peak - rss.start) / 2**20  # 2 h decoded would be 460 MB (and twice that)
        # Within the length limit but over the memory left: decoded samples count against the same cap as
        # uploads (here not even a window fits beside the upload).
        tight = settings_in(
            tmp_path / "tight",
            APPLIANCE_WORKER__WORKERS_PER_DEVICE="1",
            APPLIANCE_SERVER__MAX_AUDIO_MEMORY_BYTES=str(len(bomb) + 8 * 2**20),
        )
        with running(tight, recognizer=FakeRecognizer()) as http2:
            job = http2.post("/api/v1/transcriptions", files={"file": ("silence.flac", bomb, "audio/flac")}).json()
            failed = wait_for_job(http2.get, job["job_id"])
            assert failed["state"] == "failed" and "more audio than this appliance has memory for" in failed["error"]
            # The worker goes on: the next, ordinary recording is transcribed.
            ok = http2.post("/api/v1/transcriptions", files={"file": ("a.wav", speech_bytes, "audio/wav")}).json()
            assert wait_for_job(http2.get, ok["job_id"])["state"] == "done"
            assert http2.get("/healthz").json()["audio_bytes_in_memory"] == 0
        # Recognition reads a window at a time, so only the window counts: with room for the bomb and one
        # window (19 MB) it is transcribed as the two hours of silence it is, within the same memory.
        roomy = settings_in(
            tmp_path / "roomy",
            APPLIANCE_WORKER__WORKERS_PER_DEVICE="1",
            APPLIANCE_SERVER__MAX_AUDIO_MEMORY_BYTES=str(len(bomb) + 21 * 2**20),
        )
        with running(roomy, recognizer=FakeRecognizer(), timeout=300) as http3, _PeakRss() as rss:
            job = http3.post("/api/v1/transcriptions", files={"file": ("silence.flac", bomb, "audio/flac")}).json()
            done = wait_for_job(http3.get, job["job_id"], timeout=300)
            assert done["state"] == "done" and done["duration"] == pytest.approx(7200, abs=1), done
            assert rss.peak - rss.start < 150 * 2**20, (rss.peak - rss.start) / 2**20


def test_a_huge_request_header_is_cut_off_before_it_costs_memory(live: LiveServer) -> None:
    import socket

    with _PeakRss() as rss, socket.create_connection(("127.0.0.1", live.port)) as raw:
        raw.settimeout(10)
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        sent = 0
        try:
            while sent < 100 * 2**20:
                raw.sendall(b"a" * 2**20)
                sent += 2**20
        except OSError:
            pass  # the server closed the connection: what it should do
        try:
            answer = raw.recv(200)
        except OSError:
            answer = b""
    assert sent < 100 * 2**20, "the server read a 100 MB header"
    assert answer.startswith(b"HTTP/1.1 431") or answer == b""
    assert rss.peak - rss.start < 30 * 2**20, (rss.peak - rss.start) / 2**20
    # A header of ordinary size still works, and so does the server.
    ok = httpx.get(f"{live.url}/healthz", headers={"X-Fine": "b" * 8000})
    assert ok.status_code == 200
    assert httpx.get(f"{live.url}/healthz", headers={"X-Big": "b" * 70_000}).status_code == 431


def test_odd_paths_get_a_plain_400_and_share_pages_are_never_cached(live: LiveServer, settings: Settings) -> None:
    for path in ("/static/x%00.png", "/api/v1/transcripts/%00", "/s/%0d%0aSet-Cookie:x"):
        response = httpx.get(f"{live.url}{path}")
        assert response.status_code == 400, path
    for path in ("/s/not-a-token",):
        assert httpx.get(f"{live.url}{path}").headers["cache-control"] == "no-store"
    # The database and its WAL are readable by the appliance's user only.
    for name in ("appliance.db", "appliance.db-wal"):
        assert (settings.storage.data_dir / name).stat().st_mode & 0o077 == 0, name


def test_joining_a_workspace_needs_the_invitees_consent_and_reveals_no_accounts(settings: Settings, speech_bytes: bytes) -> None:
    from contextlib import closing

    from appliance.accounts import apikeys
    from appliance.accounts import users as accounts
    from appliance.core.db import connect
    from appliance.web.app import create_app
    from tests.support import ADMIN_PASSWORD, FakeRecognizer, signed_in, wait_for_job

    admin_key = bootstrap(settings)
    db = connect(settings.storage.database_path)
    erin = accounts.create(db, "erin@example.org", ADMIN_PASSWORD, "member")
    erin_read = apikeys.create(db, erin.id, "read", "read")[0]
    db.conn.close()
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}) as mallory_admin,
    ):
        team = mallory_admin.post("/api/v1/workspaces", json={"name": "Harvest"}).json()["id"]
        known = mallory_admin.put(f"/api/v1/workspaces/{team}/members", json={"email": "erin@example.org", "role": "viewer"})
        unknown = mallory_admin.put(f"/api/v1/workspaces/{team}/members", json={"email": "nobody@example.org", "role": "viewer"})
        assert known.status_code == unknown.status_code == 200
        assert known.json()["status"] == unknown.json()["status"] == "invited"  # the same answer: no enumeration
        members = mallory_admin.get(f"/api/v1/workspaces/{team}/members").json()
        assert [(m["email"], m["status"]) for m in members if m["email"] == "erin@example.org"] == [
            ("erin@example.org", "invited")
        ]
        with closing(signed_in(server.url, "erin@example.org")) as erin_http:
            # Not a member yet: uploads there are refused, nothing of the workspace is visible.
            assert [w["name"] for w in erin_http.get("/api/v1/workspaces").json()] == ["erin@example.org (personal)"]
            invitations = erin_http.get("/api/v1/me/workspace-invitations").json()
            assert [(i["workspace"], i["role"], i["invited_by"]) for i in invitations] == [
                ("Harvest", "viewer", "alice@example.org")
            ]
            assert "Workspace invitations" in erin_http.get("/account").text
            # A leaked read key cannot accept on her behalf.
            read = httpx.post(
                f"{server.url}/api/v1/me/workspace-invitations/{team}",
                json={"accept": True},
                headers={"Authorization": f"Bearer {erin_read}"},
            )
            assert read.status_code == 403
            declined = erin_http.post(f"/api/v1/me/workspace-invitations/{team}", json={"accept": False})
            assert declined.status_code == 200 and declined.json()["joined"] is False
            assert erin_http.get(f"/api/v1/workspaces/{team}/members").status_code == 404
            assert erin_http.post(f"/api/v1/me/workspace-invitations/{team}", json={"accept": True}).status_code == 404
            # Invited again, she accepts: now she is a viewer there.
            mallory_admin.put(f"/api/v1/workspaces/{team}/members", json={"email": "erin@example.org", "role": "viewer"})
            assert erin_http.post(f"/api/v1/me/workspace-invitations/{team}", json={"accept": True}).json()["role"] == "viewer"
            assert {w["name"]: w["role"] for w in erin_http.get("/api/v1/workspaces").json()}["Harvest"] == "viewer"
        job = mallory_admin.post(
            "/api/v1/transcriptions", params={"workspace_id": team}, files={"file": ("a.wav", speech_bytes, "audio/wav")}
        ).json()
        assert wait_for_job(mallory_admin.get, job["job_id"])["state"] == "done"


def test_simultaneous_uploads_cannot_outrun_the_jobs_in_flight_limit(settings: Settings, speech_bytes: bytes) -> None:
    """Eight uploads released at the same moment with one key, then with two keys of one user: exactly
    four are accepted (the limit), the others get 429 (they were all accepted before)."""
    import dataclasses

    from appliance.accounts import apikeys
    from appliance.accounts import users as accounts
    from appliance.core.db import connect
    from appliance.web.app import create_app
    from tests.support import ADMIN_EMAIL, FakeRecognizer

    settings = dataclasses.replace(settings, quotas=dataclasses.replace(settings.quotas, concurrent_jobs=4))
    key = bootstrap(settings)
    db = connect(settings.storage.database_path)
    alice = accounts.by_email(db, ADMIN_EMAIL)
    assert alice is not None
    second = apikeys.create(db, alice.id, "second", "transcribe")[0]
    db.conn.close()
    for keys in ([key] * 8, [key, second] * 4):
        with LiveServer(create_app(settings, recognizer=FakeRecognizer(delay=8))) as server:
            order = iter(range(8))
            lock = threading.Lock()

            def upload(keys: list[str] = keys, order: Iterator[int] = order, lock: threading.Lock = lock) -> int:
                with lock:
                    mine = keys[next(order)]
                with httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {mine}"}) as client:
                    return client.post("/api/v1/transcriptions", files={"file": ("a.wav", speech_bytes, "audio/wav")}).status_code

            statuses = _burst(8, 8, upload)
            assert sorted(statuses) == [202] * 4 + [429] * 4, statuses
            # The slots of refused uploads were given back: exactly four jobs exist, and nothing is reserved.
            from appliance.core.db import connect as reconnect

            check = reconnect(settings.storage.database_path)
            assert next(iter(check.query("SELECT count(*) AS n FROM jobs WHERE state IN ('queued', 'running')")))["n"] == 4
            check.execute("UPDATE jobs SET state = 'cancelled' WHERE state IN ('queued', 'running')")  # for the next round
            check.conn.close()
