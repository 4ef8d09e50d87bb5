"""Nothing leaves the box, checked where an auditor would: `appliance serve` runs as its own process
under strace (every thread and child), through a whole session that wakes every native library, then
stays idle long enough for delayed background uploads. The trace must show no outbound connection
or datagram, no DNS query, no socket refused by the lock (nothing even tried), no file written outside
the data dir; the console must hold no file name, search word, share token, transcript text or client
address. The session includes local AI (a summary streamed and stored, a question answered, the summary
in every export); a second traced server is configured with an on-prem AI server (a loopback stub named
in security.egress_allow) and must connect to that server and nowhere else. Another test shows the kernel
lock refusing native code inside the real server process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from appliance.core import confinement
from appliance.private import crypto as pc
from appliance.web.server import free_port
from tests.strace_support import HARMLESS_PREFIXES, TRACED, WRITE_FLAGS, Trace, _paths, _strace  # noqa: F401
from tests.support import ADMIN_PASSWORD, ChatServerStub, bootstrap, speak, wait_for_job

REPO = Path(__file__).resolve().parents[2]
# Long enough for onnxruntime's uploader (about a minute after its first session) and similar timers.
IDLE_AFTER_FIRST_INFERENCE = float(os.environ.get("SOTTO_EGRESS_IDLE_SECONDS", "125"))
CLIENT_ADDRESS = "127.0.0.77"  # the test's own source address, so its appearance in a log is unambiguous
FILE_NAME = "Kestrel-Budget-Review-4471"
SENTENCE = "Orange giraffes painted the lighthouse in Marseille yesterday."
HEARD = ("giraffe", "marseille")  # what tiny.en hears of it every time (tests/private/test_private_jobs.py)
PRIVATE_SENTENCE = "The harbour pilot counted seven blue boats before noon."


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    trace_dir: Path
    cwd: Path
    stdout: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace")


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("pyannote.audio", reason="the pyannote extra is part of the test install")
    from tests.pyannote_random import build_random_pipeline_dir

    return build_random_pipeline_dir(tmp_path_factory.mktemp("pyannote") / "pyannote-speaker-diarization-community-1")


def _start(
    tmp: Path, models: Path, *, prelude: str = "", environ: dict[str, str] | None = None, port: int | None = None
) -> Server:
    data_dir, trace_dir, cwd = tmp / "data", tmp / "trace", tmp / "cwd"
    for d in (trace_dir, cwd, tmp / "home"):
        d.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "ORT_", "XDG_")) and k != "TMPDIR"}
    env.update(
        {
            "APPLIANCE_DATA_DIR": str(data_dir),
            "APPLIANCE_MODELS_DIR": str(models),
            "HOME": str(tmp / "home"),
            "APPLIANCE_DIARIZATION__DEVICE": "cpu",
            "APPLIANCE_QUOTAS__REQUESTS_PER_MINUTE": "100000",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(environ or {})
    stdout = tmp / "console.log"
    code = f"{prelude}\nfrom appliance.cli import app\napp()"
    command = [
        _strace(),
        "-f",
        "-ff",
        "-qq",
        "-y",
        "-s",
        "256",
        "-e",
        f"trace={TRACED}",
        "-o",
        str(trace_dir / "t"),
        sys.executable,
        "-c",
        code,
        "serve",
        "--port",
        str(port),
    ]
    with stdout.open("wb") as sink:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", data_dir, trace_dir, cwd, stdout)
    deadline = time.monotonic() + 120
    with _client(server.url) as probe:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"the server exited: {server.output()}")
            try:
                if probe.get("/healthz").status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the server did not start: {server.output()}")


def _stop(server: Server) -> None:
    """Ctrl-C to the server itself (strace, its parent, blocks the signal); strace ends with it."""
    import psutil

    tracees = psutil.Process(server.process.pid).children()
    for tracee in tracees:
        tracee.send_signal(signal.SIGINT)
    try:
        server.process.wait(60)
    except subprocess.TimeoutExpired:
        for tracee in tracees:
            tracee.kill()
        server.process.kill()
        server.process.wait(10)


def _client(url: str, key: str | None = None) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=CLIENT_ADDRESS)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url, transport=transport, headers=headers, timeout=300)


def _wav(path: Path, text: str) -> bytes:
    return speak(path, text).read_bytes()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, pipeline_dir: Path, llm_dir: Path) -> Iterator[dict[str, object]]:
    """One traced server through a whole session; yields what the assertions need."""
    tmp = tmp_path_factory.mktemp("egress")
    models = tmp / "models"
    models.mkdir()
    (models / pipeline_dir.name).symlink_to(pipeline_dir)
    (models / "smollm2").symlink_to(llm_dir)  # local AI: the text model, found in the models directory
    from appliance.core.config import load

    key = bootstrap(load(None, {"APPLIANCE_DATA_DIR": str(tmp / "data"), "APPLIANCE_MODELS_DIR": str(models)}))
    speech = _wav(tmp / "speech.wav", SENTENCE)
    private_speech = _wav(tmp / "private.wav", PRIVATE_SENTENCE)
    server = _start(tmp, models)
    found: dict[str, object] = {"server": server, "tmp": tmp}
    try:
        with _client(server.url, key) as http:
            first_inference = time.monotonic()
            # Standard job: VAD (onnxruntime), recognition (CTranslate2), the embedded speaker engine.
            embedded = http.post(
                "/api/v1/transcriptions",
                files={"file": (f"{FILE_NAME}.wav", speech, "audio/wav")},
                data={"diarize": "true", "diarization_engine": "embedded", "vad_filter": "true"},
            )
            assert embedded.status_code == 202, embedded.text
            # pyannote (torch) on a short clip.
            torch_job = http.post(
                "/api/v1/transcriptions",
                files={"file": (f"{FILE_NAME}-b.wav", speech, "audio/wav")},
                data={"diarize": "true", "diarization_engine": "pyannote"},
            )
            assert torch_job.status_code == 202, torch_job.text
            # A private job: the owner enrols (keys made here, as the browser would), then uploads.
            uid = http.get("/api/v1/me").json()["user"]["id"]
            enrolment = pc.enrol("a private passphrase for the audit", uid)
            assert (
                http.put("/api/v1/me/private-keys", json={**enrolment.record, "current_password": ADMIN_PASSWORD}).status_code
                == 201
            )
            private = http.post(
                "/api/v1/transcriptions",
                files={"file": ("private-dictation.wav", private_speech, "audio/wav")},
                data={"private": "true"},
            )
            assert private.status_code == 202, private.text
            jobs = [wait_for_job(http.get, r.json()["job_id"], timeout=600) for r in (embedded, torch_job, private)]
            assert [j["state"] for j in jobs] == ["done"] * 3, jobs
            tid = jobs[0]["transcript_id"]
            doc = http.get(f"/api/v1/transcripts/{tid}").json()
            text = doc["text"].lower()
            assert all(w in text for w in HEARD), text
            assert doc["speakers"] and jobs[1]["state"] == "done"
            hits = http.get("/api/v1/search", params={"q": "marseille"})
            assert hits.status_code == 200 and tid in hits.text
            # Local AI: a summary (CTranslate2's generator on the CPU), streamed and stored; a question.
            run = http.post(f"/api/v1/transcripts/{tid}/summaries", json={})
            assert run.status_code == 202, run.text
            with http.stream("GET", f"/api/v1/summary-runs/{run.json()['id']}/events") as events:
                tail = [line for line in events.iter_lines() if line.startswith("event:")][-1]
            assert tail == "event: done", tail
            answer = http.post(f"/api/v1/transcripts/{tid}/ask", json={"question": "What did the giraffes paint?"})
            assert answer.status_code == 200 and answer.json()["citations"], answer.text
            for fmt in ("txt", "srt", "vtt", "json", "md", "csv", "docx", "pdf"):
                export = http.get(f"/api/v1/transcripts/{tid}/export", params={"format": fmt})
                assert export.status_code == 200 and export.content, fmt
            assert "## Summary" in http.get(f"/api/v1/transcripts/{tid}/export", params={"format": "md"}).text
            share = http.post(f"/api/v1/transcripts/{tid}/shares", json={"formats": ["txt", "pdf"]})
            assert share.status_code in (200, 201), share.text
            token = share.json()["path"].rsplit("/", 1)[1]
            with _client(server.url) as anonymous:
                page = anonymous.get(f"/s/{token}")
                assert page.status_code == 200 and "arseille" in page.text
            metrics = http.get("/metrics").text
            found.update(token=token, metrics_busy=metrics, text=text)
            # Idle: background threads of native libraries wake up on their own timers.
            remaining = IDLE_AFTER_FIRST_INFERENCE - (time.monotonic() - first_inference)
            if remaining > 0:
                time.sleep(remaining)
            found["metrics_idle"] = http.get("/metrics").text
            found["idle_seconds"] = time.monotonic() - first_inference
        doctor = subprocess.run(
            [sys.executable, "-c", "from appliance.cli import app; app()", "doctor", "--json"],
            env={
                **os.environ,
                "APPLIANCE_DATA_DIR": str(server.data_dir),
                "APPLIANCE_MODELS_DIR": str(models),
                "PYTHONPATH": str(REPO),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        found["doctor"] = json.loads(doctor.stdout)["egress_lock"]
    finally:
        _stop(server)
    found["trace"] = Trace.read(server.trace_dir)
    yield found


@pytest.mark.timeout(900)  # the traced session idles past two minutes on purpose
def test_a_whole_session_sends_nothing_and_writes_only_the_data_dir(session: dict[str, object]) -> None:
    server = session["server"]
    trace = session["trace"]
    assert isinstance(server, Server) and isinstance(trace, Trace)
    assert session["idle_seconds"] >= IDLE_AFTER_FIRST_INFERENCE
    # The trace is real: it saw the server's own listener, the database and the data dir.
    assert trace.calls("socket") and any("appliance.db" in line for line in trace.calls("openat"))
    assert trace.outbound() == [], "\n".join(trace.outbound()[:20])
    assert trace.refused_sockets() == [], "something tried to open a network socket:\n" + "\n".join(trace.refused_sockets()[:20])
    outside = trace.writes_outside(server.data_dir, server.cwd)
    assert outside == [], "written outside the data dir:\n" + "\n".join(outside[:30])
    # Everything the server wrote is its user's alone (bare-metal installs share the machine).
    loose = [str(p) for p in server.data_dir.rglob("*") if p.is_file() and p.stat().st_mode & 0o077]
    assert loose == [], loose
    # No telemetry store anywhere, inside the data dir included.
    assert not list(Path(session["tmp"]).rglob(".onnxruntime")), "a telemetry store was written"  # type: ignore[arg-type]


@pytest.mark.timeout(900)  # the traced session idles past two minutes on purpose
def test_the_console_holds_no_content(session: dict[str, object]) -> None:
    server = session["server"]
    assert isinstance(server, Server)
    console = server.output()
    assert "request id=" in console and "route=/api/v1/transcriptions" in console  # the structured line is there
    lowered = console.lower()
    for needle in (
        FILE_NAME.lower(),
        "marseille",
        "giraffe",
        str(session["token"]).lower(),
        CLIENT_ADDRESS,
        "harbour",
        "q=",
        "private-dictation",
    ):
        assert needle not in lowered, f"{needle!r} in the console output"


@pytest.mark.timeout(900)  # the traced session idles past two minutes on purpose
def test_lock_is_reported_active_with_nothing_refused(session: dict[str, object]) -> None:
    for metrics in (session["metrics_busy"], session["metrics_idle"]):
        assert "sotto_egress_lock_active 1.0" in str(metrics)
        assert "sotto_egress_refused_total 0.0" in str(metrics)
    doctor = session["doctor"]
    assert isinstance(doctor, dict)
    assert doctor["active"] is True and doctor["refused"] == 0 and doctor["ok"] is True, doctor


@pytest.mark.timeout(600)
def test_an_on_prem_ai_server_is_the_only_connection(tmp_path: Path) -> None:
    """AI through the customer's own server: `serve` under strace, its kernel lock on, the server named in
    assist.server_url and security.egress_allow. A summary and a question go to that server, through the
    egress broker; the trace holds connections to it and to nothing else."""
    from appliance.core.config import load

    models = tmp_path / "models"
    models.mkdir()
    answer = '{"summary": "Giraffes painted the lighthouse [0].", "decisions": [], "action_items": []}'
    with ChatServerStub(answer) as stub:
        allowed = f"127.0.0.1:{stub.port}"
        environ = {
            "APPLIANCE_ASSIST__SERVER_URL": f"http://{allowed}/v1",
            "APPLIANCE_ASSIST__SERVER_MODEL": "llama-3.1-8b-instruct",
            "APPLIANCE_SECURITY__EGRESS_ALLOW": allowed,
        }
        key = bootstrap(
            load(None, {"APPLIANCE_DATA_DIR": str(tmp_path / "data"), "APPLIANCE_MODELS_DIR": str(models), **environ})
        )
        speech = _wav(tmp_path / "speech.wav", SENTENCE)
        server = _start(tmp_path, models, environ=environ)
        try:
            with _client(server.url, key) as http:
                job = http.post("/api/v1/transcriptions", files={"file": ("a.wav", speech, "audio/wav")})
                tid = wait_for_job(http.get, job.json()["job_id"], timeout=300)["transcript_id"]
                run = http.post(f"/api/v1/transcripts/{tid}/summaries", json={}).json()
                with http.stream("GET", f"/api/v1/summary-runs/{run['id']}/events") as events:
                    assert [line for line in events.iter_lines() if line.startswith("event:")][-1] == "event: done"
                summary = http.get(f"/api/v1/transcripts/{tid}/summaries").json()["latest"]["summary"]
                assert summary["summary"] == "Giraffes painted the lighthouse." and summary["summary_segments"] == [0]
                asked = http.post(f"/api/v1/transcripts/{tid}/ask", json={"question": "Who painted the lighthouse?"})
                assert asked.status_code == 200, asked.text
                metrics = http.get("/metrics").text
        finally:
            _stop(server)
        # The summary's two steps (its JSON, then the action items alone) and the question.
        assert len(stub.requests) == 3 and stub.requests[0]["model"] == "llama-3.1-8b-instruct"
    trace = Trace.read(server.trace_dir)
    inet = [line for line in trace.calls("connect") if "sa_family=AF_INET" in line]
    to_ai = [line for line in inet if f"htons({stub.port})" in line]
    assert len(to_ai) >= 3, inet  # the summary's two and the question's connections, seen by the kernel trace
    assert [line for line in inet if line not in to_ai] == [], "connections to anything but the AI server"
    assert trace.outbound() == [] and trace.refused_sockets() == []
    assert "sotto_egress_lock_active 1.0" in metrics and "sotto_egress_refused_total 0.0" in metrics
    assert "lighthouse" not in server.output().lower()  # neither the transcript nor the summary is logged


# A stand-in for a native library's background thread: started before the lock (as onnxruntime's
# would be by an import), it wakes up later and calls libc directly, never through Python's socket module.
NATIVE_ATTEMPT = """
import ctypes, struct, threading, time, os
def _native_attempts():
    # Wake up once the server has locked itself (this thread existed before: the lock must reach it).
    deadline = time.monotonic() + 120
    while 'Seccomp:\t2' not in open('/proc/thread-self/status').read() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(float(os.environ['ATTEMPT_AFTER']))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(15, b'fake-telemetry', 0, 0, 0)  # PR_SET_NAME, as native libraries name their threads
    results = []
    for family, kind in ((2, 2), (2, 1), (10, 1)):
        fd = libc.socket(family, kind, 0)
        results.append((fd, ctypes.get_errno()))
        if fd >= 0:
            address = struct.pack('!HH4s8x', 2, 53, bytes([10, 255, 255, 53]))
            libc.sendto(fd, b'x', 1, 0, address, len(address))
            libc.connect(fd, address, len(address))
    child = os.system("python3 -c 'import socket; socket.socket().connect((\\"10.255.255.53\\", 53))' 2>/dev/null")
    with open(os.environ['ATTEMPT_RESULT'], 'w') as out:
        out.write(repr((results, child)))
