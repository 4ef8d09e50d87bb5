"""The event loop never touches SQLite: every route handler is either run in a thread (web/offload.py) or
is one of the few async ones that stream a body and reach the database only through `in_thread`; asking
for a connection on the loop's thread fails at once; and while another connection holds the database's
write lock for seconds, the health check, an authenticated read and a progress stream still answer in
milliseconds (before this, each request's log row was inserted on the loop and stalled them all)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest

from appliance.core.config import Settings
from appliance.core.db import Databases, OnEventLoop, connect
from appliance.transcription import jobs
from appliance.web.app import create_app
from appliance.web.offload import OFF_LOOP
from tests.support import FakeRecognizer, LiveServer, bootstrap

# Async on purpose: they stream an upload or a response, and do their database steps through in_thread.
STREAMING = {
    "create_transcription",
    "create_transcription_from_link",  # the media streams in from the link (fetched in a thread)
    "job_events",
    "run_events",
    "bulk_export",
    "license_install",
    "audio_transcriptions",
    "audio_translations",
    "start_video_render",
}


def test_every_route_handler_runs_off_the_event_loop(settings: Settings) -> None:
    app = create_app(settings, recognizer=FakeRecognizer())
    handlers = [h for route in app.routes for h in getattr(route, "route_handlers", []) if h.handler_name]
    ours = [h for h in handlers if h.fn.__module__.startswith("appliance.")]
    assert len(ours) >= 80
    async_ones = {h.handler_name for h in ours if not getattr(h.fn, OFF_LOOP, False)}
    assert async_ones == STREAMING, async_ones ^ STREAMING


def test_a_connection_asked_for_on_the_loop_is_refused(tmp_path: Path) -> None:
    databases = Databases(tmp_path / "a.db")

    async def on_loop() -> None:
        databases.get()

    with pytest.raises(OnEventLoop, match="event loop"):
        asyncio.run(on_loop())

    async def through_a_thread() -> int:
        return await databases.in_thread(lambda db: db.execute("SELECT 1").fetchone()[0])

    assert asyncio.run(through_a_thread()) == 1
    databases.close()


def test_a_held_write_lock_does_not_stall_the_server(settings: Settings) -> None:
    key = bootstrap(settings)
    db = connect(settings.storage.database_path)
    user_id, workspace_id = db.execute(
        "SELECT personal_user_id, id FROM workspaces WHERE personal_user_id IS NOT NULL"
    ).fetchone()
    job = jobs.create(db, jobs.JobRequest("a.wav", 1, "audio/wav", ["tiny.en"], {}, user_id=user_id, workspace_id=workspace_id))
    db.conn.close()
    held, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:  # what the worker does while it stores a long transcript
        writer = connect(settings.storage.database_path)
        writer.conn.execute("BEGIN IMMEDIATE")
        writer.conn.execute("UPDATE jobs SET priority = priority WHERE id = ?", [job["id"]])
        held.set()
        release.wait(20)
        writer.conn.execute("COMMIT")
        writer.conn.close()

    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server,
        httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as http,
    ):
        assert http.get("/api/v1/transcripts").status_code == 200  # warm: the first request opens connections
        holder = threading.Thread(target=hold_the_write_lock)
        holder.start()
        assert held.wait(10)
        try:
            # A write that must wait for the lock (a new API key), sent first and left waiting...
            waiting: list[int] = []

            def write() -> None:
                with httpx.Client(base_url=server.url, timeout=30, headers=http.headers) as other:
                    waiting.append(other.post("/api/v1/apikeys", json={"name": "during the lock", "scope": "read"}).status_code)

            blocked = threading.Thread(target=write)
            blocked.start()
            time.sleep(0.3)
            # ...while reads, the health check and a progress stream answer at once, several times over.
            slowest = 0.0
            for _ in range(10):
                for path in ("/healthz", "/api/v1/transcripts", f"/api/v1/jobs/{job['id']}"):
                    began = time.perf_counter()
                    assert http.get(path).status_code == 200, path
                    slowest = max(slowest, time.perf_counter() - began)
                began = time.perf_counter()
                with http.stream("GET", f"/api/v1/jobs/{job['id']}/events") as events:
                    assert any(line.startswith("data:") for line in events.iter_lines())
                slowest = max(slowest, time.perf_counter() - began)
            assert slowest < 1.0, f"a request waited {slowest:.2f} s behind the write lock"
            assert waiting == [] and blocked.is_alive()  # the write itself does wait for the lock
        finally:
            release.set()
            holder.join()
        blocked.join(30)
        assert waiting == [201]
