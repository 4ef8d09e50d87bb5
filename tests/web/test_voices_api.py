"""Voice profiles over real HTTP: the real worker (tiny Whisper, the embedded engine on synthesised
voices), the real SQLite file. Enrol from a recording, suggestion on a new transcript, confirm, enrol from
a transcript, who may do what, bad input, and deletion that leaves no embedding bytes in the file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from appliance.core.config import Settings
from appliance.core.db import connect
from tests.support import ADMIN_EMAIL, FakeRecognizer, Scenario, running, settings_in, speak, wait_for_job


def _files_containing(folder: Path, needle: bytes) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _blobs(settings: Settings, sql: str, args: list[str]) -> list[bytes]:
    db = connect(settings.storage.database_path)
    try:
        return [bytes(r[0]) for r in db.execute(sql, args).fetchall()]
    finally:
        db.conn.close()


def _workspace(http: httpx.Client) -> str:
    return str(http.get("/api/v1/me").json()["user"]["personal_workspace_id"])


def _diarized_job(http: httpx.Client, data: bytes) -> str:
    job = http.post(
        "/api/v1/transcriptions", files={"file": ("call.wav", data, "audio/wav")}, data={"diarize": "true", "language": "en"}
    ).json()
    done = wait_for_job(http.get, job["job_id"], timeout=300)
    assert done["state"] == "done", done
    return str(done["transcript_id"])


def test_enrol_suggest_confirm_and_delete_for_good(tmp_path: Path, dialogue: tuple[Path, list], media_dir: Path) -> None:  # type: ignore[type-arg]
    settings = settings_in(tmp_path, APPLIANCE_DIARIZATION__VOICE_PROFILES="true", APPLIANCE_WORKER__WORKERS_PER_DEVICE="1")
    agent = speak(
        media_dir / "agent_enrol.wav", "Please hold the line while I look up your account and the delivery.", "en-us", pitch=30
    )
    path, _truth = dialogue
    with running(settings, timeout=300) as http:
        ws = _workspace(http)
        base = f"/api/v1/workspaces/{ws}/voice-profiles"
        # Bad input: a clear message, nothing made.
        refused = http.post(base, params={"name": "Agent", "consent_note": " "}, content=agent.read_bytes())
        assert refused.status_code == 400 and "consent" in refused.json()["detail"]
        not_audio = http.post(base, params={"name": "Agent", "consent_note": "Agent, 3 Dec 2026"}, content=b"not audio at all")
        assert not_audio.status_code == 400 and "could not be read as audio" in not_audio.json()["detail"]
        assert http.get(base).json()["profiles"] == []

        made = http.post(base, params={"name": "Agent", "consent_note": "Agent agreed on 3 Dec 2026"}, content=agent.read_bytes())
        assert made.status_code == 201, made.text
        profile = made.json()
        assert profile["engines"] == ["embedded"] and profile["can_manage"] is True

        transcript_id = _diarized_job(http, path.read_bytes())
        voices = http.get(f"/api/v1/transcripts/{transcript_id}/voices").json()
        assert voices["enabled"] is True
        by_key = {v["speaker"]: v for v in voices["speakers"]}
        assert set(by_key) == {"S1", "S2"}
        assert by_key["S1"]["profile_name"] == "Agent" and by_key["S1"]["score"] >= 0.95, by_key
        assert by_key["S2"]["profile_id"] is None  # the caller was never enrolled: no name suggested
        doc = http.get(f"/api/v1/transcripts/{transcript_id}").json()
        assert all(s["display_name"] is None for s in doc["speakers"])  # suggested, not applied

        confirmed = http.post(f"/api/v1/transcripts/{transcript_id}/speakers/S1/confirm", json={})
        assert confirmed.status_code == 200, confirmed.text
        doc = http.get(f"/api/v1/transcripts/{transcript_id}").json()
        assert {s["id"]: s["display_name"] for s in doc["speakers"]} == {"S1": "Agent", "S2": None}
        assert doc["revision"] == 2  # an edit like any other
        assert http.get(base).json()["profiles"][0]["samples"] == 2

        no_consent = http.post(f"/api/v1/transcripts/{transcript_id}/speakers/S2/enrol", json={"name": "Caller"})
        assert no_consent.status_code == 400 and "consent" in no_consent.json()["detail"]
        enrolled = http.post(
            f"/api/v1/transcripts/{transcript_id}/speakers/S2/enrol",
            json={"name": "Caller", "consent_note": "Caller, on the call"},
        )
        assert enrolled.status_code == 200, enrolled.text
        listed = {p["name"]: p for p in http.get(base).json()["profiles"]}
        assert set(listed) == {"Agent", "Caller"}

        renamed = http.patch(f"/api/v1/voice-profiles/{listed['Caller']['id']}", json={"name": ""})
        assert renamed.status_code == 400
        profile_blob = "SELECT embedding FROM voice_profile_embeddings WHERE profile_id = ?"
        agent_blob = _blobs(settings, profile_blob, [listed["Agent"]["id"]])[0]
        caller_blob = _blobs(settings, profile_blob, [listed["Caller"]["id"]])[0]
        speaker_blobs = _blobs(settings, "SELECT embedding FROM transcript_voices WHERE transcript_id = ?", [transcript_id])
        data_dir = settings.storage.data_dir
        assert _files_containing(data_dir, agent_blob)  # the scan can see an embedding
        # Agent's voice is the mean of the enrolment recording and the confirmed speaker: its bytes are
        # the profile's alone. Caller's is the transcript speaker's voice itself, kept there too.
        assert http.delete(f"/api/v1/voice-profiles/{listed['Agent']['id']}").status_code == 200
        assert http.delete(f"/api/v1/voice-profiles/{listed['Caller']['id']}").status_code == 200
        assert http.get(base).json()["profiles"] == []
        assert _files_containing(data_dir, agent_blob) == []
        assert http.delete(f"/api/v1/transcripts/{transcript_id}").status_code in {200, 204}
        for blob in [caller_blob, *speaker_blobs]:
            assert _files_containing(data_dir, blob) == []


@pytest.mark.parametrize("on", [False, True])
def test_no_voice_is_stored_unless_an_administrator_turned_profiles_on(tmp_path: Path, speech_bytes: bytes, on: bool) -> None:
    env = {"APPLIANCE_DIARIZATION__VOICE_PROFILES": "true"} if on else {}
    settings = settings_in(tmp_path, **env)
    with running(settings, recognizer=FakeRecognizer()) as http:
        transcript_id = _diarized_job(http, speech_bytes)
        ws = _workspace(http)
        enrol = http.post(
            f"/api/v1/transcripts/{transcript_id}/speakers/S1/enrol", json={"name": "Ann", "consent_note": "Ann, today"}
        )
        listing = http.get(f"/api/v1/workspaces/{ws}/voice-profiles").json()
        privacy = http.get("/privacy").text
    kept = _blobs(settings, "SELECT embedding FROM transcript_voices", [])
    assert len(kept) == (1 if on else 0)
    assert listing["enabled"] is on
    assert enrol.status_code == (200 if on else 409), enrol.text
    assert "biometric data" in privacy and ("<strong>turned on</strong>" if on else "<strong>turned off</strong>") in privacy
    if not on:
        assert "turned off" in enrol.json()["detail"]


def test_viewers_see_profiles_but_cannot_enrol_or_delete(tmp_path: Path, speech_bytes: bytes) -> None:
    settings = settings_in(tmp_path, APPLIANCE_DIARIZATION__VOICE_PROFILES="true")
    world = Scenario(settings)
    owner = world.person(ADMIN_EMAIL, role="admin", scope="admin")
    viewer = world.person("vic@example.org", role="member")
    member = world.person("meg@example.org", role="member")
    ws = world.workspace("Team", owner, {viewer.id: "viewer", member.id: "member"})
    outsider = world.person("out@example.org", role="member")
    world.close()
    with world.serve(FakeRecognizer()) as server:

        def client(who: object) -> httpx.Client:
            return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {who.key}"}, timeout=120)  # type: ignore[attr-defined]

        wav = speak(
            tmp_path / "meg.wav",
            "Good afternoon everyone, this is a short recording of my voice for the team.",
            "en+f3",
            pitch=60,
        )
        with client(member) as meg, client(viewer) as vic, client(outsider) as out, client(owner) as boss:
            base = f"/api/v1/workspaces/{ws}/voice-profiles"
            made = meg.post(base, params={"name": "Meg", "consent_note": "Meg, 3 Dec"}, content=wav.read_bytes())
            assert made.status_code == 201, made.text
            pid = made.json()["id"]
            assert [p["name"] for p in vic.get(base).json()["profiles"]] == ["Meg"]
            assert vic.get(base).json()["can_enrol"] is False
            assert vic.post(base, params={"name": "V", "consent_note": "V"}, content=wav.read_bytes()).status_code == 403
            assert vic.delete(f"/api/v1/voice-profiles/{pid}").status_code == 403
            assert out.get(base).status_code == 404 and out.delete(f"/api/v1/voice-profiles/{pid}").status_code == 404
            assert boss.patch(f"/api/v1/voice-profiles/{pid}", json={"name": "Meg R."}).json()["name"] == "Meg R."
            assert meg.delete(f"/api/v1/voice-profiles/{pid}").status_code == 200
