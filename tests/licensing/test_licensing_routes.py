"""Licence enforcement over HTTP: blocked states refuse new jobs and allow everything else; the
end-to-end activation with the real CLIs; the admin API and page."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.accounts import apikeys
from appliance.accounts import users as accounts
from appliance.core import migrations
from appliance.core.config import load
from appliance.core.db import connect
from appliance.licensing import licence as L
from appliance.licensing.store import LicenseStore
from appliance.transcription.asr import AsrResult, Segment, Word
from appliance.transcripts import store as transcripts
from tests.licensing_keys import TEST_KID, TEST_MACHINE_ID, TEST_PRIVATE, TEST_PUBLIC, TEST_TRUST
from tests.licensing_support import NOW, Clock, issue
from tests.support import ADMIN_PASSWORD, FakeRecognizer, LiveServer


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\x00\x01" * 16000)
    return buffer.getvalue()


def _setup(tmp_path: Path) -> tuple[Any, str, str, Path]:
    machine = tmp_path / "machine-id"
    machine.write_text(TEST_MACHINE_ID)
    settings = load(None, {"APPLIANCE_DATA_DIR": str(tmp_path / "data"), "APPLIANCE_LICENSING__MACHINE_ID_PATH": str(machine)})
    db = connect(settings.storage.database_path)
    migrations.apply(db)
    admin = accounts.create(db, "alice@example.org", ADMIN_PASSWORD, "admin")
    key, _ = apikeys.create(db, admin.id, "t", "admin")
    words = [Word(0.0, 0.5, " kept", 0.9)]
    transcript = transcripts.store(
        db,
        AsrResult([Segment(0.0, 0.5, "kept", words)], "en", 1.0, 1.0, 0.1),
        job_id=None,
        filename="a.wav",
        size_bytes=1,
        model="tiny.en",
        options={},
        timings={},
        user_id=admin.id,
        workspace_id=admin.personal_workspace_id,
    )
    db.conn.close()
    return settings, key, transcript, machine


def _state(tmp_path: Path, kind: str, settings: Any, machine: Path, clock: Clock) -> LicenseStore:
    s = LicenseStore(settings.storage.data_dir / "license", machine, trusted=TEST_TRUST, clock=clock, gpus=[])
    fp = L.fingerprint(machine, [])
    if kind == "none":
        s.state()  # evaluation starts now...
        clock.now = NOW + timedelta(days=30)  # ...and has ended
        return s
    nonce = s.request("K")["nonce"]
    if kind == "expired":
        s.install(issue(fp, nonce=nonce, expires_at=L.iso(NOW + timedelta(days=1)), grace_days=0))
        clock.now = NOW + timedelta(days=3)
    elif kind == "not_yet_valid":
        s.install(issue(fp, nonce=nonce, not_before=L.iso(NOW + timedelta(days=5))))
    elif kind == "clock_tampered":
        s.install(issue(fp, nonce=nonce))
        clock.now = NOW + timedelta(days=20)
        s.state()
        clock.now = NOW + timedelta(days=5)
    elif kind == "invalid":
        s.install(issue(fp, nonce=nonce))
        s.license_file.write_text("garbage")
    elif kind == "wrong_machine":
        s.install(issue(fp, nonce=nonce))
        machine.write_text("fedcba9876543210fedcba9876543210")
    elif kind == "valid":
        s.install(issue(fp, nonce=nonce))
    return s


@pytest.mark.parametrize("kind", ["expired", "not_yet_valid", "clock_tampered", "none", "invalid", "wrong_machine"])
def test_blocked_states_refuse_new_jobs_and_allow_everything_else(tmp_path: Path, kind: str) -> None:
    from appliance.web.app import create_app

    settings, key, transcript, machine = _setup(tmp_path)
    clock = Clock()
    store = _state(tmp_path, kind, settings, machine, clock)
    assert store.state().state == kind
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer(), licenses=store)) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        refused = client.post("/api/v1/transcriptions", files={"file": ("a.wav", _wav(), "audio/wav")})
        assert refused.status_code == 402, refused.text
        assert refused.json()["code"] == f"license_{kind}" and refused.json()["detail"]
        assert client.get(f"/api/v1/transcripts/{transcript}").json()["text"] == "kept"
        assert client.get(f"/api/v1/transcripts/{transcript}/export", params={"format": "srt"}).status_code == 200
        assert client.get("/api/v1/transcripts").json()["total"] == 1
        assert client.get("/api/v1/license").json()["state"] == kind
        assert client.get("/healthz").status_code == 200
        assert client.delete(f"/api/v1/transcripts/{transcript}").status_code == 204
        assert client.get("/api/v1/me/export").status_code == 200


def test_valid_licence_limits_users_and_features(tmp_path: Path) -> None:
    from appliance.web.app import create_app

    settings, key, _transcript, machine = _setup(tmp_path)
    store = LicenseStore(settings.storage.data_dir / "license", machine, trusted=TEST_TRUST, clock=Clock(), gpus=[])
    nonce = store.request("K")["nonce"]
    store.install(issue(L.fingerprint(machine, []), nonce=nonce, features=["api"], limits={"max_users": 2}))
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer(), licenses=store)) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        assert client.post("/api/v1/users", json={"email": "b@example.org", "password": ADMIN_PASSWORD}).status_code == 201
        third = client.post("/api/v1/users", json={"email": "c@example.org", "password": ADMIN_PASSWORD})
        assert third.status_code == 403 and "allows 2 users" in third.json()["detail"]
        no_diarization = client.post(
            "/api/v1/transcriptions", files={"file": ("a.wav", _wav(), "audio/wav")}, data={"diarize": "true"}
        )
        assert no_diarization.status_code == 403 and no_diarization.json()["code"] == "feature_not_licensed"
        assert client.post("/api/v1/transcriptions", files={"file": ("a.wav", _wav(), "audio/wav")}).status_code == 202


def _trusting_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real `appliance` CLI in a subprocess whose trust map is the test key's (patched code, as
    only someone who can edit the program could do; production reads no key from outside the code)."""
    code = (
        "import sys, appliance.licensing.licence as L; L.TRUSTED_KEYS = "
        + json.dumps(TEST_TRUST)
        + "; from appliance.cli import app; sys.argv = ['appliance'] + sys.argv[1:]; app()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_end_to_end_request_issue_install_transcribe(tmp_path: Path) -> None:
    from appliance.web.app import create_app

    settings, key, _transcript, machine = _setup(tmp_path)
    env = {"APPLIANCE_DATA_DIR": str(settings.storage.data_dir), "APPLIANCE_LICENSING__MACHINE_ID_PATH": str(machine)}
    request = tmp_path / "activation-request.json"
    made = _trusting_cli("license", "request", "--key", "ORDER-42", "--out", str(request), env=env)
    assert made.returncode == 0, made.stderr
    vendor_key = tmp_path / "vendor.pem"
    from cryptography.hazmat.primitives import serialization

    vendor_key.write_bytes(
        TEST_PRIVATE.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"vendor passphrase"),
        )
    )
    licence = tmp_path / "license.lic"
    ledger = tmp_path / "ledger.json"
    vendor = [
        sys.executable,
        "-m",
        "appliance.licensing.vendor",
        "issue",
        "--request",
        str(request),
        "--key",
        str(vendor_key),
        "--kid",
        TEST_KID,
        "--customer",
        "St. Example Hospital",
        "--out",
        str(licence),
        "--ledger",
        str(ledger),
        "--seats",
        "1",
        "--days",
        "365",
        "--limits",
        "max_users=10",
        "--passphrase-stdin",
    ]
    issued = subprocess.run(vendor, input="vendor passphrase\n", capture_output=True, text=True, timeout=120)
    assert issued.returncode == 0, issued.stderr
    installed = _trusting_cli("license", "install", str(licence), env=env)
    assert installed.returncode == 0 and "installed: valid" in installed.stdout, installed.stdout + installed.stderr
    status = _trusting_cli("license", "status", "--json", env=env)
    assert json.loads(status.stdout)["customer"] == "St. Example Hospital"
    # The production CLI (built-in trust map only) refuses the test-signed file.
    plain = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "license", "install", str(licence)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.returncode == 1 and "key this appliance does not know" in plain.stderr
    # A second machine with the same licence key: the ledger refuses a second seat.
    other = tmp_path / "other-machine-id"
    other.write_text("fedcba9876543210fedcba9876543210")
    request2 = tmp_path / "request2.json"
    _trusting_cli(
        "license",
        "request",
        "--key",
        "ORDER-42",
        "--out",
        str(request2),
        env={**env, "APPLIANCE_DATA_DIR": str(tmp_path / "data2"), "APPLIANCE_LICENSING__MACHINE_ID_PATH": str(other)},
    )
    vendor2 = [a if a != str(request) else str(request2) for a in vendor]
    vendor2[vendor2.index(str(licence))] = str(tmp_path / "second.lic")
    refused = subprocess.run(vendor2, input="vendor passphrase\n", capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "already has 1 activation" in (refused.stderr + refused.stdout)
    # A transcription succeeds under the installed licence.
    store = LicenseStore(settings.storage.data_dir / "license", machine, trusted=TEST_TRUST, gpus=[])
    assert store.state().state == "valid"
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer(), licenses=store)) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        job = client.post("/api/v1/transcriptions", files={"file": ("a.wav", _wav(), "audio/wav")})
        assert job.status_code == 202
        from tests.support import wait_for_job

        assert wait_for_job(client.get, job.json()["job_id"])["state"] == "done"
    # The same licence file copied to another machine fails there.
    copied = LicenseStore(settings.storage.data_dir / "license", other, trusted=TEST_TRUST, gpus=[])
    assert copied.state().state == "wrong_machine"


