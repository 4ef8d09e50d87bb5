"""Helpers the tests share: synthesised speech, a fake recogniser, the live server, accounts and sign-in.
Fixtures stay in conftest.py; everything a test module imports by name lives here."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from appliance.core.config import Settings
from appliance.transcription.asr import AsrOptions, AsrResult, CancelFn, Cancelled, ModelInfo, ProgressFn, Segment, Word
from appliance.web.server import BackgroundServer

REPO = Path(__file__).resolve().parent.parent


SENTENCE = "The quick brown fox jumps over the lazy dog. Please call Stella and bring these things with her."


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is required by the test suite; `bash .ci/run` installs it")
    return path


def speak(path: Path, text: str, voice: str = "en-us", speed: int = 150, pitch: int | None = None) -> Path:
    """Synthesise speech with espeak-ng into a WAV file (22.05 kHz mono); `pitch` 0..99 (espeak's -p)."""
    extra = ["-p", str(pitch)] if pitch is not None else []
    subprocess.run(
        [need("espeak-ng"), "-v", voice, "-s", str(speed), *extra, "-w", str(path), text], check=True, capture_output=True
    )
    return path


def ffmpeg(*args: str) -> None:
    subprocess.run([need("ffmpeg"), "-loglevel", "error", "-y", *args], check=True, capture_output=True)


VIDEO = ["-f", "lavfi", "-i", "color=c=gray:s=64x48:r=5"]


# extension -> ffmpeg output arguments; video containers get a real video track as well.
FORMATS: dict[str, list[str]] = {
    "wav": ["-c:a", "pcm_s16le"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "m4a": ["-c:a", "aac", "-b:a", "64k"],
    "flac": ["-c:a", "flac"],
    "ogg": ["-c:a", "libvorbis"],
    "opus": ["-c:a", "libopus", "-b:a", "32k"],
    "wma": ["-c:a", "wmav2", "-ar", "16000", "-b:a", "64k"],
    "webm": ["-c:v", "libvpx", "-c:a", "libopus", "-shortest"],
    "mp4": ["-c:v", "mpeg4", "-c:a", "aac", "-shortest"],
    "mkv": ["-c:v", "mpeg4", "-c:a", "libvorbis", "-shortest"],
    "mov": ["-c:v", "mpeg4", "-c:a", "aac", "-shortest"],
    "avi": ["-c:v", "mpeg4", "-c:a", "libmp3lame", "-shortest"],
}


VIDEO_FORMATS = {"webm", "mp4", "mkv", "mov", "avi"}


class FakeRecognizer:
    """Answers instantly with fixed words; `fail_on` bytes-length triggers an internal error."""

    def __init__(self, delay: float = 0.0, explode: Callable[[np.ndarray], bool] | None = None) -> None:
        self.delay = delay
        self.explode = explode
        self.calls = 0

    def transcribe(
        self, model: ModelInfo, audio: np.ndarray, options: AsrOptions, progress: ProgressFn, cancelled: CancelFn
    ) -> AsrResult:
        from appliance.transcription.asr import Cancelled

        self.calls += 1
        if self.explode and self.explode(audio):
            raise RuntimeError("simulated crash inside the model")
        duration = len(audio) / 16000
        steps = 10
        for i in range(steps):
            if cancelled():
                raise Cancelled()
            time.sleep(self.delay / steps)
            progress(duration * (i + 1) / steps)
        words = [Word(0.0, 0.5, " hello", 0.9), Word(0.5, 1.0, " world", 0.8)]
        return AsrResult([Segment(0.0, 1.0, "hello world", words)], "en", 1.0, duration, self.delay)


class Overlap:
    """A recogniser that notes how many calls run at once (each takes `seconds`)."""

    def __init__(self, seconds: float = 0.3) -> None:
        self.seconds, self.now, self.most, self.lock = seconds, 0, 0, threading.Lock()
        self.pieces_at_once = 0  # as the last call was told (the engine divides its CPU batch by it)

    def transcribe(
        self, model: ModelInfo, audio: np.ndarray, options: AsrOptions, progress: ProgressFn, cancelled: CancelFn
    ) -> AsrResult:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.pieces_at_once = options.pieces_at_once
        try:
            time.sleep(self.seconds)
            if cancelled():
                raise Cancelled()
            length = len(audio) / 16000
            progress(length, "piece")
            return AsrResult([Segment(0.0, 1.0, "piece", [Word(0.0, 1.0, " piece", 1.0)])], "en", 1.0, length, self.seconds)
        finally:
            with self.lock:
                self.now -= 1


def wait_for_job(get: Callable[[str], Any], job_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll the job until it ends; return its last document."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in {"done", "failed", "cancelled"}:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job}")


LiveServer = BackgroundServer


ADMIN_EMAIL = "alice@example.org"


ADMIN_PASSWORD = "correct horse battery"


def bootstrap(settings: Settings, email: str = ADMIN_EMAIL, role: str = "admin", scope: str = "admin") -> str:
    """Create a user (with their personal workspace) and an API key in the appliance's database."""
    from appliance.accounts import apikeys
    from appliance.accounts import users as accounts
    from appliance.core import migrations
    from appliance.core.db import connect

    db = connect(settings.storage.database_path)
    migrations.apply(db)
    user = accounts.by_email(db, email) or accounts.create(db, email, ADMIN_PASSWORD, role)
    key, _ = apikeys.create(db, user.id, "tests", scope)
    db.conn.close()
    return key


def signed_in(url: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD, **kw: Any) -> httpx.Client:
    """A client with a browser's session: the cookie, and the CSRF token on every request. Managing
    credentials (keys, passwords, private keys) needs this or an admin-scoped key."""
    client = httpx.Client(base_url=url, timeout=60, **kw)
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


@contextmanager
def running(settings: Settings, recognizer: Any = None, timeout: float = 120) -> Iterator[httpx.Client]:
    """The real app on a loopback port, and an HTTP client signed in as alice (admin) by API key."""
    from appliance.web.app import create_app

    key = bootstrap(settings)
    with (
        LiveServer(create_app(settings, recognizer=recognizer)) as server,
        httpx.Client(base_url=server.url, timeout=timeout, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        yield client


DIALOGUE = [
    ("en-us", 30, "Good morning, thank you for calling the support line. How can I help you today?"),
    ("en+f3", 85, "Hello. My order arrived yesterday, but the box was damaged and the lamp inside is broken."),
    ("en-us", 30, "I am sorry to hear that. Can you give me the order number, please?"),
    ("en+f3", 85, "Yes, it is four five seven two nine. I bought it last Tuesday."),
    ("en-us", 30, "Thank you. I will send a replacement lamp today, and you will get it on Friday."),
]


# --------------------------------------------------------------------------- scenarios


def settings_in(root: Path, **env: str) -> Settings:
    """Settings for an appliance whose data and models live under `root`; `env` overrides by the
    APPLIANCE_... names the configuration reads."""
    from appliance.core.config import load

    (root / "models").mkdir(parents=True, exist_ok=True)
    return load(None, {"APPLIANCE_DATA_DIR": str(root / "data"), "APPLIANCE_MODELS_DIR": str(root / "models"), **env})


@dataclass(frozen=True)
class Member:
    user: Any  # appliance.accounts.users.User
    key: str  # an API key of the given scope

    @property
    def id(self) -> str:
        return str(self.user.id)


class Scenario:
    """What several test modules arrange before they start the app: people with API keys, workspaces and
    stored transcripts, written straight into the appliance's real database file. Each module keeps only
    its own cast and text; `serve()` then runs the real app on a loopback port."""

    def __init__(self, settings: Settings) -> None:
        from appliance.core import migrations
        from appliance.core.db import connect

        self.settings = settings
        self.db = connect(settings.storage.database_path)
        migrations.apply(self.db)

    def person(self, email: str, role: str = "member", scope: str = "transcribe") -> Member:
        from appliance.accounts import apikeys
        from appliance.accounts import users as accounts

        user = accounts.by_email(self.db, email) or accounts.create(self.db, email, ADMIN_PASSWORD, role)
        return Member(user, apikeys.create(self.db, user.id, "tests", scope)[0])

    def workspace(self, name: str, owner: Member, members: dict[str, str] | None = None) -> str:
        """A shared workspace; `members` maps user id to role."""
        from appliance.accounts import workspaces

        workspace_id = workspaces.create(self.db, name, owner_id=owner.id)
        for user_id, role in (members or {}).items():
            workspaces.set_member(self.db, workspace_id, user_id, role)
        return workspace_id

    def transcript(
        self,
        owner: Member,
        text: str,
        *,
        filename: str = "talk.wav",
        speaker: str | None = None,
        workspace_id: str | None = None,
        job_id: str | None = None,
        start: float = 0.5,
    ) -> str:
        """A stored transcript of one segment, its words 0.4 s apart (with one speaker when given)."""
        from appliance.transcription.diarization.merge import Speaker
        from appliance.transcripts import store as transcripts

        words = [Word(start + i * 0.4, start + i * 0.4 + 0.3, f" {w}", 0.9, speaker) for i, w in enumerate(text.split())]
        end = words[-1].end if words else start
        result = AsrResult([Segment(start, end, text, words, speaker)], "en", 1.0, end + 0.5, 0.1)
        return transcripts.store(
            self.db,
            result,
            job_id=job_id,
            filename=filename,
            size_bytes=1,
            model="tiny.en",
            options={},
            timings={},
            speakers=[Speaker(speaker, "Speaker 1")] if speaker else None,
            user_id=owner.id,
            workspace_id=workspace_id or owner.user.personal_workspace_id,
        )

    def meeting(self, owner: Member, lines: list[tuple[str, str]], *, gap: float = 0.6, title: str = "meeting.wav") -> str:
        """A stored transcript of several segments, one per (speaker id, text) line, one after another
        (each word 0.4 s long), with the speakers named "Speaker N"."""
        from appliance.transcription.diarization.merge import Speaker
        from appliance.transcripts import store as transcripts

        segments, at = [], 0.5
        for speaker, text in lines:
            words = [Word(at + i * 0.4, at + i * 0.4 + 0.3, f" {w}", 0.9, speaker) for i, w in enumerate(text.split())]
            segments.append(Segment(at, words[-1].end, text, words, speaker))
            at = words[-1].end + gap
        keys = list(dict.fromkeys(speaker for speaker, _ in lines))
        return transcripts.store(
            self.db,
            AsrResult(segments, "en", 1.0, at + 0.5, 0.1),
            job_id=None,
            filename=title,
            size_bytes=1,
            model="tiny.en",
            options={},
            timings={},
            speakers=[Speaker(k, f"Speaker {i}") for i, k in enumerate(keys, 1)],
            user_id=owner.id,
            workspace_id=owner.user.personal_workspace_id,
        )

    def close(self) -> None:
        self.db.conn.close()

    @contextmanager
    def serve(self, recognizer: Any = None) -> Iterator[LiveServer]:
        """The real app on a loopback port (this handle stays usable beside it: SQLite in WAL mode)."""
        from appliance.web.app import create_app

        with LiveServer(create_app(self.settings, recognizer=recognizer)) as server:
            yield server


# --------------------------------------------------------------------------- an on-prem AI server


class ChatServerStub:
    """A tiny OpenAI-compatible chat server on loopback (the customer's vLLM/Ollama in the tests): it
    streams `answer` in small pieces for every /v1/chat/completions request and records the requests."""

    def __init__(self, answer: str) -> None:
        import http.server
        import json as _json
        import threading

        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = _json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append({"path": self.path, **body})
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for i in range(0, len(stub.answer), 7):
                    chunk = {"choices": [{"index": 0, "delta": {"content": stub.answer[i : i + 7]}}]}
                    self.wfile.write(f"data: {_json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ChatServerStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def video_clip(path: Path, seconds: float = 3.0, size: str = "320x240") -> bytes:
    """A small H.264 + AAC MP4: a flat grey picture (so drawn text is the only change) and a tone."""
    ffmpeg(
        *["-f", "lavfi", "-i", f"color=c=0x606060:s={size}:r=10:d={seconds}"],
        *["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=16000:duration={seconds}"],
        *["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
    )
    return path.read_bytes()
