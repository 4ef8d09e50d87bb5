"""The Python client and `appliance remote transcribe`, against a live appliance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.client import SottoClient, SottoError
from appliance.core.config import Settings
from tests.support import LiveServer, bootstrap


@pytest.fixture
def live(settings: Settings):  # type: ignore[no-untyped-def]
    from appliance.web.app import create_app

    key = bootstrap(settings)
    with LiveServer(create_app(settings)) as server:
        yield server.url, key


def test_client_round_trip(live, speech_wav: Path) -> None:  # type: ignore[no-untyped-def]
    url, key = live
    seen: list[dict] = []
    with SottoClient(url, key) as sotto:
        doc = sotto.transcribe(speech_wav, progress=seen.append, language="en")
        assert "lazy" in doc.text.lower()
        assert seen[-1]["state"] == "done" and seen[-1]["progress"] == 1.0
        assert sotto.export(doc.id, "srt").startswith(b"1\n00:00:")
        assert sotto.export(doc.id, "txt", timestamps=False).decode().lower().startswith("the quick")
        assert sotto.transcripts()["total"] == 1
        sotto.delete(doc.id)
        with pytest.raises(SottoError) as err:
            sotto.transcript(doc.id)
        assert err.value.status == 404
        with pytest.raises(SottoError) as err:
            sotto.transcribe(speech_wav, model="nope")
        assert err.value.status == 400 and "unknown model" in err.value.detail
    with SottoClient(url, "sotto_bad_key") as stranger, pytest.raises(SottoError) as err:
        stranger.transcripts()
    assert err.value.status == 401


def test_remote_cli(live, speech_wav: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, key = live
    env = {**os.environ, "SOTTO_API_KEY": key}
    result = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "remote", "transcribe", str(speech_wav), "--url", url, "--format", "vtt"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("WEBVTT") and "lazy" in result.stdout.lower()
    out = tmp_path / "t.pdf"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance.cli",
            "remote",
            "transcribe",
            str(speech_wav),
            "--url",
            url,
            "--format",
            "pdf",
            "--output",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and out.read_bytes().startswith(b"%PDF")
    bad = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "remote", "transcribe", str(speech_wav), "--url", url, "--model", "nope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and "unknown model" in bad.stderr


def test_remote_cli_sends_every_option_flag(live, speech_wav: Path) -> None:  # type: ignore[no-untyped-def]
    url, key = live
    env = {**os.environ, "SOTTO_API_KEY": key}
    flags = [
        "--prompt",
        "Stella, Seattle.",
        "--hotwords",
        "Stella",
        "--beam-size",
        "2",
        "--temperature",
        "0",
        "--no-vad",
        "--word-timestamps",
        "--priority",
        "3",
        "--language",
        "en",
        "--task",
        "transcribe",
        "--format",
        "json",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "remote", "transcribe", str(speech_wav), "--url", url, *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    with SottoClient(url, key) as sotto:
        job = sotto.http.get(f"/api/v1/jobs/{doc['job_id']}").json()
    assert doc["options"]["initial_prompt"] == "Stella, Seattle." and doc["options"]["hotwords"] == "Stella"
    assert doc["options"]["beam_size"] == 2 and doc["options"]["vad_filter"] is False and doc["options"]["temperature"] == 0.0
    assert job["priority"] == 3
