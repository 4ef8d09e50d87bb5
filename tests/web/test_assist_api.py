"""The local-AI API through the real app and the real SmolLM2-135M model: a summary streamed by
server-sent events, stored as versions with only real citations, edited, gone with its transcript (raw
database file and WAL read); a question answered with cited moments or "Not in this recording"; private
transcripts refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.assist.meeting import LINES
from tests.support import ADMIN_EMAIL, FakeRecognizer, Scenario, settings_in


@dataclass
class World:
    url: str
    http: httpx.Client
    scenario: Scenario
    transcript: str
    data_dir: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, llm_dir: Path) -> Iterator[World]:
    root = tmp_path_factory.mktemp("assist-api")
    settings = settings_in(root, APPLIANCE_ASSIST__MODEL=str(llm_dir), APPLIANCE_ASSIST__MAX_NEW_TOKENS="120")
    scenario = Scenario(settings)
    alice = scenario.person(ADMIN_EMAIL, role="admin", scope="admin")
    transcript = scenario.meeting(alice, LINES)
    with (
        scenario.serve(FakeRecognizer()) as server,
        httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {alice.key}"}) as http,
    ):
        yield World(server.url, http, scenario, transcript, settings.storage.data_dir)


def _events(http: httpx.Client, run_id: str) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    out = []
    with http.stream("GET", f"/api/v1/summary-runs/{run_id}/events") as response:
        assert response.status_code == 200
        event = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event:
                out.append((event, json.loads(line.split(":", 1)[1])))
    return out


def test_summary_streams_is_stored_with_real_citations_and_versions(world: World) -> None:
    started = world.http.post(f"/api/v1/transcripts/{world.transcript}/summaries", json={})
    assert started.status_code == 202, started.text
    events = _events(world.http, started.json()["id"])
    texts = [e for name, e in events if name == "text"]
    assert len(texts) >= 2 and "".join(t["text"] for t in texts).startswith('{"summary": "')  # streamed as written
    assert events[-1][0] == "done" and events[-1][1]["version"] == 1
    out = world.http.get(f"/api/v1/transcripts/{world.transcript}/summaries").json()
    latest = out["latest"]
    assert latest["version"] == 1 and latest["origin"] == "generated" and latest["model"] == "smollm2-135m"
    assert latest["language"] == "en"  # the transcript's own by default
    summary = latest["summary"]
    assert summary["summary"].strip()
    cited = summary["summary_segments"] + [
        c for k in ("key_points", "decisions", "action_items", "open_questions") for i in summary[k] for c in i["segments"]
    ]
    assert set(cited) <= set(range(len(LINES)))
    assert {s["name"] for s in summary["speakers"]} == {"Speaker 1", "Speaker 2"}  # talk time from the transcript
    assert out["assist"]["available"] and out["assist"]["where"] == "this appliance"

    # A person's edit is a new version; an edit on a stale base is refused.
    edited = {**summary, "summary": "Release on Friday; Bob fixes the installer.", "summary_segments": [4, 99]}
    saved = world.http.put(f"/api/v1/transcripts/{world.transcript}/summaries", json={"base_version": 1, "summary": edited})
    assert saved.status_code == 200 and saved.json()["version"] == 2 and saved.json()["origin"] == "edited"
    stale = world.http.put(f"/api/v1/transcripts/{world.transcript}/summaries", json={"base_version": 1, "summary": edited})
    assert stale.status_code == 409
    out = world.http.get(f"/api/v1/transcripts/{world.transcript}/summaries").json()
    assert [v["version"] for v in out["versions"]] == [2, 1]
    assert out["latest"]["summary"]["summary_segments"] == [4]  # the made-up citation was dropped
    first = world.http.get(f"/api/v1/transcripts/{world.transcript}/summaries", params={"version": 1}).json()
    assert first["latest"]["origin"] == "generated"


def test_cancel_stores_nothing(world: World) -> None:
    before = len(world.http.get(f"/api/v1/transcripts/{world.transcript}/summaries").json()["versions"])
    run = world.http.post(f"/api/v1/transcripts/{world.transcript}/summaries", json={}).json()
    assert world.http.delete(f"/api/v1/summary-runs/{run['id']}").status_code == 200
    events = _events(world.http, run["id"])
    assert events[-1][0] == "cancelled"
    assert len(world.http.get(f"/api/v1/transcripts/{world.transcript}/summaries").json()["versions"]) == before


def test_questions_are_answered_with_cited_moments_or_not_at_all(world: World) -> None:
    answer = world.http.post(
        f"/api/v1/transcripts/{world.transcript}/ask", json={"question": "Who will write the release notes?"}
    )
    assert answer.status_code == 200, answer.text
    a = answer.json()
    assert a["found"] and a["answer"] and a["citations"]
    for c in a["citations"]:  # every cited moment exists and says what it is cited for
        assert LINES[c["segment"]][1] == c["text"]
    assert any("release notes" in c["text"] for c in a["citations"])
    nothing = world.http.post(
        f"/api/v1/transcripts/{world.transcript}/ask", json={"question": "What about the zebra migration?"}
    ).json()
    assert nothing == {**nothing, "found": False, "answer": "Not in this recording.", "citations": []}
    assert world.http.post(f"/api/v1/transcripts/{world.transcript}/ask", json={"question": " "}).status_code == 400


def test_private_transcripts_are_not_offered_ai(world: World) -> None:
    owner = world.scenario.person("pat@example.org", role="admin", scope="admin")
    private = world.scenario.meeting(owner, LINES[:2])
    world.scenario.db.execute("UPDATE transcripts SET private = 1 WHERE id = ?", [private])
    with httpx.Client(base_url=world.url, timeout=60, headers={"Authorization": f"Bearer {owner.key}"}) as pat:
        refused = pat.post(f"/api/v1/transcripts/{private}/summaries", json={})
        assert refused.status_code == 409 and "private" in refused.json()["detail"]
        assert pat.post(f"/api/v1/transcripts/{private}/ask", json={"question": "installer"}).status_code == 409


def test_summaries_go_with_their_transcript_from_file_and_wal(world: World) -> None:
    owner = world.scenario.person("del@example.org", role="admin", scope="admin")
    doomed = world.scenario.meeting(owner, LINES)
    canary = "Quixotrombone"
    with httpx.Client(base_url=world.url, timeout=120, headers={"Authorization": f"Bearer {owner.key}"}) as h:
        run = h.post(f"/api/v1/transcripts/{doomed}/summaries", json={}).json()
        assert _events(h, run["id"])[-1][0] == "done"
        generated = h.get(f"/api/v1/transcripts/{doomed}/summaries").json()["latest"]["summary"]
        edited = {**generated, "summary": f"{canary} decided the release date."}
        assert h.put(f"/api/v1/transcripts/{doomed}/summaries", json={"base_version": 1, "summary": edited}).status_code == 200

        def holders(needle: bytes) -> list[str]:
            return [p.name for p in world.data_dir.iterdir() if p.is_file() and needle in p.read_bytes()]

        assert holders(canary.encode())  # the check can see it while it exists
        assert h.delete(f"/api/v1/transcripts/{doomed}").status_code == 204
        assert holders(canary.encode()) == []
        assert h.get(f"/api/v1/transcripts/{doomed}/summaries").status_code == 404


def test_the_summary_is_in_the_docx_markdown_and_json_exports(world: World) -> None:
    import io

    from docx import Document

    latest = world.http.get(f"/api/v1/transcripts/{world.transcript}/summaries").json()["latest"]
    if latest is None:
        run = world.http.post(f"/api/v1/transcripts/{world.transcript}/summaries", json={}).json()
        assert _events(world.http, run["id"])[-1][0] == "done"
        latest = world.http.get(f"/api/v1/transcripts/{world.transcript}/summaries").json()["latest"]
    text = latest["summary"]["summary"]
    export = world.http.get(f"/api/v1/transcripts/{world.transcript}/export", params={"format": "docx"})
    assert export.status_code == 200
    paragraphs = [p.text for p in Document(io.BytesIO(export.content)).paragraphs]
    assert "Summary" in paragraphs and any(p.startswith(text) for p in paragraphs)
    assert any(p.startswith(f"Summary version {latest['version']}") for p in paragraphs)
    assert paragraphs.index("Summary") < paragraphs.index("Transcript")  # the summary comes first
    without = world.http.get(f"/api/v1/transcripts/{world.transcript}/export", params={"format": "docx", "summary": "false"})
    assert "Summary" not in [p.text for p in Document(io.BytesIO(without.content)).paragraphs]
    md = world.http.get(f"/api/v1/transcripts/{world.transcript}/export", params={"format": "md"}).text
    assert "## Summary" in md and "## Transcript" in md
    exported = world.http.get(f"/api/v1/transcripts/{world.transcript}/export", params={"format": "json"}).json()
    assert exported["summary"]["version"] == latest["version"] and exported["summary"]["summary"]["summary"] == text
    pdf = world.http.get(f"/api/v1/transcripts/{world.transcript}/export", params={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_models_lists_the_text_model_with_its_kind(world: World) -> None:
    listed = world.http.get("/api/v1/models").json()
    assert [m["kind"] for m in listed["models"]] == ["asr"]  # the text model is not a Whisper model
    assert listed["assist"]["available"] and listed["assist"]["model"] == "smollm2-135m"
    (text,) = listed["text_models"]
    assert (text["id"], text["kind"], text["in_use"], text["context_length"]) == ("smollm2-135m", "llm", True, 8192)
    assert listed["problems"] == {}


def test_a_bad_language_is_refused_plainly(world: World) -> None:
    bad = world.http.post(f"/api/v1/transcripts/{world.transcript}/summaries", json={"language": "en; drop table"})
    assert bad.status_code == 400 and "language code" in bad.json()["detail"]
    assert world.http.post(f"/api/v1/transcripts/{world.transcript}/ask", json={"question": "x" * 1001}).status_code == 400


def test_the_python_client_summarises_and_asks(world: World) -> None:
    from appliance.client import SottoClient, SottoError

    key = world.http.headers["Authorization"].split(" ", 1)[1]
    pieces: list[str] = []
    with SottoClient(world.url, key) as sotto:
        latest = sotto.summarize(world.transcript, on_text=pieces.append)
        assert pieces and latest["origin"] == "generated" and latest["summary"]["summary"]
        assert sotto.summaries(world.transcript)["latest"]["version"] == latest["version"]
        answer = sotto.ask(world.transcript, "Who will write the release notes?")
        assert answer["found"] and all(0 <= c["segment"] < len(LINES) for c in answer["citations"])
        with pytest.raises(SottoError) as refused:
            sotto.summarize("no-such-transcript")
        assert refused.value.status == 404
