"""Private transcripts on the server side, without a browser (the Python oracle plays the browser):
exports and plain links refuse them, the data export carries their envelopes, conversion deletes the old
plaintext from the file, teammates open what was shared with them, encrypted links lose their server
copy on revocation, expiry and the last view, search never returns them, and `remote transcribe --private`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.app import privacy
from appliance.core.config import Settings
from appliance.core.db import connect
from appliance.private import crypto as pc
from appliance.transcription.asr import AsrResult, Segment, Word
from appliance.transcripts import store as transcripts
from tests.support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    FakeRecognizer,
    Scenario,
    settings_in,
    signed_in,
    wait_for_job,
)

PASSWORD = "a private passphrase"
CANARY = "Turquoise walruses recited sonnets beneath Reykjavik harbour"
CANARY_NEEDLES = [w.encode() for w in ("walruses", "Reykjavik", "sonnets")]


@dataclass
class Person:
    uid: str
    http: httpx.Client
    enrolment: pc.Enrolment | None = None


@dataclass
class World:
    url: str
    settings: Settings
    alice: Person
    bob: Person  # member of Team, private transcripts on
    carol: Person  # member of Team, private transcripts off
    mallory: Person  # not in Team
    team: str


def _person(url: str, key: str) -> Person:
    http = httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"})
    return Person(http.get("/api/v1/me").json()["user"]["id"], http)


def _enrol(person: Person) -> None:
    """As the account page does it: in a signed-in session (an API key below admin scope may not)."""
    person.enrolment = pc.enrol(PASSWORD, person.uid)
    email = person.http.get("/api/v1/me").json()["user"]["email"]
    with closing(signed_in(str(person.http.base_url), email)) as session:
        response = session.put("/api/v1/me/private-keys", json={**person.enrolment.record, "current_password": ADMIN_PASSWORD})
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("private-sharing")
    scenario = Scenario(settings_in(root))
    settings = scenario.settings
    alice = scenario.person(ADMIN_EMAIL, role="admin", scope="admin")
    cast = {name: scenario.person(f"{name}@example.org") for name in ("bob", "carol", "mallory")}
    keys = {name: m.key for name, m in cast.items()}
    team = scenario.workspace("Team", alice, {cast["bob"].id: "member", cast["carol"].id: "member"})
    scenario.close()
    with scenario.serve(FakeRecognizer()) as server:
        w = World(
            server.url,
            settings,
            _person(server.url, alice.key),
            _person(server.url, keys["bob"]),
            _person(server.url, keys["carol"]),
            _person(server.url, keys["mallory"]),
            team,
        )
        _enrol(w.alice)
        _enrol(w.bob)
        yield w
        for p in (w.alice, w.bob, w.carol, w.mallory):
            p.http.close()


def _private_job(w: World, speech_bytes: bytes) -> str:
    job = w.alice.http.post(
        "/api/v1/transcriptions",
        params={"workspace_id": w.team},
        files={"file": ("a.wav", speech_bytes, "audio/wav")},
        data={"private": "true"},
    )
    return str(wait_for_job(w.alice.http.get, job.json()["job_id"])["transcript_id"])


def _tk(person: Person, tid: str) -> bytes:
    """The owner's transcript key, as the browser gets it (sealed by the worker, or wrapped under DK)."""
    assert person.enrolment is not None
    stored = person.http.get(f"/api/v1/transcripts/{tid}/envelope").json()
    if stored["kind"] == "tk-sealed":
        return pc.unseal_with_private_key(person.enrolment.private_key, stored["key_envelope"], person.uid, tid)
    return pc.unwrap_transcript_key(person.enrolment.dk, stored["key_envelope"], person.uid, tid)


