"""Subtitles on a video: burned into the picture (read back frame by frame with PyAV) or muxed as a
subtitle stream (read back with ffprobe/ffmpeg); bad input is refused with a message a person can act on;
and rendering touches no file (strace on a process that renders every kind)."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.transcripts.document import from_builtins
from appliance.transcripts.exports import OptionsError
from appliance.transcripts.exports.video import BadVideo, Stopped, VideoOptions, captions, render
from tests.support import REPO, ffmpeg, need, video_clip

DOC = from_builtins(
    {
        "id": "v1",
        "filename": "clip.mp4",
        "duration": 3.0,
        "text": "",
        "speakers": [{"id": "S1", "label": "Speaker 1", "display_name": "Ada"}],
        "segments": [
            {
                "id": 0,
                "start": 0.5,
                "end": 1.7,
                "text": "Hello subtitles world",
                "speaker": "S1",
                "words": [
                    {"start": 0.5 + 0.4 * i, "end": 0.8 + 0.4 * i, "word": f" {w}", "speaker": "S1"}
                    for i, w in enumerate(["Hello", "subtitles", "world"])
                ],
            }
        ],
    }
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return video_clip(tmp_path_factory.mktemp("video") / "clip.mp4")


def _frames(data: bytes) -> list[tuple[float, np.ndarray]]:
    import av

    with av.open(io.BytesIO(data), mode="r") as container:
        return [(float(f.time), f.to_ndarray(format="rgb24").astype(np.int16)) for f in container.decode(video=0)]


def _at(frames: list[tuple[float, np.ndarray]], seconds: float) -> np.ndarray:
    return min(frames, key=lambda f: abs(f[0] - seconds))[1]


def _render(clip: bytes, **options: str) -> bytes:
    sink = io.BytesIO()
    render(DOC, clip, VideoOptions.parse(options), sink)
    return sink.getvalue()


def _probe(data: bytes, tmp_path: Path, name: str) -> tuple[list[dict[str, str]], str]:
    path = tmp_path / name
    path.write_bytes(data)
    shown = subprocess.run(
        [need("ffprobe"), "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    subs = subprocess.run(
        [need("ffmpeg"), "-v", "error", "-i", str(path), "-map", "0:s:0", "-f", "srt", "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(shown)["streams"], subs


def test_burned_in_text_changes_the_picture_only_inside_a_cue(clip: bytes, tmp_path: Path) -> None:
    out = _render(clip, size="large", position="bottom")
    before, after = _frames(clip), _frames(out)
    assert len(after) == len(before)
    inside_new, inside_old = _at(after, 1.0), _at(before, 1.0)
    height = inside_new.shape[0]
    diff = np.abs(inside_new - inside_old).max(axis=2)
    # White text on a dark box in the lower part of the picture, nothing in the upper half.
    assert (diff[height // 2 :] > 30).mean() > 0.05
    assert inside_old.max() < 110 and inside_new[height // 2 :].max() > 200
    assert diff[: height // 3].max() < 12
    outside = np.abs(_at(after, 2.6) - _at(before, 2.6))
    assert outside.max() < 12  # codec noise only
    path = tmp_path / "burn.mp4"
    path.write_bytes(out)
    probed = subprocess.run(
        [need("ffprobe"), "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kinds = {s["codec_type"]: s["codec_name"] for s in json.loads(probed)["streams"]}
    assert kinds == {"video": "h264", "audio": "aac"}


def test_top_position_draws_in_the_upper_part(clip: bytes) -> None:
    out = _render(clip, position="top", speakers="false")
    diff = np.abs(_at(_frames(out), 1.0) - _at(_frames(clip), 1.0)).max(axis=2)
    height = diff.shape[0]
    assert (diff[: height // 3] > 30).mean() > 0.02
    assert diff[height // 2 :].max() < 12


@pytest.mark.parametrize(
    ("kind", "name", "codec"),
    [("mp4", "soft.mp4", "mov_text"), ("mkv-srt", "soft.mkv", "subrip"), ("mkv-ass", "soft.mkv", "ass")],
)
def test_soft_subtitles_are_a_stream_with_the_cue_text(clip: bytes, tmp_path: Path, kind: str, name: str, codec: str) -> None:
    out = _render(clip, kind=kind)
    streams, srt = _probe(out, tmp_path, name)
    assert {s["codec_type"]: s["codec_name"] for s in streams} == {"video": "h264", "audio": "aac", "subtitle": codec}
    assert "Ada: Hello subtitles world" in srt
    assert "00:00:00," in srt


def test_captions_follow_the_subtitle_rules() -> None:
    assert [c.lines for c in captions(DOC, VideoOptions())] == [("Ada: Hello subtitles world",)]
    assert [c.lines for c in captions(DOC, VideoOptions(speakers=False, max_chars_per_line=10))] == [
        ("Hello", "subtitles"),
        ("world",),
    ]  # two lines a cue


VIDEO_2S = ["-f", "lavfi", "-i", "color=c=gray:s=160x120:r=10:d=2", "-f", "lavfi", "-i", "sine=d=2"]


def test_bad_input_gets_a_clear_error(clip: bytes, tmp_path: Path) -> None:
    import av

    with pytest.raises(BadVideo, match="not a video"):
        render(DOC, b"this is not a video at all" * 100, VideoOptions(), io.BytesIO())
    wav = tmp_path / "a.wav"
    subprocess.run([need("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "sine=d=1", str(wav)], check=True)
    with pytest.raises(BadVideo, match="no video picture"):
        render(DOC, wav.read_bytes(), VideoOptions(), io.BytesIO())
    for raw, message in (
        ({"size": "huge"}, "size must be one of"),
        ({"colour": "red"}, "unknown video option"),
        ({"max_chars_per_line": "5"}, "from 10 to 200"),
    ):
        with pytest.raises(OptionsError, match=message):
            VideoOptions.parse(raw)
    webm = tmp_path / "a.webm"
    ffmpeg(*VIDEO_2S, "-c:v", "libvpx", "-c:a", "libopus", "-shortest", str(webm))
    with pytest.raises(BadVideo, match=r"picture \(vp8\) cannot go into an MP4 as it is: choose MKV"):
        render(DOC, webm.read_bytes(), VideoOptions(kind="mp4"), io.BytesIO())
    # Burned in, the same file works: the picture is re-encoded, the Opus sound is copied.
    with av.open(io.BytesIO(_render(webm.read_bytes())), mode="r") as container:
        assert [s.codec_context.name for s in container.streams] == ["h264", "opus"]
    mkv = tmp_path / "a.mkv"  # Vorbis cannot go into an MP4: burned in, it becomes AAC
    ffmpeg(*VIDEO_2S, "-c:v", "mpeg4", "-c:a", "libvorbis", "-shortest", str(mkv))
    with av.open(io.BytesIO(_render(mkv.read_bytes())), mode="r") as container:
        assert [s.codec_context.name for s in container.streams] == ["h264", "aac"]
        assert sum(1 for _ in container.decode(audio=0)) > 10
    with pytest.raises(Stopped):
        render(DOC, clip, VideoOptions(), io.BytesIO(), stop=lambda: True)


RENDER_EVERY_KIND = """
import io, sys
from appliance.transcripts.document import from_builtins
from appliance.transcripts.exports.video import KINDS, VideoOptions, render
from tests.transcripts.test_video import DOC
clip = sys.stdin.buffer.read()
for kind in KINDS:
    sink = io.BytesIO()
    render(DOC, clip, VideoOptions(kind=kind), sink)
    print(kind, len(sink.getvalue()))
