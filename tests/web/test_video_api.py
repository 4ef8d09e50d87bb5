"""Video renders over real HTTP against the real app: start with a multipart upload (202), follow the
progress, download the MP4 (streamed) and find the subtitles in it, after which it is gone; someone who
cannot read the transcript cannot start one, and cannot see another person's render; a file that is not a
video and bad options get a clear 4xx; beyond the allowed renders at once, 503 with Retry-After. The
dialog on the transcript page in headless Chromium at phone width: pick the video, Start, progress,
download, Esc closes; Enter starts."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ADMIN_EMAIL, Scenario, settings_in, video_clip
from tests.web.test_web_ui import PHONE, Page


@dataclass
class World:
    url: str
    alice: httpx.Client
    mallory: httpx.Client
    transcript: str
    clip: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("video")
    scenario = Scenario(settings_in(root, APPLIANCE_SERVER__MAX_VIDEO_RENDERS="1"))
    alice = scenario.person(ADMIN_EMAIL, role="admin", scope="admin")
    mallory = scenario.person("mallory@example.org", role="member", scope="transcribe")
    transcript = scenario.transcript(alice, "Hello subtitles world from the appliance", speaker="S1", start=0.3)
    scenario.close()
    clip = root / "clip.mp4"
    video_clip(clip, seconds=3.0)
    with (
        scenario.serve() as server,
        httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {alice.key}"}) as a,
        httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {mallory.key}"}) as m,
    ):
        yield World(server.url, a, m, transcript, clip)


def _start_render(client: httpx.Client, transcript: str, video: bytes, **options: str) -> httpx.Response:
    return client.post(f"/api/v1/transcripts/{transcript}/video", files={"file": ("clip.mp4", video, "video/mp4")}, data=options)


def _held(world: World) -> int:
    """Bytes of audio and video the appliance holds in memory, as its health check reports them."""
    return int(world.alice.get("/healthz").json()["audio_bytes_in_memory"])


def _released(world: World) -> bool:
    """Whether everything is given back within a few seconds (after the last byte of a download the server
    drops the result, which can be just after the client has read it)."""
    deadline = time.monotonic() + 5
    while _held(world) != 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _wait(client: httpx.Client, render_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        doc = client.get(f"/api/v1/video-renders/{render_id}").json()
        if doc["state"] != "running":
            return dict(doc)
        time.sleep(0.1)
    raise AssertionError("the render did not finish")


def test_a_render_is_started_followed_downloaded_and_then_gone(world: World) -> None:
    started = _start_render(world.alice, world.transcript, world.clip.read_bytes(), kind="mkv-srt", speakers="false")
    assert started.status_code == 202, started.text
    render = started.json()
    assert render["state"] in ("running", "done") and render["kind"] == "mkv-srt"  # a 3 s remux can beat the answer
    # Someone who cannot read the transcript neither starts a render nor sees this one.
    assert _start_render(world.mallory, world.transcript, world.clip.read_bytes()).status_code == 404
    assert world.mallory.get(f"/api/v1/video-renders/{render['id']}").status_code == 404
    done = _wait(world.alice, render["id"])
    assert done["state"] == "done" and done["progress"] == 1.0 and done["size_bytes"] > 1000, done
    assert _held(world) >= done["size_bytes"]  # the result is counted in the memory cap
    got = world.alice.get(f"/api/v1/video-renders/{render['id']}/file")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("video/x-matroska")
    assert ".subtitled.mkv" in got.headers["content-disposition"]
    import av

    with av.open(io.BytesIO(got.content), mode="r") as container:
        subs = container.streams.subtitles[0]
        text = " ".join(bytes(p).decode() for p in container.demux(subs) if p.size)
    assert "Hello subtitles world" in text and "Speaker" not in text
    # Downloaded: dropped from memory.
    assert _released(world)
    assert world.alice.get(f"/api/v1/video-renders/{render['id']}").status_code == 404


def test_bad_input_gets_a_clear_error_and_nothing_is_held(world: World) -> None:
    bad = _start_render(world.alice, world.transcript, b"not a video, just some text " * 50)
    assert bad.status_code == 415 and "not a video" in bad.json()["detail"]
    option = _start_render(world.alice, world.transcript, world.clip.read_bytes(), size="enormous")
    assert option.status_code == 400 and "size must be one of small, medium, large" in option.json()["detail"]
    empty = world.alice.post(f"/api/v1/transcripts/{world.transcript}/video", files={"file": ("x.mp4", b"", "video/mp4")})
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    assert _released(world)


def test_renders_are_bounded_and_a_running_one_is_cancelled(world: World) -> None:
    long_clip = world.clip.parent / "long.mp4"
    video = video_clip(long_clip, seconds=60.0, size="640x360")
    first = _start_render(world.alice, world.transcript, video).json()  # burn-in: re-encodes every frame
    busy = _start_render(world.alice, world.transcript, video)
    assert busy.status_code == 503 and busy.headers["retry-after"] and "already rendering 1" in busy.json()["detail"]
    not_ready = world.alice.get(f"/api/v1/video-renders/{first['id']}/file")
    assert not_ready.status_code == 409 and "not ready" in not_ready.json()["detail"]
    assert world.alice.delete(f"/api/v1/video-renders/{first['id']}").status_code == 200
    deadline = time.monotonic() + 30
    while world.alice.get(f"/api/v1/video-renders/{first['id']}").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _released(world)


def test_the_dialog_renders_and_downloads_by_keyboard_at_phone_width(world: World, browser: Any, tmp_path: Path) -> None:
    ui = Page(browser, world, viewport=PHONE)  # type: ignore[arg-type]
    page = ui.page
    page.goto(f"{world.url}/t/{world.transcript}")
    page.click("#export-menu summary")
    page.click("#video-open")
    dialog = page.locator("#video-dialog")
    assert dialog.is_visible()
    page.keyboard.press("Escape")  # Esc leaves everything as it was
    assert not dialog.is_visible()
    page.click("#export-menu summary")
    page.click("#video-open")
    page.focus("#video-form input[name=max_chars_per_line]")
    page.keyboard.press("Enter")  # nothing chosen yet: said so, nothing sent
    assert "Choose the video file first" in page.inner_text("#video-error")
    page.set_input_files("#video-file", str(world.clip))
    assert page.evaluate("() => document.activeElement.id") == "video-start"  # a file chosen: Enter starts
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('video-start').textContent === 'Download'", timeout=60000)
    assert page.get_attribute("#video-progress", "value") == "100"
    assert "Ready" in page.inner_text("#video-status")
    ui.shot("video-dialog")
    with page.expect_download() as waiting:
        page.keyboard.press("Enter")
    target = tmp_path / waiting.value.suggested_filename
    waiting.value.save_as(target)
    assert target.suffix == ".mp4" and target.stat().st_size > 1000
    import av

    with av.open(str(target), mode="r") as container:
        assert container.streams.video and container.streams.audio
    assert not dialog.is_visible()
    assert _released(world)  # downloaded, so dropped
    ui.csp_clean()
    ui.close()


def test_the_cli_and_the_client_save_a_subtitled_video(world: World, tmp_path: Path) -> None:
    """`appliance remote video` in its own process (the Python client inside it) against the live server."""
    key = world.alice.headers["Authorization"].removeprefix("Bearer ")
    out = tmp_path / "out.mp4"
    base = [sys.executable, "-m", "appliance.cli", "remote", "video", world.transcript, str(world.clip), "--url", world.url]
    env = {**os.environ, "SOTTO_API_KEY": key}
    done = subprocess.run(
        [*base, "-o", str(out), "--kind", "mp4", "--no-speakers"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    import av

    with av.open(str(out), mode="r") as container:
        assert container.streams.subtitles[0].codec_context.name == "mov_text"
    refused = subprocess.run([*base, "-o", str(out), "--size", "huge"], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "size must be one of small, medium, large" in refused.stderr
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("meeting notes, not a video")
    bad = subprocess.run(
        [*base[:5], world.transcript, str(not_video), "--url", world.url, "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "not a video this appliance can read" in bad.stderr
    assert _released(world)


def test_the_server_writes_nothing_of_a_render_to_disk(tmp_path: Path) -> None:
    """At the process boundary: `appliance serve` under strace (every thread), a burned-in render sent,
    followed and downloaded over HTTP; no file is opened for writing outside the data directory, and in it
    only the database (its rows: the request log) and what start-up writes, never the video or the result."""
    from tests.core.test_no_egress import WRITE_FLAGS, Trace, _client, _paths, _start, _stop

    scenario = Scenario(settings_in(tmp_path))
    alice = scenario.person(ADMIN_EMAIL, role="admin", scope="admin")
    transcript = scenario.transcript(alice, "Hello subtitles world from the appliance", start=0.3)
    scenario.close()
    clip = video_clip(tmp_path / "clip.mp4", seconds=3.0)
    server = _start(tmp_path / "traced", tmp_path / "models", environ={"APPLIANCE_DATA_DIR": str(tmp_path / "data")})
    try:
        with _client(server.url, alice.key) as http:
            render = _start_render(http, transcript, clip).json()
            deadline = time.monotonic() + 120
            while (doc := http.get(f"/api/v1/video-renders/{render['id']}").json())["state"] == "running":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert doc["state"] == "done", doc
            assert len(http.get(f"/api/v1/video-renders/{render['id']}/file").content) == doc["size_bytes"]
    finally:
        _stop(server)
    trace = Trace.read(server.trace_dir)
    data_dir = tmp_path / "data"
    assert trace.writes_outside(data_dir, server.cwd) == []
    written = {
        Path(path).name
        for line in trace.calls("open", "openat", "openat2", "creat")
        if any(flag in line for flag in WRITE_FLAGS)
        for path in _paths(line, server.cwd)
        if path.startswith(f"{data_dir}/")
    }
    database = settings_in(tmp_path).storage.database_path.name
    assert {name for name in written if not name.startswith(database)} <= STARTUP_FILES, written
    assert trace.calls("openat"), "the trace saw nothing"


# Written at start-up, before any request: the share-link secret, the licence clock and evaluation
# marks, the egress lock's state (each .tmp is renamed over its file).
STARTUP_FILES = {"secret.key", "clock.tmp", "evaluation.json.tmp", "egress-lock.tmp"}
