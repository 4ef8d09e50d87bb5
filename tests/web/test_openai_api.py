"""The official `openai` package, unmodified, against the appliance (real HTTP, real tiny model)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from appliance.core.config import Settings
from appliance.transcription.asr import AsrResult, Segment, Word
from tests.support import FakeRecognizer, LiveServer, bootstrap


@pytest.fixture
def client(settings: Settings) -> Iterator[tuple[openai.OpenAI, LiveServer]]:
    from appliance.web.app import create_app

    key = bootstrap(settings)
    with LiveServer(create_app(settings)) as server:
        yield openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120), server


def test_every_response_format(client, speech_wav: Path) -> None:  # type: ignore[no-untyped-def]
    api, _ = client
    with speech_wav.open("rb") as f:
        result = api.audio.transcriptions.create(model="whisper-1", file=f)
    assert "lazy" in result.text.lower()
    with speech_wav.open("rb") as f:
        text = api.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="text", temperature=0.0, prompt="A sentence about a fox.", language="en"
        )
    assert isinstance(text, str) and "lazy" in text.lower()
    for fmt, start in (("srt", "1\n00:00:"), ("vtt", "WEBVTT")):
        with speech_wav.open("rb") as f:
            body = api.audio.transcriptions.create(model="tiny.en", file=f, response_format=fmt)
        assert body.startswith(start), fmt
    with speech_wav.open("rb") as f:
        verbose = api.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
    assert verbose.language == "english" and verbose.duration > 4
    assert verbose.words and verbose.words[0].end > verbose.words[0].start
    assert verbose.segments and "lazy" in " ".join(s.text for s in verbose.segments).lower()


def test_diarized_json(client, dialogue) -> None:  # type: ignore[no-untyped-def]
    api, _ = client
    with dialogue[0].open("rb") as f:
        result = api.audio.transcriptions.create(model="gpt-4o-transcribe-diarize", file=f, response_format="diarized_json")
    assert {s.speaker for s in result.segments} == {"A", "B"}
    assert result.segments[0].speaker == "A" and "good morning" in result.segments[0].text.lower()


def test_streaming(client, speech_wav: Path) -> None:  # type: ignore[no-untyped-def]
    api, _ = client
    with speech_wav.open("rb") as f:
        stream = api.audio.transcriptions.create(model="whisper-1", file=f, stream=True)
        events = list(stream)
    assert events[-1].type == "transcript.text.done" and "lazy" in events[-1].text.lower()
    assert any(e.type == "transcript.text.delta" for e in events)


class GatedRecognizer:
    """Decodes a first segment, then waits until the test has seen it streamed before decoding the second."""

    def __init__(self) -> None:
        self.first_seen = threading.Event()
        self.saw_first_while_running: bool | None = None

    def transcribe(self, model: Any, audio: np.ndarray, options: Any, progress: Any, cancelled: Any) -> AsrResult:
        duration = len(audio) / 16000
        progress(duration / 2, "first part")
        self.saw_first_while_running = self.first_seen.wait(60)
        progress(duration, "second part")
        segments = [
            Segment(0.0, 1.0, "first part", [Word(0.0, 0.5, " first", 0.9), Word(0.5, 1.0, " part", 0.9)]),
            Segment(1.0, 2.0, "second part", [Word(1.0, 1.5, " second", 0.9), Word(1.5, 2.0, " part", 0.9)]),
        ]
        return AsrResult(segments, "en", 1.0, duration, 0.1)


def _openai_on(settings: Settings, recognizer: Any) -> Iterator[openai.OpenAI]:
    from appliance.web.app import create_app

    key = bootstrap(settings)
    with LiveServer(create_app(settings, recognizer=recognizer)) as server:
        yield openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)


def test_streaming_sends_each_segment_while_the_model_is_still_decoding(settings: Settings, speech_wav: Path) -> None:
    recognizer = GatedRecognizer()
    for api in _openai_on(settings, recognizer):
        events = []
        with speech_wav.open("rb") as f:
            for event in api.audio.transcriptions.create(model="whisper-1", file=f, stream=True):
                events.append(event)
                if event.type == "transcript.text.delta":
                    recognizer.first_seen.set()  # the model goes on only once the first delta has arrived
    assert recognizer.saw_first_while_running is True
    assert [e.delta for e in events if e.type == "transcript.text.delta"] == ["first part", " second part"]
    assert events[-1].type == "transcript.text.done" and events[-1].text == "first part second part"


def test_a_failed_streamed_job_raises_in_the_client(settings: Settings, speech_wav: Path) -> None:
    for api in _openai_on(settings, FakeRecognizer(explode=lambda audio: True)):
        with pytest.raises(openai.APIError) as err, speech_wav.open("rb") as f:
            list(api.audio.transcriptions.create(model="whisper-1", file=f, stream=True))
        assert "Internal error while transcribing" in err.value.message


def test_models_errors_and_store_false(client, speech_wav: Path, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    api, server = client
    ids = {m.id for m in api.models.list()}
    assert {"whisper-1", "tiny.en"} <= ids
    with pytest.raises(openai.BadRequestError) as err, speech_wav.open("rb") as f:
        api.audio.transcriptions.create(model="no-such-model", file=f)
    assert "unknown model" in err.value.message
    bad = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sotto_wrong_key", max_retries=0)
    with pytest.raises(openai.AuthenticationError), speech_wav.open("rb") as f:
        bad.audio.transcriptions.create(model="whisper-1", file=f)
    from appliance.core import migrations
    from appliance.core.db import connect
    from appliance.transcripts import store as transcripts

    db = connect(settings.storage.database_path)
    migrations.apply(db)
    before = transcripts.list_page(db, limit=500, offset=0)["total"]
    with speech_wav.open("rb") as f:
        api.audio.transcriptions.create(model="whisper-1", file=f, extra_body={"store": "false"})
    assert transcripts.list_page(db, limit=500, offset=0)["total"] == before
    with speech_wav.open("rb") as f:
        api.audio.transcriptions.create(model="whisper-1", file=f)
    assert transcripts.list_page(db, limit=500, offset=0)["total"] == before + 1  # stored by default


def test_bad_temperature_is_an_openai_error(client, speech_wav: Path) -> None:  # type: ignore[no-untyped-def]
    api, _ = client
    with pytest.raises(openai.BadRequestError) as err, speech_wav.open("rb") as f:
        api.audio.transcriptions.create(model="whisper-1", file=f, temperature=3.0)
    assert "temperature" in err.value.message


def test_translation_needs_a_multilingual_model(client, speech_wav: Path) -> None:  # type: ignore[no-untyped-def]
    api, _ = client
    with pytest.raises(openai.BadRequestError) as err, speech_wav.open("rb") as f:
        api.audio.translations.create(model="whisper-1", file=f)
    assert "cannot translate" in err.value.message


def test_a_key_made_not_to_store_keeps_no_transcript(settings: Settings, speech_wav: Path) -> None:
    import httpx

    from appliance.core import migrations
    from appliance.core.db import connect
    from appliance.transcripts import store as transcripts
    from appliance.web.app import create_app

    key = bootstrap(settings)
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http,
    ):
        made = http.post("/api/v1/apikeys", json={"name": "dictation tool", "scope": "transcribe", "store": False})
        assert made.status_code == 201 and made.json()["store"] is False
        listed = {k["name"]: k["store"] for k in http.get("/api/v1/apikeys").json()}
        assert listed["dictation tool"] is False
        db = connect(settings.storage.database_path)
        migrations.apply(db)
        before = transcripts.list_page(db, limit=500, offset=0)["total"]
        no_store = openai.OpenAI(base_url=f"{server.url}/v1", api_key=made.json()["key"], max_retries=0, timeout=60)
        with speech_wav.open("rb") as f:
            assert no_store.audio.transcriptions.create(model="whisper-1", file=f).text == "hello world"
        with speech_wav.open("rb") as f:  # a request cannot ask a no-store key to store
            no_store.audio.transcriptions.create(model="whisper-1", file=f, extra_body={"store": "true"})
        assert transcripts.list_page(db, limit=500, offset=0)["total"] == before
        keeps = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=60)
        with speech_wav.open("rb") as f:
            keeps.audio.transcriptions.create(model="whisper-1", file=f)
        assert transcripts.list_page(db, limit=500, offset=0)["total"] == before + 1


def test_verbose_json_scores_are_faster_whispers_own(settings: Settings, speech_wav: Path) -> None:
    """Each segment's avg_logprob, no_speech_prob, compression_ratio, temperature, seek and tokens are what
    faster-whisper itself reports for the same audio and settings (they used to be invented constants)."""
    import dataclasses

    from faster_whisper import WhisperModel

    from appliance.transcription.asr import embedded_model_path
    from appliance.transcription.audio import decode
    from appliance.web.app import create_app

    # The sequential decoder, one thread, int8: the same call made directly below.
    settings = dataclasses.replace(
        settings,
        models=dataclasses.replace(settings.models, batched=False, cpu_threads=1, compute_type="int8"),
        transcription=dataclasses.replace(settings.transcription, vad_filter=False),
    )
    key = bootstrap(settings)
    with LiveServer(create_app(settings)) as server, speech_wav.open("rb") as f:
        api = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)
        verbose = api.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json", timestamp_granularities=["segment"]
        )
    model = WhisperModel(str(embedded_model_path()), device="cpu", compute_type="int8", cpu_threads=1, local_files_only=True)
    segments, _info = model.transcribe(
        decode(speech_wav.read_bytes()).samples, beam_size=5, word_timestamps=True, vad_filter=False
    )
    reference = list(segments)
    ours = verbose.model_dump()["segments"]
    assert len(ours) == len(reference) >= 1
    for got, want in zip(ours, reference, strict=False):
        assert got["tokens"] == list(want.tokens) and got["seek"] == want.seek and got["temperature"] == want.temperature
        assert got["avg_logprob"] == pytest.approx(want.avg_logprob, abs=1e-4) and got["avg_logprob"] != 0.0
        assert got["no_speech_prob"] == pytest.approx(want.no_speech_prob, abs=1e-4)
        assert got["compression_ratio"] == pytest.approx(want.compression_ratio, abs=1e-4)