def test_vendor_renew_and_inspect(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    machine = tmp_path / "mid"
    machine.write_text(TEST_MACHINE_ID)
    store = LicenseStore(tmp_path / "lic", machine, trusted=TEST_TRUST, gpus=[])
    nonce = store.request("K")["nonce"]
    old = tmp_path / "old.lic"
    old.write_text(
        issue(
            L.fingerprint(machine, []),
            nonce=nonce,
            issued_at=L.iso(datetime.now(UTC) - timedelta(days=1)),
            not_before=L.iso(datetime.now(UTC) - timedelta(days=1)),
            expires_at=L.iso(datetime.now(UTC) + timedelta(days=5)),
        )
    )
    store.install(old.read_text())
    key = tmp_path / "k.pem"
    key.write_bytes(
        TEST_PRIVATE.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"vendor passphrase"),
        )
    )
    new = tmp_path / "new.lic"
    renewed = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance.licensing.vendor",
            "renew",
            "--license",
            str(old),
            "--key",
            str(key),
            "--kid",
            TEST_KID,
            "--out",
            str(new),
            "--days",
            "365",
            "--passphrase-stdin",
        ],
        input="vendor passphrase\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert renewed.returncode == 0, renewed.stderr
    state = store.install(new.read_text())
    assert state.state == "valid" and state.days_left and state.days_left > 360
    shown = subprocess.run(
        [sys.executable, "-m", "appliance.licensing.vendor", "inspect", str(new)], capture_output=True, text=True, timeout=60
    )
    assert json.loads(shown.stdout)["serial"] == 2
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance.licensing.vendor",
            "renew",
            "--license",
            str(old),
            "--key",
            str(tmp_path / "nokey.pem"),
            "--kid",
            TEST_KID,
            "--out",
            str(tmp_path / "x.lic"),
            "--passphrase-stdin",
        ],
        input="x\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0 and "no private key file" in (missing.stderr + missing.stdout)
    keygen = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance.licensing.vendor",
            "keygen",
            "--out",
            str(tmp_path / "new.pem"),
            "--kid",
            "sotto-2027-1",
            "--passphrase-stdin",
        ],
        input="a very long passphrase\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert keygen.returncode == 0 and json.loads(keygen.stdout)["kid"] == "sotto-2027-1"
    assert (tmp_path / "new.pem").read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert TEST_PUBLIC  # the test key's public half is what the trusting stores use