threading.Thread(target=_native_attempts, name='fake-telemetry', daemon=True).start()
"""


@pytest.mark.timeout(900)  # a traced server's start and several doctor runs
def test_the_lock_refuses_native_code_inside_the_real_server(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    result = tmp_path / "attempt.txt"
    server = _start(tmp_path, models, prelude=NATIVE_ATTEMPT, environ={"ATTEMPT_AFTER": "1", "ATTEMPT_RESULT": str(result)})
    try:
        deadline = time.monotonic() + 60
        while not result.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        results, child_status = eval(result.read_text())
        assert all(fd == -1 and err == 1 for fd, err in results), results  # EPERM, from the kernel
        assert child_status != 0  # a child process is under the same lock
        report = None
        for _ in range(50):
            doctor = subprocess.run(
                [sys.executable, "-c", "from appliance.cli import app; app()", "doctor", "--json"],
                env={
                    **os.environ,
                    "APPLIANCE_DATA_DIR": str(server.data_dir),
                    "APPLIANCE_MODELS_DIR": str(models),
                    "PYTHONPATH": str(REPO),
                },
                capture_output=True,
                text=True,
                timeout=120,
            )
            report = json.loads(doctor.stdout)["egress_lock"]
            if report["refused"] >= 4:
                break
            time.sleep(0.2)
        assert report and report["active"] is True and report["refused"] >= 4, report
        assert {r["thread"] for r in report["recent"]} >= {"fake-telemetry"}, report
    finally:
        _stop(server)
    trace = Trace.read(server.trace_dir)
    assert trace.outbound() == [], trace.outbound()
    assert len(trace.refused_sockets()) >= 4
    assert "egress lock: refused socket(AF_INET) from thread 'fake-telemetry'" in server.output()


def test_start_up_refuses_a_telemetry_build_without_its_opt_out(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"HOME": "/root"}
    moved = confinement.confine(data, env, mounts="")
    assert env["HOME"] == str(data.resolve() / "home") and "HOME" in moved
    with pytest.raises(confinement.ConfinementError, match=r"onnxruntime would write its telemetry store to .*\.onnxruntime"):
        confinement.check(data, env, mounts="", telemetry_builds={"onnxruntime": True})
    confinement.check(data, {**env, "ORT_DISABLE_TELEMETRY": "1"}, mounts="", telemetry_builds={"onnxruntime": True})
    with pytest.raises(confinement.ConfinementError, match="TORCH_HOME=/var/cache/torch is outside the data dir"):
        confinement.check(data, {**env, "TORCH_HOME": "/var/cache/torch"}, mounts="", telemetry_builds={})
    # A RAM filesystem chosen by the operator is kept.
    ram = {**env, "XDG_CACHE_HOME": "/run/ram/cache"}
    confinement.confine(data, ram, mounts="tmpfs /run/ram tmpfs rw 0 0\n")
    assert ram["XDG_CACHE_HOME"] == "/run/ram/cache"


def test_the_installed_onnxruntime_has_no_telemetry_client() -> None:
    libraries = confinement.onnxruntime_libraries()
    assert libraries, "onnxruntime is a dependency (faster-whisper's VAD)"
    assert confinement.installed_telemetry_builds() == {"onnxruntime": False}, (
        "this onnxruntime build carries Microsoft's telemetry uploader; see docs/decisions.md before upgrading"
    )


@pytest.mark.timeout(300)  # a traced server's start
def test_with_directory_and_single_sign_on_the_only_connections_go_to_them(tmp_path: Path) -> None:
    """Directory sign-in and single sign-on configured (a real slapd and a real OpenID provider on
    loopback, their host:port the egress exceptions): users sign in both ways through the broker under the
    real lock, and every connection the traced server and its broker made went to those two ports."""
    from appliance.core.config import load
    from tests.directory_support import BASE, GROUPS, PASSWORDS, SERVICE_DN, slapd
    from tests.oidc_support import OpenIdProvider, code_flow

    models = tmp_path / "models"
    models.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    idp = OpenIdProvider(free_port(), {"REDIRECT_URI": f"{url}/auth/oidc/callback", "POST_LOGOUT_URI": f"{url}/login"})
    secret = tmp_path / "client-secret"
    secret.write_text("sotto-client-secret\n")
    with slapd(tmp_path / "slapd") as directory:
        config = tmp_path / "sotto.toml"
        config.write_text(
            "[ldap]\n"
            f'url = "{directory.url}"\nbind_dn = "{SERVICE_DN}"\nbind_password_file = "{directory.password_file}"\n'
            f'base_dn = "{BASE}"\ngroup_base_dn = "{GROUPS}"\ndisabled_filter = "(pwdAccountLockedTime=*)"\nsync_minutes = 0\n'
            "[oidc]\n"
            f'issuer = "{idp.issuer}"\nclient_id = "sotto"\nclient_secret_file = "{secret}"\n'
            f'redirect_uri = "{url}/auth/oidc/callback"\nscopes = "openid email groups"\n'
            "[group_map]\n"
            f'roles = ["cn=sotto-admins,{GROUPS} -> admin", "cn=sotto-users,{GROUPS} -> member", "radio -> member"]\n'
            "[security]\n"
            f'egress_allow = ["{directory.host}:{directory.port}", "127.0.0.1:{idp.port}"]\n'
        )
        bootstrap(load(None, {"APPLIANCE_DATA_DIR": str(tmp_path / "data"), "APPLIANCE_MODELS_DIR": str(models)}))
        idp.start("key-1")
        server = _start(tmp_path, models, environ={"APPLIANCE_CONFIG": str(config)}, port=port)
        try:
            with _client(server.url) as client:
                lena = client.post("/api/v1/auth/login", json={"email": "lena", "password": PASSWORDS["lena"]})
                assert lena.status_code == 200 and lena.json()["user"]["role"] == "admin", lena.text
                wrong = client.post("/api/v1/auth/login", json={"email": "nico", "password": "not his password"})
                assert wrong.status_code == 401
                callback = code_flow(server.url, idp.issuer, "oscar")
                signed = client.get(callback.replace(url, ""))
                assert signed.status_code == 303 and signed.headers["location"] == "/", signed.headers
                assert directory.url in client.get("/privacy").text
        finally:
            _stop(server)
            idp.stop()
    trace = Trace.read(server.trace_dir)
    assert trace.outbound() == [], trace.outbound()
    assert trace.refused_sockets() == [], trace.refused_sockets()
    inet = [line for line in trace.calls("connect") if "sa_family=AF_INET" in line]
    destinations = {m.group(1) for line in inet for m in [re.search(r"sin6?_port=htons\((\d+)\)", line)] if m}
    # The broker's connections to slapd and to the provider (discovery, keys, token), and nothing else.
    assert destinations == {str(directory.port), str(idp.port)}, inet


@pytest.mark.timeout(300)  # a traced server's start and one transcription
def test_a_media_link_import_goes_through_the_broker_and_writes_no_audio(tmp_path: Path) -> None:
    """Import from an intranet media link under strace, the kernel lock on: an administrator lists the
    media server (127.0.0.1:<port>) at run time; a page on it is imported and transcribed. Every
    connection the traced server and its broker made went to that port (the server's own threads could
    not have made one: the lock refused nothing because nothing tried); a link to the same server by
    another name is refused without a connection; nothing was written outside the data dir, inside it
    only the database, and the recording's bytes are in no file."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from appliance.core.config import load

    models = tmp_path / "models"
    models.mkdir()
    speech = _wav(tmp_path / "speech.wav", SENTENCE)
    page = b'<html><body><video controls><source src="/media/k.wav" type="audio/wav"></video></body></html>'

    class Media(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = (page, "text/html") if self.path == "/all-hands.html" else (speech, "audio/wav")
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    media_port = free_port()
    media = ThreadingHTTPServer(("127.0.0.1", media_port), Media)
    threading.Thread(target=media.serve_forever, daemon=True).start()
    key = bootstrap(load(None, {"APPLIANCE_DATA_DIR": str(tmp_path / "data"), "APPLIANCE_MODELS_DIR": str(models)}))
    server = _start(tmp_path, models)
    try:
        with _client(server.url, key) as http:
            assert http.post("/api/v1/media-hosts", json={"name": f"127.0.0.1:{media_port}"}).status_code == 201
            other_name = http.post(
                "/api/v1/transcriptions/from-link", json={"url": f"http://localhost:{media_port}/all-hands.html"}
            )
            assert other_name.status_code == 403, other_name.text
            job = http.post("/api/v1/transcriptions/from-link", json={"url": f"http://127.0.0.1:{media_port}/all-hands.html"})
            assert job.status_code == 202, job.text
            done = wait_for_job(http.get, job.json()["job_id"], timeout=240)
            text = http.get(f"/api/v1/transcripts/{done['transcript_id']}").json()["text"].lower()
            assert all(word in text for word in HEARD), text
            metrics = http.get("/metrics").text
    finally:
        _stop(server)
        media.shutdown()
        media.server_close()
    trace = Trace.read(server.trace_dir)
    assert trace.outbound() == [] and trace.refused_sockets() == [], (trace.outbound(), trace.refused_sockets())
    inet = [line for line in trace.calls("connect") if "sa_family=AF_INET" in line]
    destinations = {m.group(1) for line in inet for m in [re.search(r"sin6?_port=htons\((\d+)\)", line)] if m}
    assert destinations == {str(media_port)}, inet  # the page and the recording, through the broker
    assert len(inet) >= 2
    assert "sotto_egress_lock_active 1.0" in metrics and "sotto_egress_refused_total 0.0" in metrics
    assert trace.writes_outside(server.data_dir, server.cwd) == [], trace.writes_outside(server.data_dir, server.cwd)
    written = {
        os.path.relpath(path, server.data_dir)
        for line in trace.calls("open", "openat", "openat2", "creat", "rename", "renameat", "renameat2")
        if line.split("(", 1)[0] not in ("open", "openat", "openat2") or any(flag in line for flag in WRITE_FLAGS)
        for path in _paths(line, server.cwd)
        if path.startswith(f"{server.data_dir}/")
    }
    # The database and the appliance's own state (the licence clock, the lock's report, its key): no audio file.
    assert not {p for p in written if not p.startswith(("appliance.db", "run/", "license/", "secret.key", "tls/"))}, written
    sample = speech[len(speech) // 2 : len(speech) // 2 + 256]  # 128 samples of the spoken words
    assert not any(sample in p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file())
