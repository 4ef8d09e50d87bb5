"""/metrics is scraped and its numbers match what the test did."""

from __future__ import annotations

import io
import wave

from prometheus_client.parser import text_string_to_metric_families

from appliance.core.config import Settings
from tests.support import FakeRecognizer, running, wait_for_job


def _wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\x00\x01" * int(16000 * seconds))
    return buffer.getvalue()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_match_the_jobs_run(settings: Settings) -> None:
    # The fake recognizer fails on exactly 3 s of audio: one job of 2 s and one of 5 s succeed, one fails.
    recognizer = FakeRecognizer(explode=lambda audio: len(audio) == 16000 * 3)
    with running(settings, recognizer=recognizer) as http:
        ids = [
            http.post("/api/v1/transcriptions", files={"file": (f"{s}.wav", _wav(s), "audio/wav")}).json()["job_id"]
            for s in (2, 5, 3)
        ]
        states = [wait_for_job(http.get, job_id)["state"] for job_id in ids]
        assert states == ["done", "done", "failed"]
        response = http.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        samples = _samples(response.text)
        assert http.get("/metrics", headers={"Authorization": ""}).status_code == 401
    assert samples[("sotto_audio_seconds_total", (("model", "tiny.en"),))] == 7.0
    assert samples[("sotto_jobs_finished_total", (("state", "done"),))] == 2
    assert samples[("sotto_jobs_finished_total", (("state", "failed"),))] == 1
    assert samples[("sotto_jobs", (("state", "done"),))] == 2 and samples[("sotto_jobs", (("state", "failed"),))] == 1
    assert samples[("sotto_queue_depth", ())] == 0
    assert samples[("sotto_audio_bytes_in_memory", ())] == 0
    assert samples[("sotto_queue_wait_seconds_count", ())] == 3
    assert samples[("sotto_real_time_factor_count", (("model", "tiny.en"),))] == 2