def test_admin_licence_page_and_api(tmp_path: Path) -> None:
    from appliance.web.app import create_app

    settings, _key, _t, machine = _setup(tmp_path)
    store = LicenseStore(settings.storage.data_dir / "license", machine, trusted=TEST_TRUST, gpus=[])
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer(), licenses=store)) as server,
        httpx.Client(base_url=server.url) as browser,
    ):
        assert browser.get("/admin/license", follow_redirects=False).headers["location"].startswith("/login")
        csrf = browser.post("/api/v1/auth/login", json={"email": "alice@example.org", "password": ADMIN_PASSWORD}).json()[
            "csrf_token"
        ]
        page = browser.get("/admin/license")
        assert page.status_code == 200 and 'data-state="evaluation"' in page.text and "Evaluation copy" in page.text
        request = browser.post("/api/v1/license/request", json={"license_key": "K-9"}, headers={"X-CSRF-Token": csrf})
        assert request.status_code == 201 and "attachment" in request.headers["content-disposition"]
        nonce = request.json()["nonce"]
        bad = browser.post("/api/v1/license", content="nonsense", headers={"X-CSRF-Token": csrf, "content-type": "text/plain"})
        assert bad.status_code == 400 and bad.json()["extra"]["code"] == "armor"
        good = browser.post(
            "/api/v1/license",
            content=issue(
                L.fingerprint(machine, []),
                nonce=nonce,
                issued_at=L.iso(datetime.now(UTC)),
                not_before=L.iso(datetime.now(UTC)),
                expires_at=L.iso(datetime.now(UTC) + timedelta(days=10)),
            ),
            headers={"X-CSRF-Token": csrf, "content-type": "text/plain"},
        )
        assert good.status_code == 200 and good.json()["state"] == "expiring_soon"
        banner = browser.get("/admin/license").text
        assert 'class="banner license-expiring_soon"' in banner
        assert "expires in" in browser.get("/privacy").text


