"""Private jobs end to end: a spoken canary sentence never reaches the database file, its WAL, the logs or
anything under the data directory, during the job or after; the owner's keys (Python oracle and the
browser module) open the result; key records, sign-in with the auth key, password change, re-wrap."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.client import SottoClient
from appliance.core.config import Settings, load
from appliance.core.db import connect
from appliance.private import crypto as pc
from tests.browser import chromium_page, in_crypto_module
from tests.private_support import CANARY, CANARY_WORDS, LogCapture, Scanner, needles
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, FakeRecognizer, LiveServer, bootstrap, signed_in, speak, wait_for_job

PASSWORD = "my private passphrase"


@pytest.fixture
def log_capture() -> Iterator[LogCapture]:
    handler = LogCapture()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # debug lines too: whatever any library would write if asked
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture(scope="module")
def canary_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speak(tmp_path_factory.mktemp("canary") / "canary.wav", CANARY).read_bytes()


def _enrol(http: httpx.Client, current: str = ADMIN_PASSWORD) -> tuple[str, pc.Enrolment]:
    uid = http.get("/api/v1/me").json()["user"]["id"]
    enrolment = pc.enrol(PASSWORD, uid)
    response = http.put("/api/v1/me/private-keys", json={**enrolment.record, "current_password": current})
    assert response.status_code == 201, response.text
    return uid, enrolment


def _open(http: httpx.Client, uid: str, tid: str, password: str = PASSWORD) -> dict[str, Any]:
    """What the browser does, with the oracle: key record → DK → private key → TK → document."""
    record = http.get("/api/v1/me/private-keys").json()
    stored = http.get(f"/api/v1/transcripts/{tid}/envelope").json()
    dk = pc.unwrap_data_key(pc.derive_keys(password, pc.KdfParams.from_json(record["kdf"])).kek, record["wrapped_dk"], uid)
    if stored["kind"] == "tk-sealed":
        tk = pc.unseal_with_private_key(
            pc.unwrap_private_key(dk, record["wrapped_private_key"], uid), stored["key_envelope"], uid, tid
        )
    else:
        tk = pc.unwrap_transcript_key(dk, stored["key_envelope"], uid, tid)
    return pc.open_transcript(tk, stored["body"], uid, tid)


def _settings(tmp_path: Path) -> Settings:
    (tmp_path / "m").mkdir(exist_ok=True)
    return load(None, {"APPLIANCE_DATA_DIR": str(tmp_path / "d"), "APPLIANCE_MODELS_DIR": str(tmp_path / "m")})


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, httpx.Client, Settings]]:
    from appliance.web.app import create_app

    settings = _settings(tmp_path)
    key = bootstrap(settings)
    with (
        LiveServer(create_app(settings)) as server,
        httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as http,
    ):
        yield server, http, settings


def test_canary_never_reaches_disk_or_logs_and_the_owner_can_read_it(
    live: tuple[LiveServer, httpx.Client, Settings], canary_wav: bytes, log_capture: LogCapture
) -> None:
    server, http, settings = live
    data_dir = settings.storage.data_dir
    refused = http.post("/api/v1/transcriptions", files={"file": ("call.wav", canary_wav, "audio/wav")}, data={"private": "true"})
    assert refused.status_code == 400 and "turn on private transcripts in your account first" in refused.text.lower()
    uid, _ = _enrol(http)

    with Scanner(data_dir, needles()) as scanner:
        response = http.post(
            "/api/v1/transcriptions", files={"file": ("call.wav", canary_wav, "audio/wav")}, data={"private": "true"}
        )
        assert response.status_code == 202, response.text
        job = wait_for_job(http.get, response.json()["job_id"])
        assert job["state"] == "done", job
        tid = job["transcript_id"]
        doc = http.get(f"/api/v1/transcripts/{tid}").json()
        listing = http.get("/api/v1/transcripts").text
        time.sleep(0.3)  # a few more samples after the job
    assert scanner.samples > 20 and {"appliance.db", "appliance.db-wal"} <= scanner.files_seen
    assert scanner.hits == set(), f"canary words on disk in {scanner.hits}"
    logged = "\n".join(log_capture.lines).lower()
    assert log_capture.lines and not any(w in logged for w in CANARY_WORDS)

    # The metadata row and the API: no text, no segments, marked private.
    assert doc["private"] is True and doc["text"] == "" and doc["segments"] == [] and doc["duration"] > 2
    assert not any(w in (str(doc) + listing).lower() for w in CANARY_WORDS)
    db = connect(settings.storage.database_path)
    try:
        assert db.execute("SELECT count(*) FROM segments WHERE transcript_id = ?", [tid]).fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH 'giraffe OR marseille'").fetchone()[0] == 0
    finally:
        db.conn.close()

    # The owner's keys open it: the Python oracle, then the browser module.
    opened = _open(http, uid, tid)
    assert opened["id"] == tid and all(w in opened["text"].lower() for w in ("giraffe", "marseille"))
    assert opened["segments"] and opened["segments"][0]["words"]
    record = http.get("/api/v1/me/private-keys").json()
    stored = http.get(f"/api/v1/transcripts/{tid}/envelope").json()
    with chromium_page(f"{server.url}/login") as page:
        browser = in_crypto_module(
            page,
            """
            const keys = await sc.unlock(arg.password, arg.record, arg.uid);
            const tk = await sc.transcriptKey(keys, arg.stored, arg.uid, arg.tid);
            return {text: (await sc.openTranscript(tk, arg.stored.body, arg.uid, arg.tid)).text,
                    rewrapped: await sc.rewrapSealedKey(keys, arg.stored.key_envelope, arg.uid, arg.tid)};
        """,
            {"password": PASSWORD, "record": record, "stored": stored, "uid": uid, "tid": tid},
        )
    assert browser["text"] == opened["text"]

    # The browser's re-wrap is stored, checked against the URL; the body is untouched.
    other = pc.seal(bytes(32), "tk", {"uid": uid, "tid": "someothertranscript"}, bytes(32))
    assert http.put(f"/api/v1/transcripts/{tid}/envelope/key", json={"key_envelope": other}).status_code == 400
    assert http.put(f"/api/v1/transcripts/{tid}/envelope/key", json={"key_envelope": stored["body"]}).status_code == 400
    assert http.put(f"/api/v1/transcripts/{tid}/envelope/key", json={"key_envelope": browser["rewrapped"]}).status_code == 200
    after = http.get(f"/api/v1/transcripts/{tid}/envelope").json()
    assert after["kind"] == "tk" and after["body"] == stored["body"]
    assert _open(http, uid, tid)["text"] == opened["text"]

    # Positive control: the same audio as a standard job does put the words in the file, so the scan can see them.
    plain = wait_for_job(
        http.get, http.post("/api/v1/transcriptions", files={"file": ("c.wav", canary_wav, "audio/wav")}).json()["job_id"]
    )
    assert plain["state"] == "done"
    assert Scanner(data_dir, needles()).scan(), "the scanner cannot see transcript text: the check above proves nothing"


def test_private_job_from_the_python_client(
    live: tuple[LiveServer, httpx.Client, Settings], canary_wav: bytes, tmp_path: Path
) -> None:
    server, http, _ = live
    uid, _ = _enrol(http)
    path = tmp_path / "dictation.wav"
    path.write_bytes(canary_wav)
    key = http.headers["Authorization"].split()[1]
    with SottoClient(server.url, key) as client:
        job = client.upload(path, private=True)
        done = client.wait(job["job_id"])
        assert client.transcript(done["transcript_id"]).text == ""
    assert "marseille" in _open(http, uid, done["transcript_id"])["text"].lower()


@pytest.fixture
def fake_live(settings: Settings) -> Iterator[tuple[LiveServer, httpx.Client]]:
    from appliance.web.app import create_app

    key = bootstrap(settings)
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server,
        httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as http,
    ):
        yield server, http


def _login(url: str, secret: str) -> int:
    with httpx.Client(base_url=url) as anonymous:
        return anonymous.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": secret}).status_code


def test_passphrase_change_keeps_every_envelope_byte_identical(
    fake_live: tuple[LiveServer, httpx.Client], speech_bytes: bytes
) -> None:
    server, http = fake_live
    uid, enrolment = _enrol(http)
    tids = []
    for _ in range(2):
        job = http.post("/api/v1/transcriptions", files={"file": ("a.wav", speech_bytes, "audio/wav")}, data={"private": "true"})
        tids.append(wait_for_job(http.get, job.json()["job_id"])["transcript_id"])
    before_record = http.get("/api/v1/me/private-keys").json()
    before = {t: http.get(f"/api/v1/transcripts/{t}/envelope").json() for t in tids}

    # Signing in is untouched: the password still signs in, and there is no pre-sign-in lookup any more
    # (it told anyone which addresses had private transcripts on).
    assert _login(server.url, ADMIN_PASSWORD) == 200
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.post("/api/v1/auth/kdf", json={"email": ADMIN_EMAIL}).status_code in {404, 405}
    assert before_record["scheme"] == "passphrase" and before_record["needs_new_passphrase"] is False

    change = pc.change_passphrase(PASSWORD, "the next passphrase", before_record, uid)
    url = "/api/v1/me/private-keys/passphrase"
    assert http.post(url, json={**change, "current_password": "wrong"}).status_code == 400
    weak = {**change, "kdf": {**change["kdf"], "iterations": 100_000}, "current_password": ADMIN_PASSWORD}
    assert http.post(url, json=weak).status_code == 400
    same = pc.change_passphrase(PASSWORD, ADMIN_PASSWORD, before_record, uid)  # the passphrase = the password
    refused = http.post(url, json={**same, "current_password": ADMIN_PASSWORD})
    assert refused.status_code == 400 and "not your sign-in password" in refused.json()["detail"]
    assert http.post(url, json={**change, "current_password": ADMIN_PASSWORD}).status_code == 200

    after_record = http.get("/api/v1/me/private-keys").json()
    for field in ("recovery_dk", "public_key", "wrapped_private_key"):
        assert after_record[field] == before_record[field]
    assert after_record["kdf"]["salt"] != before_record["kdf"]["salt"] and after_record["wrapped_dk"] == change["wrapped_dk"]
    for t in tids:
        assert http.get(f"/api/v1/transcripts/{t}/envelope").json() == before[t]  # byte-identical envelopes

    assert _login(server.url, ADMIN_PASSWORD) == 200  # a passphrase change is not a password change
    with pytest.raises(pc.CryptoRefused):
        _open(http, uid, tids[0], PASSWORD)
    assert _open(http, uid, tids[0], "the next passphrase")["text"] == "hello world"
    dk = pc.unwrap_data_key_with_recovery(pc.parse_recovery_key(enrolment.recovery_key), after_record["recovery_dk"], uid)
    stored = before[tids[1]]
    tk = pc.unseal_with_private_key(
        pc.unwrap_private_key(dk, after_record["wrapped_private_key"], uid), stored["key_envelope"], uid, tids[1]
    )
    assert pc.open_transcript(tk, stored["body"], uid, tids[1])["text"] == "hello world"
    # And the sign-in password changes on its own, without touching the keys.
    assert (
        http.post(
            "/api/v1/me/password", json={"current_password": ADMIN_PASSWORD, "new_password": "a brand new password"}
        ).status_code
        == 200
    )
    with closing(signed_in(server.url, ADMIN_EMAIL, "a brand new password")) as session:
        assert session.get("/api/v1/me/private-keys").json() == after_record
        assert _open(session, uid, tids[0], "the next passphrase")["text"] == "hello world"


def test_key_records_are_checked_without_keys(fake_live: tuple[LiveServer, httpx.Client]) -> None:
    _, http = fake_live
    assert http.get("/api/v1/me/private-keys").status_code == 404
    uid = http.get("/api/v1/me").json()["user"]["id"]
    good = pc.enrol(PASSWORD, uid).record
    other_user = pc.enrol(PASSWORD, "someoneelse").record
    bad_cases = {
        "weak iterations": {**good, "kdf": {**good["kdf"], "iterations": 100_000}},
        "short salt": {**good, "kdf": {**good["kdf"], "salt": pc.b64u_encode(bytes(8))}},
        "another user's data key": {**good, "wrapped_dk": other_user["wrapped_dk"]},
        "recovery key in the data key's place": {**good, "wrapped_dk": good["recovery_dk"]},
        "not a point": {**good, "public_key": pc.b64u_encode(b"\x04" + bytes(64))},
        "unknown version": {**good, "wrapped_dk": good["wrapped_dk"].replace('"v":1', '"v":2', 1)},
    }
    for why, record in bad_cases.items():
        response = http.put("/api/v1/me/private-keys", json={**record, "current_password": ADMIN_PASSWORD})
        assert response.status_code == 400, why
    assert http.put("/api/v1/me/private-keys", json={**good, "current_password": "wrong"}).status_code == 400
    # The passphrase may not be the sign-in password: the server receives that at every sign-in.
    same = pc.enrol(ADMIN_PASSWORD, uid).record
    refused = http.put("/api/v1/me/private-keys", json={**same, "current_password": ADMIN_PASSWORD})
    assert refused.status_code == 400 and "not your sign-in password" in refused.json()["detail"]
    assert http.get("/api/v1/me/private-keys").status_code == 404
    assert http.put("/api/v1/me/private-keys", json={**good, "current_password": ADMIN_PASSWORD}).status_code == 201
    assert http.put("/api/v1/me/private-keys", json={**good, "current_password": ADMIN_PASSWORD}).status_code == 409
    record = http.get("/api/v1/me/private-keys")
    assert record.headers["cache-control"] == "no-store" and record.json()["wrapped_dk"] == good["wrapped_dk"]
    assert _login(str(http.base_url), ADMIN_PASSWORD) == 200  # turning private transcripts on leaves signing in alone


def test_envelopes_are_for_the_owner_only(
    fake_live: tuple[LiveServer, httpx.Client], settings: Settings, speech_bytes: bytes
) -> None:
    from appliance.accounts import apikeys, workspaces
    from appliance.accounts import users as accounts

    server, http = fake_live
    uid, _ = _enrol(http)
    db = connect(settings.storage.database_path)
    bob = accounts.create(db, "bob@example.org", ADMIN_PASSWORD, "admin")
    me = accounts.by_email(db, ADMIN_EMAIL)
    assert me is not None
    team = workspaces.create(db, "Team", owner_id=me.id)
    workspaces.set_member(db, team, bob.id, "admin")
    bob_key = apikeys.create(db, bob.id, "t", "admin")[0]
    db.conn.close()
    job = http.post(
        "/api/v1/transcriptions",
        params={"workspace_id": team},
        files={"file": ("a.wav", speech_bytes, "audio/wav")},
        data={"private": "true"},
    )
    tid = wait_for_job(http.get, job.json()["job_id"])["transcript_id"]
    stored = http.get(f"/api/v1/transcripts/{tid}/envelope").json()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {bob_key}"}) as bob_http:
        assert bob_http.get(f"/api/v1/transcripts/{tid}/envelope").status_code == 200  # ciphertext only
        assert (
            bob_http.put(f"/api/v1/transcripts/{tid}/envelope/key", json={"key_envelope": stored["key_envelope"]}).status_code
            == 403
        )
        assert (
            bob_http.put(
                f"/api/v1/transcripts/{tid}/envelope/body", json={"body": stored["body"], "base_revision": stored["revision"]}
            ).status_code
            == 403
        )
    # The owner saves an edit made in the browser; a stale revision is refused.
    ok = http.put(f"/api/v1/transcripts/{tid}/envelope/body", json={"body": stored["body"], "base_revision": stored["revision"]})
    assert ok.status_code == 200 and ok.json()["revision"] == stored["revision"] + 1
    stale = http.put(
        f"/api/v1/transcripts/{tid}/envelope/body", json={"body": stored["body"], "base_revision": stored["revision"]}
    )
    assert stale.status_code == 409
    assert http.delete(f"/api/v1/transcripts/{tid}").status_code == 204
    assert http.get(f"/api/v1/transcripts/{tid}/envelope").status_code == 404
    db = connect(settings.storage.database_path)
    try:
        assert db.execute("SELECT count(*) FROM transcript_envelopes WHERE transcript_id = ?", [tid]).fetchone()[0] == 0
    finally:
        db.conn.close()
    standard = wait_for_job(
        http.get, http.post("/api/v1/transcriptions", files={"file": ("a.wav", speech_bytes, "audio/wav")}).json()["job_id"]
    )
    assert http.get(f"/api/v1/transcripts/{standard['transcript_id']}/envelope").status_code == 404
    assert uid


def test_an_administrators_reset_leaves_private_transcripts_alone_and_the_recovery_key_sets_a_new_passphrase(
    fake_live: tuple[LiveServer, httpx.Client], settings: Settings, speech_bytes: bytes
) -> None:
    from appliance.accounts import users as accounts

    server, http = fake_live
    db = connect(settings.storage.database_path)
    accounts.create(db, "erin@example.org", ADMIN_PASSWORD, "member")
    db.conn.close()
    # Erin uses the web UI: a signed-in session (a member's API key may not manage her keys).
    with closing(signed_in(server.url, "erin@example.org")) as erin_http:
        uid, enrolment = _enrol(erin_http)
        job = erin_http.post(
            "/api/v1/transcriptions", files={"file": ("a.wav", speech_bytes, "audio/wav")}, data={"private": "true"}
        )
        tid = wait_for_job(erin_http.get, job.json()["job_id"])["transcript_id"]
        before = erin_http.get(f"/api/v1/transcripts/{tid}/envelope").json()
        record = erin_http.get("/api/v1/me/private-keys").json()
    # Erin forgot her password; the administrator sets a temporary one. Her keys do not change, and her
    # passphrase still opens them.
    assert http.post(f"/api/v1/users/{uid}/password", json={"password": "temporary password"}).status_code == 200
    with closing(signed_in(server.url, "erin@example.org", "temporary password")) as erin_http:
        assert erin_http.get("/api/v1/me/private-keys").json() == record
        assert _open(erin_http, uid, tid, PASSWORD)["text"] == "hello world"
        # Then she forgets the passphrase as well: her recovery key opens the data key and a new passphrase
        # wraps it (what newPassphraseWithRecoveryKey does in the browser).
        dk = pc.unwrap_data_key_with_recovery(pc.parse_recovery_key(enrolment.recovery_key), record["recovery_dk"], uid)
        params = pc.KdfParams.new()
        change = {
            "kdf": params.to_json(),
            "wrapped_dk": pc.wrap_data_key(pc.derive_keys("erin's new passphrase", params).kek, dk, uid),
        }
        assert (
            erin_http.post(
                "/api/v1/me/private-keys/passphrase", json={**change, "current_password": "temporary password"}
            ).status_code
            == 200
        )
        assert erin_http.get(f"/api/v1/transcripts/{tid}/envelope").json() == before
        assert _open(erin_http, uid, tid, "erin's new passphrase")["text"] == "hello world"
        with pytest.raises(pc.CryptoRefused):
            _open(erin_http, uid, tid, PASSWORD)


def test_a_private_job_keeps_no_voice_even_with_voice_profiles_on(tmp_path: Path, speech_bytes: bytes) -> None:
    from appliance.web.app import create_app
    from tests.support import settings_in

    settings = settings_in(tmp_path, APPLIANCE_DIARIZATION__VOICE_PROFILES="true")
    key = bootstrap(settings)
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server,
        httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as http,
    ):
        _enrol(http)
        for private in ("true", "false"):
            job = http.post(
                "/api/v1/transcriptions",
                files={"file": ("a.wav", speech_bytes, "audio/wav")},
                data={"private": private, "diarize": "true"},
            )
            assert job.status_code == 202, job.text
            assert wait_for_job(http.get, job.json()["job_id"])["state"] == "done"
    with closing(connect(settings.storage.database_path).conn) as db:
        kept = db.execute("SELECT t.private FROM transcript_voices v JOIN transcripts t ON t.id = v.transcript_id").fetchall()
    assert kept == [(0,)]  # the ordinary job's speaker only
