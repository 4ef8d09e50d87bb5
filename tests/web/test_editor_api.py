"""The editor's JSON API over real HTTP: saves, conflicts, search, bulk delete and "keep this one"."""

from __future__ import annotations

import io
import wave

import httpx

from appliance.core.config import Settings
from appliance.transcription.asr import embedded_model_path
from tests.support import ADMIN_EMAIL, FakeRecognizer, running, wait_for_job


def _wav(seconds: float = 1.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\x00\x01" * int(16000 * seconds))
    return buffer.getvalue()


def _transcribe(http: httpx.Client, model: str = "tiny.en") -> dict:
    job = http.post("/api/v1/transcriptions", files={"file": ("a.wav", _wav())}, data={"model": model}).json()
    return wait_for_job(http.get, job["id"])


def test_save_conflict_and_rebase_over_http(settings: Settings) -> None:
    with running(settings, recognizer=FakeRecognizer()) as http:
        tid = _transcribe(http)["transcript_id"]
        doc = http.get(f"/api/v1/transcripts/{tid}").json()
        sid = doc["segments"][0]["sid"]
        words = [{"word": "hullo", "start": 0.0, "end": 0.5}, {"word": "world", "start": 0.5, "end": 1.0}]
        saved = http.post(
            f"/api/v1/transcripts/{tid}/edits", json={"base_revision": 1, "ops": [{"op": "segment", "sid": sid, "words": words}]}
        )
        assert saved.status_code == 200 and saved.json()["revision"] == 2
        stale = http.post(
            f"/api/v1/transcripts/{tid}/edits", json={"base_revision": 1, "ops": [{"op": "segment", "sid": sid, "note": "x"}]}
        )
        assert stale.status_code == 409
        assert stale.json()["extra"]["current_revision"] == 2 and "changed elsewhere" in stale.json()["detail"]
        # A title is another part of the document: applied on top of the other change.
        rebased = http.post(
            f"/api/v1/transcripts/{tid}/edits", json={"base_revision": 1, "ops": [{"op": "title", "text": "Standup"}]}
        )
        assert rebased.status_code == 200 and rebased.json()["rebased_over"] == [f"s:{sid}"]
        doc = http.get(f"/api/v1/transcripts/{tid}").json()
        assert doc["title"] == "Standup" and doc["text"] == "hullo world" and doc["revision"] == 3
        # Exports show the edit.
        assert "hullo world" in http.get(f"/api/v1/transcripts/{tid}/export", params={"format": "txt"}).text
        for body in (b"{not json", b'{"base_revision": "one", "ops": []}', b'{"ops": [{"op": "note", "text": "x"}]}'):
            bad = http.post(f"/api/v1/transcripts/{tid}/edits", content=body, headers={"Content-Type": "application/json"})
            assert bad.status_code == 400, body
        assert (
            http.post(
                "/api/v1/transcripts/nope/edits", json={"base_revision": 1, "ops": [{"op": "note", "text": "x"}]}
            ).status_code
            == 404
        )
        # Search sees the edited word, with its segment and a link to it.
        found = http.get("/api/v1/search", params={"q": "hullo"}).json()
        assert found["total"] == 1 and found["items"][0]["link"].startswith(f"/t/{tid}?t=")
        assert http.get("/api/v1/search", params={"q": "hello"}).json()["total"] == 0


def test_bulk_delete_is_all_or_nothing(settings: Settings) -> None:
    with running(settings, recognizer=FakeRecognizer()) as http:
        first, second = _transcribe(http)["transcript_id"], _transcribe(http)["transcript_id"]
        refused = http.post("/api/v1/transcripts/delete", json={"ids": [first, "not-mine"]})
        assert refused.status_code == 404
        assert http.get(f"/api/v1/transcripts/{first}").status_code == 200
        done = http.post("/api/v1/transcripts/delete", json={"ids": [first, second]})
        assert done.status_code == 200 and sorted(done.json()["deleted"]) == sorted([first, second])
        assert (
            http.get(f"/api/v1/transcripts/{first}").status_code == 404
            and http.get(f"/api/v1/transcripts/{second}").status_code == 404
        )


def test_compare_keep_one_deletes_the_other_models_transcripts(settings: Settings) -> None:
    embedded = embedded_model_path()
    assert embedded is not None
    (settings.models.models_dir / "tiny-copy").symlink_to(embedded, target_is_directory=True)
    with running(settings, recognizer=FakeRecognizer()) as http:
        job = _transcribe(http, "tiny.en,tiny-copy")
        assert len(job["transcript_ids"]) == 2
        keep, other = job["transcript_ids"]
        assert http.post(f"/api/v1/jobs/{job['id']}/keep", json={"transcript_id": "nope"}).status_code == 404
        kept = http.post(f"/api/v1/jobs/{job['id']}/keep", json={"transcript_id": keep})
        assert kept.status_code == 200 and kept.json() == {"kept": keep, "deleted": [other]}
        assert http.get(f"/api/v1/transcripts/{other}").status_code == 404
        assert http.get(f"/api/v1/transcripts/{keep}").status_code == 200


def test_revisions_over_http_list_view_restore(settings: Settings) -> None:
    with running(settings, recognizer=FakeRecognizer()) as http:
        tid = _transcribe(http)["transcript_id"]
        doc = http.get(f"/api/v1/transcripts/{tid}").json()
        original = doc["segments"][0]["text"]
        sid = doc["segments"][0]["sid"]
        words = [{"word": "hullo", "start": 0.0, "end": 0.5}]
        ops = [{"op": "segment", "sid": sid, "words": words}]
        assert http.post(f"/api/v1/transcripts/{tid}/edits", json={"base_revision": 1, "ops": ops}).status_code == 200
        listed = http.get(f"/api/v1/transcripts/{tid}/revisions").json()
        assert listed["current"] == 2 and listed["kept"] == 50 and not listed["private"]
        assert [(i["revision"], i["description"], i["by"]) for i in listed["items"]] == [
            (2, "Edited 1 segment", ADMIN_EMAIL),
            (1, "As transcribed", None),
        ]
        earlier = http.get(f"/api/v1/transcripts/{tid}/revisions/1").json()
        assert earlier["segments"][0]["text"] == original and earlier["speakers"] == []
        assert http.get(f"/api/v1/transcripts/{tid}/revisions/9").status_code == 404
        restored = http.post(f"/api/v1/transcripts/{tid}/revisions/1/restore")
        assert restored.status_code == 200 and restored.json() == {"revision": 3, "restored": 1}
        assert http.get(f"/api/v1/transcripts/{tid}").json()["segments"][0]["text"] == original
        assert http.post(f"/api/v1/transcripts/{tid}/revisions/3/restore").status_code == 404  # already current
        audit = http.get("/api/v1/audit", params={"action": "transcript.revision_restored"})
        assert audit.status_code == 200 and tid in audit.text