def test_an_admin_confirms_the_clock_on_the_licence_page_and_the_audit_log_says_so(tmp_path: Path) -> None:
    from appliance.web.app import create_app

    settings, key, _t, machine = _setup(tmp_path)
    clock = Clock(datetime.now(UTC))
    store = LicenseStore(settings.storage.data_dir / "license", machine, trusted=TEST_TRUST, clock=clock, gpus=[])
    clock.now += timedelta(days=40)
    store.state()  # the clock ran ahead for a while...
    clock.now -= timedelta(days=40)  # ...and was set right
    assert store.state().state == "clock_tampered"
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer(), licenses=store)) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as admin,
    ):
        wrong = admin.post("/api/v1/license/clock", json={"confirm_now": L.iso(clock.now + timedelta(days=2))})
        assert wrong.status_code == 409 and "does not agree" in wrong.json()["detail"]
        fixed = admin.post("/api/v1/license/clock", json={"confirm_now": L.iso(clock.now)})
        assert fixed.status_code == 200 and fixed.json()["license"]["state"] == "evaluation"
        assert admin.post("/api/v1/license/clock", json={"confirm_now": L.iso(clock.now)}).status_code == 409  # nothing to fix
        entry = admin.get("/api/v1/audit").json()[0]
        assert entry["action"] == "license.clock_corrected" and entry["actor"] == "alice@example.org"
        assert entry["detail"]["discarded_mark"] and entry["detail"]["corrected_to"]
