"""Delete my account, export my data, retention, and logs that never hold content."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx

from appliance.accounts import audit
from appliance.accounts import users as accounts
from appliance.app import privacy
from appliance.core import migrations
from appliance.core.config import Settings, load
from appliance.core.db import connect
from appliance.transcription.asr import AsrResult, Segment, Word
from appliance.transcripts import store as transcripts
from tests.support import ADMIN_PASSWORD, FakeRecognizer, LiveServer, bootstrap

CANARY = "purple-elephant-7731-canary"


def _store(db, user, text: str, filename: str = f"{CANARY}.wav") -> str:  # type: ignore[no-untyped-def]
    words = [Word(i * 0.5, i * 0.5 + 0.4, f" {w}", 0.9) for i, w in enumerate(text.split())]
    result = AsrResult([Segment(0.0, len(words) * 0.5, text, words)], "en", 1.0, 5.0, 0.1)
    return transcripts.store(
        db,
        result,
        job_id=None,
        filename=filename,
        size_bytes=1,
        model="tiny.en",
        options={},
        timings={},
        user_id=user.id,
        workspace_id=user.personal_workspace_id,
    )


def _files_containing(folder: Path, needle: bytes) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_delete_my_account_leaves_no_trace(settings: Settings) -> None:
    from appliance.web.app import create_app

    db = connect(settings.storage.database_path)
    migrations.apply(db)
    bob = accounts.create(db, "bob@example.org", ADMIN_PASSWORD, "member")
    keep = accounts.create(db, "alice@example.org", ADMIN_PASSWORD, "admin")
    for i in range(3):
        _store(db, bob, f"the {CANARY} said item {i} in confidence zephyrwombat")
    kept = _store(db, keep, "alice keeps this one", filename="alice.wav")
    db.conn.close()
    data_dir = settings.storage.data_dir
    assert _files_containing(data_dir, CANARY.encode()) and _files_containing(data_dir, b"zephyrwombat")  # the check can see them
    with LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server, httpx.Client(base_url=server.url) as client:
        csrf = client.post("/api/v1/auth/login", json={"email": "bob@example.org", "password": ADMIN_PASSWORD}).json()[
            "csrf_token"
        ]
        wrong = client.request("DELETE", "/api/v1/me", json={"password": "not my password"}, headers={"X-CSRF-Token": csrf})
        assert wrong.status_code == 400
        gone = client.request("DELETE", "/api/v1/me", json={"password": ADMIN_PASSWORD}, headers={"X-CSRF-Token": csrf})
        assert gone.status_code == 200
        assert client.get("/api/v1/me").status_code == 401
        assert _files_containing(data_dir, CANARY.encode()) == []
        # Every word, the search index's term lists included (a single word, as the index stores it).
        assert _files_containing(data_dir, b"zephyrwombat") == []
        # The e-mail is gone too (the audit log keeps the events under a pseudonym)...
        assert _files_containing(data_dir, b"bob@example.org") == []
        # ...until someone tries to sign in with it again: that attempt is a new, logged event.
        assert client.post("/api/v1/auth/login", json={"email": "bob@example.org", "password": ADMIN_PASSWORD}).status_code == 401
    db = connect(settings.storage.database_path)
    assert transcripts.get(db, kept) is not None  # other users' data untouched


def test_export_my_data_zip(settings: Settings) -> None:
    from appliance.web.app import create_app

    db = connect(settings.storage.database_path)
    migrations.apply(db)
    bob = accounts.create(db, "bob@example.org", ADMIN_PASSWORD, "member")
    ids = [_store(db, bob, "first words here"), _store(db, bob, "second words there")]
    db.conn.close()
    with LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server, httpx.Client(base_url=server.url) as client:
        client.post("/api/v1/auth/login", json={"email": "bob@example.org", "password": ADMIN_PASSWORD})
        response = client.get("/api/v1/me/export")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert "account.json" in names
    assert json.loads(archive.read("account.json"))["user"]["email"] == "bob@example.org"
    for transcript_id in ids:
        for fmt in ("json", "txt", "srt", "vtt"):
            assert any(n.endswith(f"{transcript_id[:8]}.{fmt}") for n in names), (transcript_id, fmt)
    docs = [json.loads(archive.read(n)) for n in names if n.endswith(".json") and n != "account.json"]
    assert sorted(d["text"] for d in docs) == ["first words here", "second words there"]


def test_retention_purges_old_logs_and_optional_old_transcripts(settings: Settings) -> None:
    db = connect(settings.storage.database_path)
    migrations.apply(db)
    bob = accounts.create(db, "bob@example.org", ADMIN_PASSWORD, "member")
    old, new = _store(db, bob, "an old meeting"), _store(db, bob, "a new meeting")
    db.execute("UPDATE transcripts SET created_at = '2020-01-01T00:00:00.000Z' WHERE id = ?", [old])
    db["request_log"].insert_all(
        [
            {"at": "2020-01-01T00:00:00.000Z", "method": "GET", "route": "/x", "status": 200},
            {"at": "2999-01-01T00:00:00.000Z", "method": "GET", "route": "/y", "status": 200},
        ]
    )
    off = privacy.apply_retention(db, request_log_days=90, transcript_days=0)
    assert off == {"request_log": 1, "audit_pseudonymised": 0, "sessions": 0, "transcripts": 0, "link_snapshots": 0}
    assert transcripts.get(db, old) is not None  # transcript auto-delete is off by default
    on = privacy.apply_retention(db, request_log_days=90, transcript_days=30)
    assert on["transcripts"] == 1
    assert transcripts.get(db, old) is None and transcripts.get(db, new) is not None


def test_request_and_audit_logs_hold_no_content(tmp_path: Path, speech_bytes: bytes) -> None:
    from appliance.web.app import create_app

    settings = load(None, {"APPLIANCE_DATA_DIR": str(tmp_path)})
    key = bootstrap(settings)
    secret_name = "merger-with-acme-corp"
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        job = client.post(
            f"/api/v1/transcriptions?filename={secret_name}.wav&language=en",
            content=speech_bytes,
            headers={"content-type": "audio/wav"},
        ).json()
        import time

        for _ in range(100):
            done = client.get(f"/api/v1/jobs/{job['job_id']}").json()
            if done["state"] == "done":
                break
            time.sleep(0.05)
        client.delete(f"/api/v1/transcripts/{done['transcript_id']}")
    db = connect(settings.storage.database_path)
    routes = {r["route"] for r in db.query("SELECT route FROM request_log")}
    assert "/api/v1/transcriptions" in routes and "/api/v1/jobs/{job_id}" in routes
    everything = json.dumps(list(db.query("SELECT * FROM request_log"))) + json.dumps(audit.entries(db))
    assert secret_name not in everything and "hello world" not in everything
    assert any(e["action"] == "transcript.deleted" for e in audit.entries(db))


def test_old_audit_entries_lose_addresses_but_keep_their_events(settings: Settings) -> None:
    db = connect(settings.storage.database_path)
    migrations.apply(db)
    carol = accounts.create(db, "carol@example.org", ADMIN_PASSWORD, "member")
    audit.record(db, "sign_in", actor="carol@example.org", ip="192.0.2.57")
    audit.record(db, "sign_in.failed", actor="mallory-guess@example.net", ip="2001:db8:5:6::7")
    audit.record(
        db, "user.created", actor="carol@example.org", target="carol@example.org", detail={"invited": "carol@example.org"}
    )
    audit.record(db, "sign_in", actor="carol@example.org", ip="198.51.100.9")  # recent: stays as it is
    db.execute("UPDATE audit_log SET at = '2000-01-01T00:00:00.000Z' WHERE id <= 3")
    purged = privacy.apply_retention(db, request_log_days=90, transcript_days=0, audit_pseudonymise_days=90)
    assert purged["audit_pseudonymised"] == 3
    rows = list(db.query("SELECT actor, action, target, detail, ip FROM audit_log ORDER BY id"))
    assert rows[0] == {"actor": f"user:{carol.id}", "action": "sign_in", "target": None, "detail": None, "ip": "192.0.2.0/24"}
    assert rows[1]["actor"] == "(address removed)" and rows[1]["ip"] == "2001:db8:5::/48"
    assert rows[2]["target"] == f"user:{carol.id}" and json.loads(rows[2]["detail"]) == {"invited": f"user:{carol.id}"}
    assert rows[3]["actor"] == "carol@example.org" and rows[3]["ip"] == "198.51.100.9"
    # A second run changes nothing, and the old values are gone from the file and its WAL.
    assert privacy.apply_retention(db, request_log_days=90, transcript_days=0)["audit_pseudonymised"] == 0
    db.conn.close()
    data = settings.storage.data_dir
    for needle in (b"mallory-guess", b"192.0.2.57", b"2001:db8:5:6::7"):
        assert _files_containing(data, needle) == [], needle