def _raw(settings: Settings) -> bytes:
    path = settings.storage.database_path
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_server_exports_and_plain_links_refuse_private_transcripts(world: World, speech_bytes: bytes) -> None:
    w = world
    tid = _private_job(w, speech_bytes)
    single = w.alice.http.get(f"/api/v1/transcripts/{tid}/export", params={"format": "txt"})
    assert single.status_code == 409 and "private" in single.json()["detail"]
    bulk = w.alice.http.post("/api/v1/transcripts/export", json={"ids": [tid], "formats": ["txt"]})
    assert bulk.status_code == 409
    plain = w.alice.http.post(f"/api/v1/transcripts/{tid}/shares", json={})
    assert plain.status_code == 409 and "encrypted link" in plain.json()["detail"]

    # The data export: the envelopes as they are (with the wrapped keys), never an empty transcript that looks complete.
    archive = zipfile.ZipFile(io.BytesIO(w.alice.http.get("/api/v1/me/export").content))
    names = archive.namelist()
    assert "private-keys.json" in names
    private_files = [n for n in names if n.endswith(".private.json")]
    assert len(private_files) == 1 and not any(
        n.startswith(private_files[0][: -len(".private.json")] + ".") and n.endswith(".txt") for n in names
    )
    exported = json.loads(archive.read(private_files[0]))
    assert exported["envelopes"]["transcript_id"] == tid and "segments" not in exported
    assert pc.open_transcript(_tk(w.alice, tid), exported["envelopes"]["body"], w.alice.uid, tid)["text"] == "hello world"


def test_search_and_listing_never_return_private_rows(world: World, speech_bytes: bytes) -> None:
    w = world
    tid = _private_job(w, speech_bytes)
    standard = wait_for_job(
        w.alice.http.get,
        w.alice.http.post("/api/v1/transcriptions", files={"file": ("b.wav", speech_bytes, "audio/wav")}).json()["job_id"],
    )["transcript_id"]
    found = w.alice.http.get("/api/v1/search", params={"q": "hello"}).json()
    ids = {item["transcript_id"] for item in found["items"]}
    assert standard in ids and tid not in ids
    # What the browser decrypts to search: the private transcripts my keys open, nobody else's.
    mine = {t["id"] for t in w.alice.http.get("/api/v1/private/transcripts").json()}
    assert tid in mine and standard not in mine
    assert tid not in {t["id"] for t in w.bob.http.get("/api/v1/private/transcripts").json()}
    assert w.mallory.http.get("/api/v1/private/transcripts").json() == []


def test_sharing_with_a_teammate(world: World, speech_bytes: bytes) -> None:
    w = world
    tid = _private_job(w, speech_bytes)
    recipients = w.alice.http.get(f"/api/v1/transcripts/{tid}/recipients").json()
    assert [r["user_id"] for r in recipients] == [w.bob.uid]  # carol has no keys; mallory is not in the workspace
    bob_key = pc.b64u_decode(recipients[0]["public_key"])
    tk = _tk(w.alice, tid)
    grant = pc.seal_to_public_key(bob_key, tk, w.bob.uid, tid)

    # A grant must be sealed to the recipient for this transcript; only the owner stores it.
    wrong_uid = pc.seal_to_public_key(bob_key, tk, w.carol.uid, tid)
    assert w.alice.http.put(f"/api/v1/transcripts/{tid}/grants/{w.bob.uid}", json={"key_envelope": wrong_uid}).status_code == 400
    to_carol = pc.seal_to_public_key(bob_key, tk, w.carol.uid, tid)
    assert w.alice.http.put(f"/api/v1/transcripts/{tid}/grants/{w.carol.uid}", json={"key_envelope": to_carol}).status_code == 400
    assert w.alice.http.put(f"/api/v1/transcripts/{tid}/grants/{w.mallory.uid}", json={"key_envelope": grant}).status_code == 400
    assert w.bob.http.put(f"/api/v1/transcripts/{tid}/grants/{w.bob.uid}", json={"key_envelope": grant}).status_code == 403
    assert w.bob.http.get(f"/api/v1/transcripts/{tid}/envelope").json()["kind"] == "none"
    assert w.alice.http.put(f"/api/v1/transcripts/{tid}/grants/{w.bob.uid}", json={"key_envelope": grant}).status_code == 200

    stored = w.bob.http.get(f"/api/v1/transcripts/{tid}/envelope").json()
    assert stored["kind"] == "tk-sealed" and stored["key_uid"] == w.bob.uid and stored["user_id"] == w.alice.uid
    assert w.bob.enrolment is not None
    bob_tk = pc.unseal_with_private_key(w.bob.enrolment.private_key, stored["key_envelope"], w.bob.uid, tid)
    assert pc.open_transcript(bob_tk, stored["body"], w.alice.uid, tid)["text"] == "hello world"
    assert tid in {t["id"] for t in w.bob.http.get("/api/v1/private/transcripts").json()}
    # Read only for the recipient; invisible to someone outside the workspace.
    assert (
        w.bob.http.put(
            f"/api/v1/transcripts/{tid}/envelope/body", json={"body": stored["body"], "base_revision": stored["revision"]}
        ).status_code
        == 403
    )
    assert w.mallory.http.get(f"/api/v1/transcripts/{tid}/envelope").status_code == 404
    assert w.alice.http.delete(f"/api/v1/transcripts/{tid}/grants/{w.bob.uid}").status_code == 204
    assert w.bob.http.get(f"/api/v1/transcripts/{tid}/envelope").json()["kind"] == "none"


