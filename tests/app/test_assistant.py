"""The local-AI use cases with the real model: a summary waits while transcription runs (transcription
first), and with assist.auto_summarize every finished transcription gets one."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from appliance.app.assistant import Assistant
from appliance.assist import store
from appliance.core.db import Databases
from appliance.core.egress_broker import DirectConnector
from tests.assist.meeting import LINES
from tests.support import ADMIN_EMAIL, FakeRecognizer, Scenario, settings_in, wait_for_job


def _until(condition, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_summary_waits_while_a_transcription_runs(tmp_path: Path, llm_dir: Path) -> None:
    settings = settings_in(tmp_path, APPLIANCE_ASSIST__MODEL=str(llm_dir), APPLIANCE_ASSIST__MAX_NEW_TOKENS="60")
    scenario = Scenario(settings)
    tid = scenario.meeting(scenario.person(ADMIN_EMAIL, "admin", "admin"), LINES)
    transcribing = [True]
    assistant = Assistant(settings, Databases(settings.storage.database_path), DirectConnector([]), lambda: transcribing[0])
    try:
        run = assistant.start_summary(tid, user_id=None)
        _until(lambda: run.state == "waiting")
        time.sleep(1.0)
        assert run.state == "waiting" and run.text == ""  # not one token while the transcription runs
        transcribing[0] = False
        _until(lambda: run.finished)
        assert run.state == "done" and run.text and store.get(scenario.db, tid) is not None
        # A second start while one runs watches the same run instead of queueing another.
        transcribing[0] = True
        again = assistant.start_summary(tid, user_id=None)
        assert assistant.start_summary(tid, user_id=None) is again
        assistant.cancel(again.id)
        _until(lambda: again.finished)
        assert again.state == "cancelled" and [v.version for v in store.versions(scenario.db, tid)] == [1]
    finally:
        assistant.stop()
        scenario.close()


def test_every_finished_transcription_is_summarised_when_asked_to(tmp_path: Path, llm_dir: Path, speech_bytes: bytes) -> None:
    scenario = Scenario(
        settings_in(
            tmp_path,
            APPLIANCE_ASSIST__MODEL=str(llm_dir),
            APPLIANCE_ASSIST__MAX_NEW_TOKENS="60",
            APPLIANCE_ASSIST__AUTO_SUMMARIZE="true",
        )
    )
    alice = scenario.person(ADMIN_EMAIL, "admin", "admin")
    scenario.close()
    with (
        scenario.serve(FakeRecognizer()) as server,
        httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {alice.key}"}) as http,
    ):
        job = http.post("/api/v1/transcriptions", files={"file": ("a.wav", speech_bytes, "audio/wav")}).json()
        tid = wait_for_job(http.get, job["job_id"])["transcript_id"]
        _until(lambda: http.get(f"/api/v1/transcripts/{tid}/summaries").json()["latest"] is not None)
        latest = http.get(f"/api/v1/transcripts/{tid}/summaries").json()["latest"]
        assert latest["origin"] == "generated" and latest["created_by"] == alice.id
