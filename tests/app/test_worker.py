"""The worker's lanes through the real app: a job alone uses every lane; the operator can turn it off."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.support import Overlap, running, settings_in, wait_for_job


def ninety_seconds() -> bytes:
    noise = np.random.default_rng(3).normal(0, 0.05, 90 * 16000)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((noise * 32767).astype("<i2").tobytes())
    return out.getvalue()


@pytest.mark.parametrize(("share", "most"), [("true", 2), ("false", 1)])
def test_a_job_alone_borrows_the_idle_lane(tmp_path: Path, share: str, most: int) -> None:
    settings = settings_in(tmp_path, APPLIANCE_WORKER__WORKERS_PER_DEVICE="2", APPLIANCE_WORKER__SHARE_IDLE_LANES=share)
    recognizer = Overlap(0.5)
    with running(settings, recognizer=recognizer) as http:
        job = http.post("/api/v1/transcriptions", files={"file": ("a.wav", ninety_seconds(), "audio/wav")}).json()
        done = wait_for_job(http.get, job["job_id"])
        assert done["state"] == "done", done
        transcript = http.get(f"/api/v1/transcripts/{done['transcript_id']}").json()
    assert recognizer.most == most
    # Each piece's segment sits at its place in the recording: the second piece starts past 30 s.
    starts = [seg["start"] for seg in transcript["segments"]]
    assert len(starts) == most and (most == 1 or starts[1] >= 30)