def _sealed_link(w: World, tid: str, **options: Any) -> tuple[dict[str, Any], bytes]:
    link = w.alice.http.post(f"/api/v1/transcripts/{tid}/sealed-shares", json=options).json()
    sk = bytes(range(32))
    envelope = pc.seal_share(sk, {"title": "Snapshot", "segments": []}, link["id"])
    assert w.alice.http.put(f"/api/v1/shares/{link['id']}/envelope", json={"envelope": envelope}).status_code == 200
    return link, sk


def _stored_snapshot(w: World, link_id: str) -> Any:
    db = connect(w.settings.storage.database_path)
    try:
        return db.execute("SELECT envelope FROM share_links WHERE id = ?", [link_id]).fetchone()[0]
    finally:
        db.conn.close()


def test_encrypted_links_lose_their_server_copy(world: World, speech_bytes: bytes) -> None:
    w = world
    tid = _private_job(w, speech_bytes)
    anonymous = httpx.Client(base_url=w.url)
    link, sk = _sealed_link(w, tid)
    other = pc.seal_share(sk, {"segments": []}, "anotherlinkid")
    assert w.alice.http.put(f"/api/v1/shares/{link['id']}/envelope", json={"envelope": other}).status_code == 400  # once only
    page = anonymous.get(link["path"])
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store" and "share-view-0.3.js" in page.text
    got = anonymous.get(f"{link['path']}/snapshot").json()
    assert got["sid"] == link["id"] and pc.open_share(sk, got["envelope"], got["sid"])["title"] == "Snapshot"
    assert anonymous.get(f"{link['path']}/export", params={"format": "txt"}).status_code == 404
    assert w.alice.http.delete(f"/api/v1/shares/{link['id']}").status_code == 204
    assert anonymous.get(f"{link['path']}/snapshot").status_code == 404 and _stored_snapshot(w, link["id"]) is None

    # A view limit: the last view takes the only copy.
    once, _ = _sealed_link(w, tid, max_views=1)
    assert anonymous.get(f"{once['path']}/snapshot").status_code == 200
    assert anonymous.get(f"{once['path']}/snapshot").status_code == 404 and _stored_snapshot(w, once["id"]) is None

    # Expiry: past it, the copy is deleted at the first request.
    old, _ = _sealed_link(w, tid, expires_in_days=1)
    db = connect(w.settings.storage.database_path)
    db.execute("UPDATE share_links SET expires_at = '2000-01-01T00:00:00.000Z' WHERE id = ?", [old["id"]])
    db.conn.commit()
    db.conn.close()
    assert anonymous.get(f"{old['path']}/snapshot").status_code == 410 and _stored_snapshot(w, old["id"]) is None
    # ... and retention deletes it even if nobody asks again.
    unopened, _ = _sealed_link(w, tid, expires_in_days=1)
    db = connect(w.settings.storage.database_path)
    db.execute("UPDATE share_links SET expires_at = '2000-01-01T00:00:00.000Z' WHERE id = ?", [unopened["id"]])
    db.conn.commit()
    assert privacy.apply_retention(db, request_log_days=90, transcript_days=0)["link_snapshots"] == 1
    db.conn.close()
    assert _stored_snapshot(w, unopened["id"]) is None

    # The workspace's policy covers encrypted links too.
    assert w.alice.http.put(f"/api/v1/workspaces/{w.team}/policy", json={"allow_public_links": False}).status_code == 200
    assert w.alice.http.post(f"/api/v1/transcripts/{tid}/sealed-shares", json={}).status_code == 403
    assert w.alice.http.put(f"/api/v1/workspaces/{w.team}/policy", json={"allow_public_links": True}).status_code == 200
    anonymous.close()


