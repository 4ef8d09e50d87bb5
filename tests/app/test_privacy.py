"""The privacy promises as tests: audio never reaches disk; nothing leaves the box; deleted means gone."""

from __future__ import annotations

import io
import os
import socket
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.core import egress
from appliance.transcription.audio import decode
from tests.support import running, wait_for_job

# Audit-hook recorders are process-wide and permanent, so they only record while a test switches them on.
_recording = threading.Event()
_opened: list[tuple[str, object]] = []
_network: list[tuple[str, object]] = []


def _recorder(event: str, args: tuple) -> None:
    if not _recording.is_set():
        return
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if writes and isinstance(path, (str, bytes, os.PathLike)):
            _opened.append((os.fsdecode(path), mode))
    elif event in {"socket.connect", "socket.getaddrinfo", "socket.sendto"}:
        target = args[1] if event != "socket.getaddrinfo" else args[0]
        _network.append((event, target))


sys.addaudithook(_recorder)


def _distinctive_recording(speech_wav: Path, seconds: int = 30) -> bytes:
    """A 48 kHz stereo WAV (~5.5 MB): speech repeated over noise, so its bytes occur nowhere else."""
    speech = decode(speech_wav.read_bytes()).samples
    rng = np.random.default_rng(1234)
    total = 48000 * seconds
    track = np.repeat(np.tile(speech, seconds * 16000 // len(speech) + 1)[: seconds * 16000], 3)[:total]
    noise = rng.normal(0, 0.01, size=(total, 2))
    stereo = np.clip(track[:, None] * 0.8 + noise, -1, 1)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(48000)
        w.writeframes((stereo * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _files_under(roots: list[Path]) -> Iterator[Path]:
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                yield Path(dirpath) / name


def _holders(roots: list[Path], needles: list[bytes]) -> set[str]:
    found = set()
    for path in _files_under(roots):
        try:
            content = path.read_bytes()
        except OSError:
            continue  # vanished between listing and reading
        if any(n in content for n in needles):
            found.add(str(path))
    return found


def test_audio_never_reaches_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, speech_wav: Path) -> None:
    from appliance.core.config import load

    watched_tmp = tmp_path / "tmp"
    watched_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(watched_tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # make tempfile re-read TMPDIR
    system_tmp = Path(tempfile.gettempdir())
    assert system_tmp == watched_tmp
    data_dir = tmp_path / "data"
    settings = load(None, {"APPLIANCE_DATA_DIR": str(data_dir), "APPLIANCE_MODELS_DIR": str(tmp_path / "models")})
    payload = _distinctive_recording(speech_wav)
    assert len(payload) > 5 * 1024 * 1024
    # Slices from the noisy PCM body: present in the upload, improbable anywhere else.
    needles = [payload[offset : offset + 512] for offset in (100_000, len(payload) // 2, len(payload) - 4096)]
    roots = [watched_tmp, data_dir]
    hits: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            hits.update(_holders(roots, needles))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    _opened.clear()
    with running(settings, timeout=120) as http:
        watcher.start()
        _recording.set()
        try:
            for upload in ("multipart", "raw"):
                if upload == "multipart":
                    response = http.post("/api/v1/transcriptions", files={"file": ("secret.wav", payload, "audio/wav")})
                else:
                    response = http.post("/api/v1/transcriptions", content=payload, headers={"content-type": "audio/wav"})
                assert response.status_code == 202, response.text
                job = wait_for_job(http.get, response.json()["job_id"])
                assert job["state"] == "done", job
                text = http.get(f"/api/v1/transcripts/{job['transcript_id']}").json()["text"].lower()
                assert "lazy" in text  # the real pipeline ran on this audio
                assert http.get("/healthz").json()["audio_bytes_in_memory"] == 0
        finally:
            _recording.clear()
            stop.set()
            watcher.join()
    hits.update(_holders(roots, needles))
    assert hits == set(), f"audio bytes found on disk in {hits}"
    written = {p for p, _ in _opened}
    in_tmp = {p for p in written if p.startswith(str(watched_tmp))}
    assert in_tmp == set(), f"files written in TMPDIR during a job: {in_tmp}"
    # Besides the database, only the licence clock mark may be written (it holds a timestamp; the
    # needle scan above would have caught audio bytes in it too).
    outside_db = {
        p
        for p in written
        if p.startswith(str(data_dir)) and not Path(p).name.startswith("appliance.db") and Path(p).parent != data_dir / "license"
    }
    assert outside_db == set(), outside_db
    assert any(Path(p).name == "appliance.db" for p in written) or (data_dir / "appliance.db").exists()


def test_no_outbound_connection_during_full_transcription(tmp_path: Path, speech_bytes: bytes) -> None:
    from appliance.core.config import load

    settings = load(None, {"APPLIANCE_DATA_DIR": str(tmp_path / "d"), "APPLIANCE_MODELS_DIR": str(tmp_path / "m")})
    _network.clear()
    _recording.set()
    try:
        # The app is built while recording: model loading, migrations and start-up are covered too.
        with running(settings, timeout=120) as http:
            job = http.post("/api/v1/transcriptions", files={"file": ("a.wav", speech_bytes, "audio/wav")}).json()
            done = wait_for_job(http.get, job["job_id"])
            assert done["state"] == "done"
            assert "lazy" in http.get(f"/api/v1/transcripts/{done['transcript_id']}").json()["text"].lower()
    finally:
        _recording.clear()
    assert _network, "the recorder saw no network activity at all: it is not recording"
    outbound = [(e, t) for e, t in _network if not egress.is_loopback_host(t[0] if isinstance(t, tuple) else t)]
    assert outbound == [], outbound
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_egress_guard_refuses_non_loopback_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    egress.install()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # sys.audit runs the guard exactly as socket.connect would, without sending a packet anywhere.
        with pytest.raises(egress.EgressBlocked, match="outbound network access is disabled"):
            sys.audit("socket.connect", sock, ("203.0.113.7", 443))
        with pytest.raises(egress.EgressBlocked):
            sys.audit("socket.getaddrinfo", "huggingface.co", 443, 0, 0, 0)
        sys.audit("socket.connect", sock, ("127.0.0.1", 8000))  # loopback is allowed
        sys.audit("socket.connect", sock, ("::1", 8000, 0, 0))
        sys.audit("socket.getaddrinfo", "localhost", 80, 0, 0, 0)
    finally:
        sock.close()
    assert any("huggingface.co" in a["target"] for a in egress.attempts)
    assert "blocked outbound network attempt" in caplog.text


def test_egress_loopback_classification() -> None:
    assert egress.is_loopback_host("127.0.0.5")
    assert egress.is_loopback_host("::1")
    assert egress.is_loopback_host("localhost")
    assert not egress.is_loopback_host("10.0.0.1")
    assert not egress.is_loopback_host("8.8.8.8")
    assert not egress.is_loopback_host("models.example.com")


def test_offline_environment_after_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYANNOTE_METRICS_ENABLED", "1")
    egress.install()
    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "0"
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"


def test_deleted_transcript_is_gone_from_file_and_wal(tmp_path: Path, speech_bytes: bytes) -> None:
    from appliance.core.config import load

    data_dir = tmp_path / "d"
    settings = load(None, {"APPLIANCE_DATA_DIR": str(data_dir), "APPLIANCE_MODELS_DIR": str(tmp_path / "m")})
    marker = "Zanzibarquux"
    with running(settings, timeout=120) as http:
        job = http.post("/api/v1/transcriptions", files={"file": (f"{marker}.wav", speech_bytes, "audio/wav")}).json()
        done = wait_for_job(http.get, job["job_id"])
        tid = done["transcript_id"]
        spoken = http.get(f"/api/v1/transcripts/{tid}").json()["segments"][0]["text"].encode()
        assert len(spoken) > 20

        def holders(needle: bytes) -> list[str]:
            return [p.name for p in data_dir.iterdir() if p.is_file() and needle in p.read_bytes()]

        assert holders(marker.encode()) and holders(spoken)  # the check can see them while they exist
        assert http.delete(f"/api/v1/transcripts/{tid}").status_code == 204
        assert holders(marker.encode()) == []  # the job's file name went with its last transcript
        assert holders(spoken) == []
        assert http.get(f"/api/v1/jobs/{job['job_id']}").status_code == 404


def test_suite_runs_with_network_blocked_except_loopback(request: pytest.FixtureRequest) -> None:
    # pytest-socket is configured in pyproject.toml; this fails if someone widens or drops it.
    allowed = request.config.getoption("allow_hosts")
    assert set(allowed if isinstance(allowed, list) else str(allowed).split(",")) <= {"127.0.0.1", "::1", "localhost"}
    assert request.config.getoption("allow_unix_socket") is True
