"""`appliance doctor --selftest`: every model loads and transcribes the bundled clip, the embedded engine
diarizes it, and the report (versions, hashes, device, timings, egress log) says nothing left the box."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import tomllib
import wave
from pathlib import Path

import numpy as np
import pytest

from appliance.core import egress
from appliance.core.config import Settings
from appliance.distribution import selftest
from appliance.transcription.asr import embedded_model_path
from tests.support import REPO


def test_doctor_selftest_on_the_cpu_reports_no_egress(tmp_path: Path) -> None:
    env = {**os.environ, "APPLIANCE_MODELS_DIR": str(tmp_path / "models"), "APPLIANCE_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "doctor", "--selftest"], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["egress_attempts"] == []
    assert (
        report["versions"]["appliance"] == "0.1.0" and report["versions"]["ctranslate2"] and report["versions"]["faster-whisper"]
    )
    assert report["device"]["selected"] == "cpu" and report["device"]["cuda_devices"] == 0
    [tiny] = report["models"]
    weights = embedded_model_path() / "model.bin"  # type: ignore[operator]
    assert tiny["name"] == "tiny.en" and tiny["model_bin_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert len(tiny["words_found"]) >= selftest.MIN_WORDS and tiny["load_seconds"] > 0 and tiny["transcribe_seconds"] > 0
    [embedded] = report["diarization"]
    assert embedded["engine"] == "embedded" and embedded["ok"] and embedded["speakers_found"] >= 1
    assert report["clip"]["sha256"] == hashlib.sha256(selftest.CLIP.read_bytes()).hexdigest()


def test_selftest_fails_on_an_incomplete_model_and_on_egress(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = settings.models.models_dir / "large-v3"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"\0" * 16)  # no tokenizer.json: it would be fetched from the hub
    clip = selftest.load_clip

    def clip_and_phone_home() -> np.ndarray:
        with contextlib.suppress(OSError):
            socket.getaddrinfo("telemetry.example.com", 443)  # what a library's telemetry would do
        return clip()

    monkeypatch.setattr(selftest, "load_clip", clip_and_phone_home)
    report = selftest.run(settings)
    assert report["ok"] is False
    assert "tokenizer.json" in report["model_problems"]["large-v3"]
    assert [a["target"] for a in report["egress_attempts"]] == ["'telemetry.example.com'"]
    assert [m["name"] for m in report["models"]] == ["tiny.en"] and report["models"][0]["ok"]
    assert egress.attempts  # the guard refused it: the audit hook is in force for the rest of the process


def test_bundled_clip_is_small_16k_mono_and_packaged() -> None:
    assert selftest.CLIP.stat().st_size < 200_000
    with wave.open(str(selftest.CLIP)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert 4 < w.getnframes() / 16000 < 8
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["appliance"]
    assert "data/*" in package_data
    assert all(word in selftest.CLIP_TEXT.lower() for word in selftest.EXPECTED_WORDS)


def test_words_found_ignores_case_and_punctuation() -> None:
    assert selftest.words_found("HELLO, this is the Sotto self-test. The quick brown fox!") == list(selftest.EXPECTED_WORDS)
    assert selftest.words_found("") == []