def test_converting_to_private_deletes_the_plaintext_from_the_file(world: World) -> None:
    w = world
    db = connect(w.settings.storage.database_path)
    words = [Word(i * 0.5, i * 0.5 + 0.4, " " + t, 0.9) for i, t in enumerate(CANARY.split())]
    result = AsrResult([Segment(0.0, 4.0, CANARY, words)], "en", 1.0, 5.0, 0.1)
    tid = transcripts.store(
        db,
        result,
        job_id=None,
        filename="c.wav",
        size_bytes=10,
        model="tiny.en",
        options={},
        timings={},
        user_id=w.alice.uid,
        workspace_id=w.team,
    )
    db.conn.close()
    assert all(n in _raw(w.settings) for n in CANARY_NEEDLES)  # positive control: the scan can see it
    doc = w.alice.http.get(f"/api/v1/transcripts/{tid}").json()
    assert w.alice.enrolment is not None
    tk = bytes(32)
    key_envelope = pc.wrap_transcript_key(w.alice.enrolment.dk, tk, w.alice.uid, tid)
    body = pc.seal_transcript(tk, doc, w.alice.uid, tid)

    url = f"/api/v1/transcripts/{tid}/convert-to-private"
    change = {"key_envelope": key_envelope, "body": body, "base_revision": doc["revision"]}
    assert w.alice.http.post(url, json={**change, "base_revision": doc["revision"] + 1}).status_code == 409
    other = pc.seal_transcript(tk, doc, w.alice.uid, "anothertranscript")
    assert w.alice.http.post(url, json={**change, "body": other}).status_code == 400
    assert w.bob.http.post(url, json=change).status_code == 403  # a member who did not create it
    assert w.carol.http.post(url, json=change).status_code == 403
    done = w.alice.http.post(url, json=change)
    assert done.status_code == 200 and done.json()["revision"] == doc["revision"] + 1
    assert w.alice.http.post(url, json={**change, "base_revision": doc["revision"] + 1}).status_code == 400  # private already

    raw = _raw(w.settings)
    assert not any(n in raw for n in CANARY_NEEDLES), "the old plaintext is still in the database file or its WAL"
    after = w.alice.http.get(f"/api/v1/transcripts/{tid}").json()
    assert after["private"] is True and after["text"] == "" and after["segments"] == [] and after["speakers"] == []
    assert w.alice.http.get("/api/v1/search", params={"q": "walruses"}).json()["total"] == 0
    stored = w.alice.http.get(f"/api/v1/transcripts/{tid}/envelope").json()
    assert stored["kind"] == "tk" and CANARY in pc.open_transcript(tk, stored["body"], w.alice.uid, tid)["text"]


def test_remote_transcribe_private(world: World, speech_wav: Path, tmp_path: Path) -> None:
    w = world
    key = w.alice.http.headers["Authorization"].split()[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance.cli",
            "remote",
            "transcribe",
            str(speech_wav),
            "--url",
            w.url,
            "--api-key",
            key,
            "--private",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "private transcript" in result.stdout and f"{w.url}/t/" in result.stdout
    tid = result.stdout.strip().rsplit("/t/", 1)[1]
    assert w.alice.http.get(f"/api/v1/transcripts/{tid}").json()["private"] is True
    assert (
        pc.open_transcript(
            _tk(w.alice, tid), w.alice.http.get(f"/api/v1/transcripts/{tid}/envelope").json()["body"], w.alice.uid, tid
        )["text"]
        == "hello world"
    )
