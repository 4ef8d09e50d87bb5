"""One upload-options model for every door: the REST API documents and honours every field of
UploadOptions, the Python client sends them, the OpenAI-compatible API takes them as extra fields (what
OpenAI's SDKs send with `extra_body`), and the CLI has a flag for each (tests/test_cli.py). Real app, real
HTTP, real tiny Whisper; each door's options are read back from the stored transcript."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from appliance.client import SottoClient
from appliance.core.config import Settings
from appliance.transcription.options import KNOWN
from appliance.transcription.upload_options import UPLOAD_OPTION_NAMES, OptionsError, UploadOptions
from tests.support import LiveServer, bootstrap

# Options that change what is stored without needing a second model or a speaker engine's weights.
CHOSEN = UploadOptions(beam_size=3, hotwords="Stella", initial_prompt="Stella, Seattle.", vad_filter=False, priority=2)


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[str, str]]:
    from appliance.web.app import create_app

    key = bootstrap(settings)
    with LiveServer(create_app(settings)) as server:
        yield server.url, key


def _latest_options(url: str, key: str) -> dict[str, object]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        newest = http.get("/api/v1/transcripts", params={"limit": 1}).json()["items"][0]["id"]
        options: dict[str, object] = http.get(f"/api/v1/transcripts/{newest}").json()["options"]
        return options


def test_the_model_is_the_api_vocabulary() -> None:
    assert set(KNOWN) == {*UPLOAD_OPTION_NAMES, "models"}
    with pytest.raises(OptionsError, match="unknown field `beam`"):
        UploadOptions.of({"beam": 3})
    with pytest.raises(OptionsError, match=r"\$\.beam_size"):
        UploadOptions.of({"beam_size": "three"})


def test_rest_api_documents_every_option(live: tuple[str, str]) -> None:
    url, _ = live
    schema = httpx.get(f"{url}/schema/openapi.json").json()
    body = schema["paths"]["/api/v1/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(UPLOAD_OPTION_NAMES) <= set(body["properties"]), set(UPLOAD_OPTION_NAMES) - set(body["properties"])


def test_client_and_openai_doors_carry_every_chosen_option(live: tuple[str, str], speech_wav: Path) -> None:
    url, key = live
    with SottoClient(url, key) as sotto:
        job = sotto.upload(speech_wav, CHOSEN, language="en")
        assert job["priority"] == 2  # a property of the queue, so the job's, not the transcript's
        doc = sotto.transcript(sotto.wait(job["job_id"])["transcript_id"])
        assert "lazy" in doc.text.lower()
        with pytest.raises(OptionsError, match="unknown field"):
            sotto.upload(speech_wav, beams=3)  # refused before a byte is sent
    stored = _latest_options(url, key)
    wanted = {k: v for k, v in CHOSEN.fields().items() if k != "priority"}
    assert {k: stored[k] for k in wanted} == wanted and stored["language"] == "en"

    api = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)
    extra = {"beam_size": 4, "hotwords": "Seattle", "vad_filter": False}
    with speech_wav.open("rb") as f:
        text = api.audio.transcriptions.create(model="tiny.en", file=f, response_format="text", extra_body=extra)
    assert "lazy" in str(text).lower()
    stored = _latest_options(url, key)
    assert {k: stored[k] for k in extra} == extra
    with speech_wav.open("rb") as f, pytest.raises(openai.BadRequestError, match="not offered here"):
        api.audio.transcriptions.create(model="tiny.en", file=f, extra_body={"private": True})
