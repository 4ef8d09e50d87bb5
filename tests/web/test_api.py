"""The JSON API over real HTTP (uvicorn on loopback), real SQLite, the real tiny Whisper model."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.core.config import Settings
from tests.support import FakeRecognizer, running, wait_for_job


def _upload(http: httpx.Client, data: bytes, name: str = "clip.wav", **fields: str) -> httpx.Response:
    return http.post("/api/v1/transcriptions", files={"file": (name, data, "audio/wav")}, data=fields)


def test_upload_poll_returns_the_right_words(http: httpx.Client, speech_bytes: bytes) -> None:
    response = _upload(http, speech_bytes)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] in {"queued", "running"}
    done = wait_for_job(http.get, job["job_id"])
    assert done["state"] == "done", done
    assert done["progress"] == 1.0
    transcript = http.get(f"/api/v1/transcripts/{done['transcript_id']}").json()
    for word in ("fox", "lazy", "dog", "stella"):
        assert word in transcript["text"].lower()
    assert transcript["model"] == "tiny.en"
    assert transcript["language"] == "en"
    assert transcript["filename"] == "clip.wav"
    assert transcript["size_bytes"] == len(speech_bytes)
    assert 4 < transcript["duration"] < 10
    segment = transcript["segments"][0]
    assert {"start", "end", "text", "words"} <= set(segment)
    assert {"start", "end", "word", "probability"} <= set(segment["words"][0])


def test_raw_body_upload_with_query_options(http: httpx.Client, speech_bytes: bytes) -> None:
    response = http.post(
        "/api/v1/transcriptions?filename=memo.wav&language=en&word_timestamps=false&beam_size=1",
        content=speech_bytes,
        headers={"content-type": "audio/wav"},
    )
    assert response.status_code == 202, response.text
    done = wait_for_job(http.get, response.json()["job_id"])
    assert done["state"] == "done"
    transcript = http.get(f"/api/v1/transcripts/{done['transcript_id']}").json()
    assert transcript["filename"] == "memo.wav"
    assert transcript["options"]["beam_size"] == 1
    assert transcript["language_probability"] == 1.0
    assert all(seg["words"] == [] for seg in transcript["segments"])
    assert "lazy" in transcript["text"].lower()


def test_several_models_one_upload(settings: Settings, tmp_path: Path, speech_bytes: bytes) -> None:
    from appliance.transcription.asr import embedded_model_path

    copy = settings.models.models_dir / "tiny-copy"
    copy.mkdir()
    for f in embedded_model_path().iterdir():  # type: ignore[union-attr]
        (copy / f.name).symlink_to(f)
    with running(settings, timeout=60) as http:
        job = _upload(http, speech_bytes, options=json.dumps({"models": ["tiny.en", "tiny-copy"]})).json()
        done = wait_for_job(http.get, job["job_id"])
        assert done["state"] == "done", done
        assert len(done["transcript_ids"]) == 2 and done["transcript_id"] == done["transcript_ids"][0]
        models = [http.get(f"/api/v1/transcripts/{t}").json()["model"] for t in done["transcript_ids"]]
        assert models == ["tiny.en", "tiny-copy"]


def test_events_stream_progress_until_done(http: httpx.Client, speech_bytes: bytes) -> None:
    job = _upload(http, speech_bytes).json()
    events = []
    with http.stream("GET", f"/api/v1/jobs/{job['job_id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
    assert events[-1][0] == "done"
    assert events[-1][1]["transcript_id"]
    progress = [e[1]["progress"] for e in events]
    assert progress == sorted(progress)


def test_transcripts_list_paginates_and_delete_is_final(http: httpx.Client, speech_bytes: bytes) -> None:
    ids = []
    for i in range(3):
        job = _upload(http, speech_bytes, name=f"c{i}.wav", vad_filter="true").json()
        ids.append(wait_for_job(http.get, job["job_id"])["transcript_id"])
    page = http.get("/api/v1/transcripts", params={"limit": 2}).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    assert page["items"][0]["filename"] == "c2.wav"  # newest first
    rest = http.get("/api/v1/transcripts", params={"limit": 2, "offset": 2}).json()
    assert [i["filename"] for i in rest["items"]] == ["c0.wav"]
    assert http.delete(f"/api/v1/transcripts/{ids[1]}").status_code == 204
    assert http.get(f"/api/v1/transcripts/{ids[1]}").status_code == 404
    assert http.delete(f"/api/v1/transcripts/{ids[1]}").status_code == 404
    assert http.get("/api/v1/transcripts").json()["total"] == 2
    assert http.get(f"/api/v1/transcripts/{ids[0]}").status_code == 200


def test_export_formats(http: httpx.Client, speech_bytes: bytes) -> None:
    job = _upload(http, speech_bytes, name="memo.wav").json()
    tid = wait_for_job(http.get, job["job_id"])["transcript_id"]
    srt = http.get(f"/api/v1/transcripts/{tid}/export", params={"format": "srt"})
    assert srt.status_code == 200
    assert srt.text.startswith("1\n00:00:")
    assert 'filename="memo.srt"' in srt.headers["content-disposition"]
    vtt = http.get(f"/api/v1/transcripts/{tid}/export", params={"format": "vtt"}).text
    assert vtt.startswith("WEBVTT")
    exported = http.get(f"/api/v1/transcripts/{tid}/export", params={"format": "json"}).json()
    assert exported.pop("schema") == "sotto.transcript/v1"
    assert exported == http.get(f"/api/v1/transcripts/{tid}").json()
    for fmt, magic in (("docx", b"PK"), ("pdf", b"%PDF"), ("csv", b"start,end"), ("md", b"# memo")):
        response = http.get(f"/api/v1/transcripts/{tid}/export", params={"format": fmt})
        assert response.status_code == 200 and response.content.startswith(magic), fmt
    plain = http.get(f"/api/v1/transcripts/{tid}/export", params={"format": "txt", "timestamps": "false"}).text
    assert not plain.startswith("[")
    assert http.get(f"/api/v1/transcripts/{tid}/export", params={"format": "srt", "max_lines": "9"}).status_code == 400
    bulk = http.post("/api/v1/transcripts/export", json={"ids": [tid], "formats": ["txt", "pdf"]})
    import io
    import zipfile

    assert bulk.status_code == 200 and sorted(zipfile.ZipFile(io.BytesIO(bulk.content)).namelist()) == ["memo.pdf", "memo.txt"]
    assert http.post("/api/v1/transcripts/export", json={"ids": ["nope"], "formats": ["txt"]}).status_code == 404
    # Amplification: a request naming 1.5 million formats is refused at decoding, in well under a second;
    # repeated formats are rendered once.
    started = time.monotonic()
    flood = http.post("/api/v1/transcripts/export", json={"ids": [tid], "formats": ["pdf"] * 1_500_000})
    assert flood.status_code == 400 and time.monotonic() - started < 5
    twice = http.post("/api/v1/transcripts/export", json={"ids": [tid, tid], "formats": ["txt", "txt", "pdf", "pdf"]})
    assert sorted(zipfile.ZipFile(io.BytesIO(twice.content)).namelist()) == ["memo.pdf", "memo.txt"]
    assert http.post("/api/v1/transcripts/export", json={"ids": [tid] * 501, "formats": ["txt"]}).status_code == 400
    assert http.get(f"/api/v1/transcripts/{tid}/export", params={"format": "exe"}).status_code == 400


def test_models_health_and_openapi(http: httpx.Client) -> None:
    models = http.get("/api/v1/models").json()
    tiny = next(m for m in models["models"] if m["id"] == "tiny.en")
    assert tiny["default"] is True and tiny["multilingual"] is False
    health = http.get("/healthz")
    assert health.status_code == 200 and health.json()["worker_alive"] is True
    schema = http.get("/schema/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/transcriptions",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/events",
        "/api/v1/transcripts",
        "/api/v1/transcripts/{transcript_id}",
        "/api/v1/models",
        "/healthz",
    ):
        assert path in paths, path
    assert "multipart/form-data" in paths["/api/v1/transcriptions"]["post"]["requestBody"]["content"]
    assert {"Job", "Transcript", "Segment", "Word"} <= set(schema["components"]["schemas"])


# ----------------------------------------------------------------------------- bad input


@pytest.fixture
def fake_http(settings: Settings) -> Iterator[httpx.Client]:

    recognizer = FakeRecognizer(explode=lambda audio: len(audio) == 16000 * 3)
    with running(settings, recognizer=recognizer, timeout=60) as client:
        yield client


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"model": "large-v9"}, 400, "unknown model 'large-v9'"),
        ({"language": "klingon"}, 400, "not a language code"),
        ({"language": "de"}, 400, "understands English only, so it cannot transcribe German"),
        ({"task": "translate"}, 400, "cannot translate"),
        ({"options": "{not json"}, 400, "options is not valid JSON"),
        ({"options": "[1, 2]"}, 400, "must be a JSON object"),
        ({"options": '{"colour": "red"}'}, 400, "unknown option 'colour'"),
        ({"beam_size": "0"}, 400, "beam_size"),
        ({"word_timestamps": "sometimes"}, 400, "word_timestamps"),
        ({"priority": "99"}, 400, "priority"),
        ({"surprise": "x"}, 400, "unknown form field"),
    ],
)
def test_bad_options_are_clear_400s(
    fake_http: httpx.Client, speech_bytes: bytes, fields: dict, status: int, message: str
) -> None:
    response = _upload(fake_http, speech_bytes, **fields)
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert fake_http.get("/healthz").json()["audio_bytes_in_memory"] == 0


def test_bad_files_are_clear(fake_http: httpx.Client, media_dir: Path) -> None:
    from tests.support import ffmpeg

    png = media_dir / "pic.png"
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=16x16", "-frames:v", "1", str(png))
    cases = [
        (b"", 400, "empty"),
        (b"just some words in a text file\n" * 20, 415, "neither audio nor video"),
        (png.read_bytes(), 415, ""),
    ]
    for data, status, message in cases:
        response = _upload(fake_http, data, name="renamed.wav")
        assert response.status_code == status, (response.status_code, response.text)
        assert message in response.json()["detail"]
    no_file = fake_http.post("/api/v1/transcriptions", data={"language": "en"}, files={"other": ("x", b"1")})
    assert no_file.status_code == 400
    assert "unknown form field" in no_file.json()["detail"] or "No file" in no_file.json()["detail"]
    as_json = fake_http.post("/api/v1/transcriptions", json={"file": "abc"})
    assert as_json.status_code == 415
    assert fake_http.get("/healthz").json()["audio_bytes_in_memory"] == 0


def test_truncated_multipart_body_is_400(fake_http: httpx.Client) -> None:
    body = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF....'
    response = fake_http.post(
        "/api/v1/transcriptions", content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"}
    )
    assert response.status_code == 400
    assert "multipart form could not be read" in response.json()["detail"]


def test_upload_over_cap_is_413_and_memory_full_is_503(tmp_path: Path, speech_bytes: bytes) -> None:
    from appliance.core.config import load

    env = {"APPLIANCE_DATA_DIR": str(tmp_path / "d"), "APPLIANCE_SERVER__MAX_UPLOAD_BYTES": str(len(speech_bytes) - 1)}
    with running(load(None, env), recognizer=FakeRecognizer()) as http:
        response = _upload(http, speech_bytes)
        assert response.status_code == 413 and "larger than this appliance accepts" in response.json()["detail"]
        # Without a Content-Length the cap is enforced while streaming.
        chunked = http.post(
            "/api/v1/transcriptions",
            content=iter([speech_bytes[:1000], speech_bytes[1000:]]),
            headers={"content-type": "audio/wav"},
        )
        assert chunked.status_code == 413
        assert http.get("/healthz").json()["audio_bytes_in_memory"] == 0
    # Room for one upload and its decoded samples (counted against the same cap; the decoder reserves
    # 10 s of samples at least), not for a second upload while the first is being transcribed.
    decoded = 16000 * 10 * 4
    env = {
        "APPLIANCE_DATA_DIR": str(tmp_path / "e"),
        "APPLIANCE_SERVER__MAX_AUDIO_MEMORY_BYTES": str(int(len(speech_bytes) * 1.5) + decoded),
    }
    recognizer = FakeRecognizer(delay=3.0)
    with running(load(None, env), recognizer=recognizer) as http:
        first = _upload(http, speech_bytes)
        assert first.status_code == 202
        while http.get(f"/api/v1/jobs/{first.json()['job_id']}").json()["stage"] != "transcribing":
            time.sleep(0.02)
        assert http.get("/healthz").json()["audio_bytes_in_memory"] == len(speech_bytes) + decoded
        second = _upload(http, speech_bytes)
        assert second.status_code == 503
        assert second.headers["retry-after"] == "30"
        assert wait_for_job(http.get, first.json()["job_id"])["state"] == "done"
        assert _upload(http, speech_bytes).status_code == 202  # memory was given back


def test_worker_survives_a_crashing_job(fake_http: httpx.Client, speech_bytes: bytes) -> None:
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:  # exactly 3 s: the fake recognizer crashes on this one
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\x01\x00" * 48000)
    bad = _upload(fake_http, buffer.getvalue(), name="poison.wav").json()
    good = _upload(fake_http, speech_bytes).json()
    failed = wait_for_job(fake_http.get, bad["job_id"])
    assert failed["state"] == "failed"
    assert "Internal error" in failed["error"] and "Other jobs are unaffected" in failed["error"]
    assert wait_for_job(fake_http.get, good["job_id"])["state"] == "done"
    assert fake_http.get("/healthz").json()["worker_alive"] is True


def test_cancel_running_and_queued_jobs(settings: Settings, speech_bytes: bytes) -> None:
    with running(settings, recognizer=FakeRecognizer(delay=5.0)) as http:
        busy = _upload(http, speech_bytes).json()
        queued = _upload(http, speech_bytes).json()
        import time

        deadline = time.monotonic() + 10
        while http.get(f"/api/v1/jobs/{busy['job_id']}").json()["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        q = http.delete(f"/api/v1/jobs/{queued['job_id']}").json()
        assert q["state"] == "cancelled"
        r = http.delete(f"/api/v1/jobs/{busy['job_id']}").json()
        assert r["cancel_requested"] is True
        assert wait_for_job(http.get, busy["job_id"], timeout=10)["state"] == "cancelled"
        assert http.get("/healthz").json()["audio_bytes_in_memory"] == 0
        assert http.get("/api/v1/jobs/nope").status_code == 404


def test_several_workers_per_device_run_jobs_side_by_side_in_arrival_order(settings: Settings, speech_bytes: bytes) -> None:
    import time

    with running(settings.replace("worker", workers_per_device=2), recognizer=FakeRecognizer(delay=2.0)) as http:
        ids = [_upload(http, speech_bytes).json()["job_id"] for _ in range(3)]
        deadline = time.monotonic() + 10
        states: list[str] = []
        while time.monotonic() < deadline:
            states = [http.get(f"/api/v1/jobs/{j}").json()["state"] for j in ids]
            if states[:2] == ["running", "running"]:
                break
            time.sleep(0.05)
        assert states == ["running", "running", "queued"]  # two at once; the third waits its turn
        assert [wait_for_job(http.get, j, timeout=30)["state"] for j in ids] == ["done"] * 3


def test_stored_transcripts_untouched_by_failures(fake_http: httpx.Client, speech_bytes: bytes) -> None:
    ok = wait_for_job(fake_http.get, _upload(fake_http, speech_bytes).json()["job_id"])
    before = fake_http.get(f"/api/v1/transcripts/{ok['transcript_id']}").json()
    _upload(fake_http, b"garbage" * 100)
    _upload(fake_http, speech_bytes, options="{bad")
    assert fake_http.get(f"/api/v1/transcripts/{ok['transcript_id']}").json() == before


def _wav(samples: "object") -> bytes:
    import io
    import wave

    import numpy as np

    pcm = (np.asarray(samples) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(pcm.tobytes())
    return buffer.getvalue()


def test_silence_and_tiny_clip_give_empty_transcripts(http: httpx.Client) -> None:
    import numpy as np

    for name, samples in (("silence.wav", np.zeros(16000 * 60)), ("blip.wav", np.zeros(1600))):
        job = _upload(http, _wav(samples), name=name).json()
        done = wait_for_job(http.get, job["job_id"])
        assert done["state"] == "done", done
        transcript = http.get(f"/api/v1/transcripts/{done['transcript_id']}").json()
        assert transcript["text"] == "" and transcript["segments"] == [], transcript["text"]


def test_truncated_mp3_transcribes_what_is_there(http: httpx.Client, converted: dict[str, Path]) -> None:
    data = converted["mp3"].read_bytes()
    job = _upload(http, data[: len(data) * 2 // 3], name="cut.mp3").json()
    done = wait_for_job(http.get, job["job_id"])
    assert done["state"] == "done", done
    text = http.get(f"/api/v1/transcripts/{done['transcript_id']}").json()["text"].lower()
    assert "quick" in text and "things" not in text  # the start is there, the cut-off end is not


def test_diarized_job_has_speakers_everywhere(http: httpx.Client, dialogue: tuple[Path, list]) -> None:  # type: ignore[type-arg]
    path, _truth = dialogue
    job = _upload(http, path.read_bytes(), name="call.wav", diarize="true").json()
    stages = set()
    with http.stream("GET", f"/api/v1/jobs/{job['job_id']}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                stages.add(json.loads(line[5:])["stage"])
    assert {"transcribing", "diarizing"} <= stages
    done = http.get(f"/api/v1/jobs/{job['job_id']}").json()
    assert done["state"] == "done", done
    doc = http.get(f"/api/v1/transcripts/{done['transcript_id']}").json()
    assert [s["label"] for s in doc["speakers"]] == ["Speaker 1", "Speaker 2"]
    assert doc["diarization"]["engine"] == "embedded"
    assert all(seg["speaker"] in {"S1", "S2"} for seg in doc["segments"])
    assert all(w["speaker"] in {"S1", "S2"} for seg in doc["segments"] for w in seg["words"])
    assert doc["segments"][0]["speaker"] == "S1" and "good morning" in doc["segments"][0]["text"].lower()
    order = [seg["speaker"] for seg in doc["segments"]]
    assert "S2" in order and order.index("S2") > 0
    txt = http.get(f"/api/v1/transcripts/{done['transcript_id']}/export", params={"format": "txt"}).text
    assert txt.startswith("[00:0") and "Speaker 1: Good morning" in txt and "Speaker 2:" in txt


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"diarize": "true", "num_speakers": "0"}, "num_speakers must be a whole number from 1 to 20"),
        ({"diarize": "true", "num_speakers": "50"}, "num_speakers must be a whole number from 1 to 20"),
        ({"diarize": "true", "min_speakers": "4", "max_speakers": "2"}, "min_speakers cannot be larger"),
        ({"diarize": "true", "diarization_engine": "magic"}, "diarization_engine must be"),
        ({"num_speakers": "2"}, "needs diarize=true"),
        ({"diarize": "true", "diarization_engine": "pyannote"}, "no pyannote pipeline is installed"),
    ],
)
def test_bad_diarization_options_are_clear_400s(fake_http: httpx.Client, speech_bytes: bytes, fields: dict, message: str) -> None:
    response = _upload(fake_http, speech_bytes, **fields)
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_channel_engine_on_mono_fails_the_job_clearly(fake_http: httpx.Client, speech_bytes: bytes) -> None:
    job = _upload(fake_http, speech_bytes, diarize="true", diarization_engine="channel").json()
    failed = wait_for_job(fake_http.get, job["job_id"])
    assert failed["state"] == "failed" and "one speaker per channel" in failed["error"]
    assert fake_http.get("/healthz").json()["worker_alive"] is True


def test_models_lists_diarization_engines(fake_http: httpx.Client) -> None:
    listed = fake_http.get("/api/v1/models").json()["diarization"]
    assert listed["default"] == "embedded"
    assert set(listed["available"]) == {"embedded", "channel"}
    assert "pyannote" in listed["problems"]
