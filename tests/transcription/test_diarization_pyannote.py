"""The real pyannote loading and running code, on a community-1-shaped pipeline whose weights are
random and made by the test (the real weights are gated). Sockets stay blocked (pytest-socket)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.core.config import load
from appliance.transcription.audio import decode
from appliance.transcription.diarization import DiarizationOptions, Turn
from appliance.transcription.diarization.pyannote_engine import PyannoteDiarizer
from tests.support import running, wait_for_job

pytest.importorskip("pyannote.audio", reason="the pyannote extra is part of the test install")


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.pyannote_random import build_random_pipeline_dir

    return build_random_pipeline_dir(tmp_path_factory.mktemp("models") / "pyannote-speaker-diarization-community-1")


@pytest.fixture(scope="module")
def engine(pipeline_dir: Path) -> PyannoteDiarizer:
    engine = PyannoteDiarizer(pipeline_dir, device="cpu")
    assert engine.available() is None
    engine.load()
    # Random weights: the embedding model is the slow part on a CPU, and batch 1 is faster here.
    engine.load().embedding_batch_size = 1
    return engine


def test_pipeline_loads_by_path_and_returns_turns(engine: PyannoteDiarizer, speech_bytes: bytes) -> None:
    audio = decode(speech_bytes).samples[: 16000 * 8]
    turns = engine.diarize(audio, DiarizationOptions())
    assert turns and all(isinstance(t, Turn) for t in turns)
    assert all(0 <= t.start < t.end <= 8.5 and isinstance(t.start, float) for t in turns)
    assert all(t.speaker.startswith("SPEAKER_") for t in turns)
    # Speaker counts are passed through (random weights: the plumbing is what is checked).
    assert engine.diarize(audio, DiarizationOptions(num_speakers=1))


def test_voices_are_the_pipelines_centroids_one_a_turn_speaker(engine: PyannoteDiarizer, speech_bytes: bytes) -> None:
    import numpy as np

    audio = decode(speech_bytes).samples[: 16000 * 8]
    found = engine.diarize_voices(audio, DiarizationOptions(num_speakers=1))
    # Random weights: which speakers is arbitrary, but every voice belongs to a turn speaker and is unit length.
    assert found.turns and set(found.voices) <= {t.speaker for t in found.turns}
    assert found.voices, "community-1 returns a centroid for each speaker"
    for voice in found.voices.values():
        assert voice.dtype == np.float32 and abs(float(np.linalg.norm(voice)) - 1.0) < 1e-5


def test_the_cpu_path_keeps_one_replica_on_the_cpu(engine: PyannoteDiarizer, speech_bytes: bytes) -> None:
    engine.diarize(decode(speech_bytes).samples[: 16000 * 4], DiarizationOptions())
    assert engine.picker().devices == ("cpu",) and engine.loaded_devices() == ["cpu"]


def test_jobs_spread_over_pretend_gpus_one_replica_each_loaded_on_use(
    pipeline_dir: Path, speech_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from appliance.transcription.diarization import pyannote_engine

    placed: list[str] = []

    def pretend_place(pipeline: object, device: str) -> None:
        # No GPU here: the replica stays on the CPU, and where it would have gone is recorded.
        placed.append(device)
        pipeline.embedding_batch_size = 1  # type: ignore[attr-defined]

    monkeypatch.setattr(pyannote_engine, "place", pretend_place)
    engine = PyannoteDiarizer(pipeline_dir, device="cuda", gpu_count=lambda: 3)
    audio = decode(speech_bytes).samples[: 16000 * 4]
    # One job after another: all on cuda:0, the one replica loaded there.
    engine.diarize(audio, DiarizationOptions())
    engine.diarize(audio, DiarizationOptions())
    assert placed == ["cuda:0"] and engine.loaded_devices() == ["cuda:0"]

    # Three jobs at once (each waits in the engine until all three hold a device): one a GPU.
    run = engine._run
    all_in = threading.Barrier(3)

    def running_together(*args: object) -> object:
        all_in.wait(timeout=60)
        return run(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "_run", running_together)
    results: list[list[Turn]] = []
    threads = [threading.Thread(target=lambda: results.append(engine.diarize(audio, DiarizationOptions()))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert len(results) == 3 and all(results)
    assert sorted(placed) == ["cuda:0", "cuda:1", "cuda:2"]
    assert sorted(engine.loaded_devices()) == ["cuda:0", "cuda:1", "cuda:2"]
    assert engine.picker().busy() == {"cuda:0": 0, "cuda:1": 0, "cuda:2": 0}


def test_a_named_gpu_the_machine_lacks_is_refused(pipeline_dir: Path) -> None:
    from appliance.transcription.diarization import DiarizationError

    engine = PyannoteDiarizer(pipeline_dir, device="cuda:0,3", gpu_count=lambda: 2)
    with pytest.raises(DiarizationError, match=r"diarization\.device: cuda:3 was asked for, but only 2 GPU"):
        engine.load()
    assert PyannoteDiarizer(pipeline_dir, device="cuda:1,0", gpu_count=lambda: 2).picker().devices == ("cuda:1", "cuda:0")


def test_unavailable_reasons(tmp_path: Path) -> None:
    assert "no pyannote pipeline is installed" in (PyannoteDiarizer(tmp_path / "missing").available() or "")


def test_telemetry_is_off_even_when_unset(pipeline_dir: Path) -> None:
    # pyannote 4 turns telemetry on at import unless PYANNOTE_METRICS_ENABLED says otherwise.
    env = {k: v for k, v in os.environ.items() if k != "PYANNOTE_METRICS_ENABLED"}
    code = (
        # The subprocess is outside pytest-socket: block the network there too, so a regression
        # shows up as a failed assertion, never as traffic.
        "import socket\n"
        "def _no(*a, **k): raise OSError('network blocked in test')\n"
        "socket.getaddrinfo = _no; socket.socket.connect = _no\n"
        "import sys; from pathlib import Path;"
        "from appliance.transcription.diarization.pyannote_engine import PyannoteDiarizer;"
        f"PyannoteDiarizer(Path({str(pipeline_dir)!r}), 'cpu').load();"
        "from pyannote.audio.telemetry.metrics import is_metrics_enabled;"
        "print('telemetry', is_metrics_enabled())"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "telemetry False" in result.stdout


def test_api_uses_pyannote_when_installed(tmp_path: Path, pipeline_dir: Path, speech_bytes: bytes) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / pipeline_dir.name).symlink_to(pipeline_dir)
    settings = load(
        None,
        {"APPLIANCE_DATA_DIR": str(tmp_path / "d"), "APPLIANCE_MODELS_DIR": str(models), "APPLIANCE_DIARIZATION__DEVICE": "cpu"},
    )

    import io
    import wave

    clip = decode(speech_bytes).samples[: 16000 * 6]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes((clip * 32767).astype("<i2").tobytes())
    with running(settings, timeout=300) as http:
        assert http.get("/api/v1/models").json()["diarization"]["default"] == "pyannote"
        job = http.post(
            "/api/v1/transcriptions", files={"file": ("a.wav", buffer.getvalue(), "audio/wav")}, data={"diarize": "true"}
        ).json()
        done = wait_for_job(http.get, job["job_id"], timeout=300)
        assert done["state"] == "done", done
        doc = http.get(f"/api/v1/transcripts/{done['transcript_id']}").json()
        assert doc["diarization"]["engine"] == "pyannote"
        assert doc["speakers"] and doc["speakers"][0]["label"] == "Speaker 1"
        assert all(w["speaker"] for seg in doc["segments"] for w in seg["words"])
