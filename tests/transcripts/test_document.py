"""The typed transcript document: the committed JSON Schema is the one the code makes, and what the real
API answers and the real JSON export writes both validate against it (real app, real tiny Whisper)."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest

from appliance.transcripts.document import DocumentError, Transcript, from_builtins, json_schema, to_builtins
from tests.support import REPO, wait_for_job

SCHEMA_FILE = REPO / "docs" / "transcript.schema.json"


def test_the_committed_schema_is_the_one_the_code_makes() -> None:
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == json_schema(), (
        "docs/transcript.schema.json is stale: regenerate it with "
        "python -c 'import json; from appliance.transcripts.document import json_schema; "
        "print(json.dumps(json_schema(), indent=2, ensure_ascii=False))' > docs/transcript.schema.json"
    )
    jsonschema.Draft202012Validator.check_schema(committed)


def test_api_answer_and_json_export_validate_and_read_back(http: httpx.Client, speech_bytes: bytes) -> None:
    job = http.post("/api/v1/transcriptions", files={"file": ("clip.wav", speech_bytes)}).json()
    done = wait_for_job(http.get, job["job_id"])
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    answer = http.get(f"/api/v1/transcripts/{done['transcript_id']}").json()
    exported = http.get(f"/api/v1/transcripts/{done['transcript_id']}/export", params={"format": "json"}).json()
    for document in (answer, exported):
        validator.validate(document)
    assert exported.pop("schema") == "sotto.transcript/v1" and exported == answer
    typed = from_builtins(answer)
    assert isinstance(typed, Transcript) and typed.segments and typed.segments[0].words
    assert all(s.sid is not None and s.avg_logprob is not None for s in typed.segments)  # the store's own rows and scores
    assert to_builtins(typed) == answer  # nothing lost or invented on the way through the type


@pytest.mark.parametrize(
    ("broken", "named"),
    [
        ({"id": "t", "segments": [{"id": 0, "start": "soon", "end": 1.0, "text": "x"}]}, "segments[0].start"),
        ({"id": "t", "speakers": [{"label": "Speaker 1"}]}, "id"),
        ({"text": "no id"}, "id"),
    ],
)
def test_a_malformed_document_is_refused_naming_the_field(broken: dict[str, object], named: str) -> None:
    with pytest.raises(DocumentError, match="not a Sotto transcript") as refused:
        from_builtins(broken)
    assert named in str(refused.value)
