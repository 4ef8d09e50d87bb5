"""The official `openai` package, unmodified, against the appliance (real HTTP, real tiny model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from appliance.config import Settings
from tests.conftest import LiveServer, bootstrap


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
        text = api.audio.transcriptions.create(model="whisper-1", file=f, response_format="text", temperature=0.0,
                                               prompt="A sentence about a fox.", language="en")
    assert isinstance(text, str) and "lazy" in text.lower()
    for fmt, start in (("srt", "1\n00:00:"), ("vtt", "WEBVTT")):
        with speech_wav.open("rb") as f:
            body = api.audio.transcriptions.create(model="tiny.en", file=f, response_format=fmt)
        assert body.startswith(start), fmt
    with speech_wav.open("rb") as f:
        verbose = api.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                                  timestamp_granularities=["word", "segment"])
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
    from appliance import migrations, transcripts
    from appliance.db import connect

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