"""


def test_rendering_writes_nothing_to_disk(clip: bytes, tmp_path: Path) -> None:
    """Under strace, every file the rendering process opens is opened read-only, and it creates, renames
    or deletes nothing (the imports happen before the trace starts to matter: they only read)."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is required (scripts/test installs it)")
    trace = tmp_path / "trace"
    done = subprocess.run(
        [
            strace,
            "-f",
            "-qq",
            "-e",
            "trace=open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,truncate,ftruncate,memfd_create",
            "-o",
            str(trace),
            sys.executable,
            "-c",
            RENDER_EVERY_KIND,
        ],
        input=clip,
        cwd=REPO,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert len(done.stdout.decode().split("\n")) >= 4 and all(
        int(line.split()[1]) > 1000 for line in done.stdout.decode().split("\n") if line
    )
    calls = [(m.group(1), line) for line in trace.read_text().splitlines() if (m := re.match(r"(?:\d+\s+)?(\w+)\(", line))]
    assert any(name.startswith("open") and "NotoSans-Regular.ttf" in line for name, line in calls)  # the trace saw the render
    writes = [
        line
        for name, line in calls
        if name.startswith("open") and re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC", line) and "/dev/null" not in line
    ]
    changes = [line for name, line in calls if name in CHANGES and "= -1" not in line]
    assert writes == [] and changes == [], (writes + changes)[:10]


CHANGES = {"creat", "mkdir", "mkdirat", "rename", "renameat", "renameat2", "unlink", "unlinkat", "truncate", "ftruncate"}


def test_without_x264_the_picture_is_mpeg4(clip: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """FFmpeg builds without libx264 get MPEG-4 Part 2 (every build has it); the text is still drawn."""
    import av

    from appliance.transcripts.exports import video

    monkeypatch.setattr(video, "_video_codec", lambda: "mpeg4")
    out = _render(clip, size="large")
    with av.open(io.BytesIO(out), mode="r") as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    diff = np.abs(_at(_frames(out), 1.0) - _at(_frames(clip), 1.0)).max(axis=2)
    assert (diff[diff.shape[0] // 2 :] > 30).mean() > 0.05
