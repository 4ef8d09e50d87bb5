"""The video render use case with the real vault and the real renderer: a result nobody downloads is
dropped after its time and its memory given back; a result that would not fit the memory cap fails with a
message (and holds nothing); beyond the bound a render is refused and its upload given back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from appliance.app.video_renders import NotReady, RenderGone, RendersBusy, VideoRenders
from appliance.transcription.jobs import AudioVault
from appliance.transcripts.exports.video import VideoOptions
from tests.support import video_clip
from tests.transcripts.test_video import DOC


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return video_clip(tmp_path_factory.mktemp("renders") / "clip.mp4", seconds=2.0)


def _upload(vault: AudioVault, data: bytes):  # type: ignore[no-untyped-def]
    upload = vault.upload()
    upload.append(data)
    return upload


def _until(check, seconds: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_an_unclaimed_result_expires_and_gives_its_memory_back(clip: bytes) -> None:
    vault = AudioVault(64 * 2**20, 32 * 2**20)
    renders = VideoRenders(vault, max_running=1, keep_seconds=0.5)
    item = renders.start("u1", DOC, _upload(vault, clip), VideoOptions(kind="mkv-srt"))
    with pytest.raises(RenderGone):
        renders.get("someone else", item.id)
    _until(lambda: item.state == "done")
    assert vault.used == item.size_bytes  # the video was given back, the result is counted
    assert renders.result("u1", item.id)[1][:4] == b"\x1a\x45\xdf\xa3"  # Matroska's magic
    _until(lambda: vault.used == 0)
    with pytest.raises(RenderGone):
        renders.get("u1", item.id)


def test_a_result_too_large_for_the_memory_cap_fails_clearly(clip: bytes) -> None:
    vault = AudioVault(len(clip) + 4096, len(clip) + 4096)  # room for the video, not for a re-encoded copy
    renders = VideoRenders(vault, max_running=1, keep_seconds=30)
    item = renders.start("u1", DOC, _upload(vault, clip), VideoOptions(size="large"))
    _until(lambda: item.state != "running")
    assert item.state == "failed" and "would not fit in the memory" in (item.error or "")
    with pytest.raises(NotReady, match="would not fit"):
        renders.result("u1", item.id)
    assert vault.used == 0
    renders.discard("u1", item.id)


def test_beyond_the_bound_a_render_is_refused_and_its_upload_given_back(clip: bytes, tmp_path: Path) -> None:
    vault = AudioVault(256 * 2**20, 128 * 2**20)
    renders = VideoRenders(vault, max_running=1, keep_seconds=30)
    long_clip = video_clip(tmp_path / "long.mp4", seconds=20.0, size="640x360")
    first = renders.start("u1", DOC, _upload(vault, long_clip), VideoOptions())
    refused = _upload(vault, clip)
    with pytest.raises(RendersBusy):
        renders.start("u2", DOC, refused, VideoOptions())
    # Its reservation is given back at once. (The vault's total is no measure here: the first render's
    # result buffer grows while it runs.)
    assert refused.size == 0
    renders.discard("u1", first.id)  # cancels the running render
    _until(lambda: vault.used == 0)  # nothing of either upload is left held
    assert first.state == "cancelled" and renders.running() == 0
