"""Accounts that turned private transcripts on before they had a passphrase of their own: their keys were
wrapped under the sign-in password, which the server received at every sign-in. A database made by that
version (schema up to 0013, rows written exactly as it wrote them) is upgraded, and then: the old sign-in
still works (once more derived on the server, then replaced by the password's own hash), nothing opens
until the owner picks a passphrase, and the move to new keys re-wraps every transcript key, all or nothing,
with the old password, the old key pair and the old recovery key opening none of it afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from appliance.accounts import apikeys, workspaces
from appliance.accounts import users as accounts
from appliance.core import migrations
from appliance.core.config import Settings
from appliance.core.db import connect
from appliance.private import crypto as pc
from tests.support import (
    ADMIN_PASSWORD,
    FakeRecognizer,
    LiveServer,
    bootstrap,
    signed_in,
    wait_for_job,
)

CAROL, BOB = "carol@example.org", "bob@example.org"
CAROL_PASSWORD = "carol's old sign-in password"
NEW_PASSPHRASE = "carol's passphrase of its own"


def _old_way_enrolment(db: Any, user_id: str, password: str) -> pc.Enrolment:
    """What the first version stored: the key record wrapped under the password, and the password hash
    replaced by a hash of the auth key derived from it (the browser sent that key instead)."""
    enrolment = pc.enrol(password, user_id)
    auth_key = pc.derive_keys(password, pc.KdfParams.from_json(enrolment.record["kdf"])).auth_key_text
    db.execute(
        "INSERT INTO user_keys (user_id, kdf, wrapped_dk, recovery_dk, public_key, wrapped_private_key, "
        "signs_in_with_auth_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, '2026-01-05T10:00:00.000Z', '2026-01-05T10:00:00.000Z')",
        [
            user_id,
            json.dumps(enrolment.record["kdf"]),
            enrolment.record["wrapped_dk"],
            enrolment.record["recovery_dk"],
            enrolment.record["public_key"],
            enrolment.record["wrapped_private_key"],
        ],
    )
    db.execute("UPDATE users SET password_hash = ? WHERE id = ?", [PasswordHasher().hash(auth_key), user_id])
    db.conn.commit()
    return enrolment


@pytest.fixture
def upgraded(settings: Settings) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    from appliance.web.app import create_app

    db = connect(settings.storage.database_path)
    migrations.migrations.apply(db, stop_before="0014_private_passphrase")
    carol = accounts.create(db, CAROL, CAROL_PASSWORD, "member")
    bob = accounts.create(db, BOB, ADMIN_PASSWORD, "member")
    enrolment = _old_way_enrolment(db, carol.id, CAROL_PASSWORD)
    team = workspaces.create(db, "Team", owner_id=bob.id)
    workspaces.set_member(db, team, carol.id, "member")
    carol_key = apikeys.create(db, carol.id, "t", "transcribe")[0]
    db.conn.close()
    bootstrap(settings)  # the upgrade: every later migration runs
    db = connect(settings.storage.database_path)
    try:
        row = db.execute("SELECT scheme, signs_in_with_auth_key FROM user_keys WHERE user_id = ?", [carol.id]).fetchone()
    finally:
        db.conn.close()
    assert tuple(row) == ("sign-in-password", 1)
    with LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server:
        yield (
            server,
            {
                "carol": carol.id,
                "bob": bob.id,
                "team": team,
                "carol_key": carol_key,
                "enrolment": enrolment,
                "settings": settings,
            },
        )


def _private_job(http: httpx.Client, team: str, speech: bytes) -> str:
    job = http.post(
        "/api/v1/transcriptions",
        params={"workspace_id": team},
        files={"file": ("a.wav", speech, "audio/wav")},
        data={"private": "true"},
    )
    assert job.status_code == 202, job.text
    return str(wait_for_job(http.get, job.json()["job_id"])["transcript_id"])


def _change_both(session: httpx.Client, passphrase_change: dict[str, Any], new_password: str) -> tuple[int, int]:
    """A passphrase change, then a sign-in password change: their status codes."""
    passphrase = session.post(
        "/api/v1/me/private-keys/passphrase", json={**passphrase_change, "current_password": CAROL_PASSWORD}
    )
    password = session.post("/api/v1/me/password", json={"current_password": CAROL_PASSWORD, "new_password": new_password})
    return passphrase.status_code, password.status_code


def _open(dk: bytes, pkcs8: bytes, stored: dict[str, Any], uid: str, tid: str) -> Any:
    tk = (
        pc.unseal_with_private_key(pkcs8, stored["key_envelope"], uid, tid)
        if stored["kind"] == "tk-sealed"
        else pc.unwrap_transcript_key(dk, stored["key_envelope"], uid, tid)
    )
    return pc.open_transcript(tk, stored["body"], stored["user_id"], tid)


def test_old_way_account_signs_in_with_its_password_and_moves_to_new_keys(
    upgraded: tuple[LiveServer, dict[str, Any]], speech_bytes: bytes
) -> None:
    server, w = upgraded
    uid, old = w["carol"], w["enrolment"]
    # The password itself signs in (the server derives the old auth key once more), and only the password.
    old_auth = pc.derive_keys(CAROL_PASSWORD, pc.KdfParams.from_json(old.record["kdf"])).auth_key_text
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.post("/api/v1/auth/login", json={"email": CAROL, "password": old_auth}).status_code == 401
    carol = signed_in(server.url, CAROL, CAROL_PASSWORD)
    db = connect(w["settings"].storage.database_path)
    try:
        assert db.execute("SELECT signs_in_with_auth_key FROM user_keys WHERE user_id = ?", [uid]).fetchone()[0] == 0
        assert PasswordHasher().verify(
            db.execute("SELECT password_hash FROM users WHERE id = ?", [uid]).fetchone()[0], CAROL_PASSWORD
        )
    finally:
        db.conn.close()
    with (
        closing(carol),
        httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {w['carol_key']}"}) as carol_api,
    ):
        record = carol.get("/api/v1/me/private-keys").json()
        assert record["needs_new_passphrase"] is True and record["scheme"] == "sign-in-password"
        # Until she moves: a plain re-wrap would keep the exposed data key, and a new sign-in password
        # would leave her keys behind the old one.
        assert _change_both(carol, pc.change_passphrase(CAROL_PASSWORD, NEW_PASSPHRASE, record, uid), "another password") == (
            409,
            409,
        )

        # What she holds under the old keys: a result the worker sealed, one re-wrapped under the old data
        # key, and one Bob shared with her (sealed to her old public key).
        sealed = _private_job(carol_api, w["team"], speech_bytes)
        wrapped = _private_job(carol_api, w["team"], speech_bytes)
        stored = carol.get(f"/api/v1/transcripts/{wrapped}/envelope").json()
        old_pkcs8 = pc.unwrap_private_key(old.dk, record["wrapped_private_key"], uid)
        tk = pc.unseal_with_private_key(old_pkcs8, stored["key_envelope"], uid, wrapped)
        assert (
            carol.put(
                f"/api/v1/transcripts/{wrapped}/envelope/key",
                json={"key_envelope": pc.wrap_transcript_key(old.dk, tk, uid, wrapped)},
            ).status_code
            == 200
        )
        with closing(signed_in(server.url, BOB)) as bob:
            bob_enrolment = pc.enrol("bob's own passphrase", w["bob"])
            assert (
                bob.put("/api/v1/me/private-keys", json={**bob_enrolment.record, "current_password": ADMIN_PASSWORD}).status_code
                == 201
            )
            shared = _private_job(bob, w["team"], speech_bytes)
            bob_stored = bob.get(f"/api/v1/transcripts/{shared}/envelope").json()
            bob_tk = pc.unseal_with_private_key(bob_enrolment.private_key, bob_stored["key_envelope"], w["bob"], shared)
            old_public = pc.b64u_decode(record["public_key"])
            assert (
                bob.put(
                    f"/api/v1/transcripts/{shared}/grants/{uid}",
                    json={"key_envelope": pc.seal_to_public_key(old_public, bob_tk, uid, shared)},
                ).status_code
                == 200
            )
        bodies = {t: carol.get(f"/api/v1/transcripts/{t}/envelope").json()["body"] for t in (sealed, wrapped, shared)}

        url = "/api/v1/me/private-keys/rekey"
        inventory = carol.get(url).json()
        assert {i["transcript_id"]: i["kind"] for i in inventory["owned"]} == {sealed: "tk-sealed", wrapped: "tk"}
        assert [i["transcript_id"] for i in inventory["received"]] == [shared]
        moved = pc.rekey(old.dk, old_pkcs8, NEW_PASSPHRASE, inventory, uid)
        body = {
            "current_password": CAROL_PASSWORD,
            "record": moved.enrolment.record,
            "owned": moved.owned,
            "received": moved.received,
        }

        # Refused, and nothing changed: a wrong password; a passphrase that is the password; a key left out;
        # a private job that finished after the inventory was read.
        assert carol.post(url, json={**body, "current_password": "wrong"}).status_code == 400
        same = pc.rekey(old.dk, old_pkcs8, CAROL_PASSWORD, inventory, uid)
        refused = carol.post(url, json={**body, "record": same.enrolment.record, "owned": same.owned, "received": same.received})
        assert refused.status_code == 400 and "not your sign-in password" in refused.json()["detail"]
        assert carol.post(url, json={**body, "owned": {sealed: moved.owned[sealed]}}).status_code == 409
        late = _private_job(carol_api, w["team"], speech_bytes)
        assert carol.post(url, json=body).status_code == 409
        assert carol.get("/api/v1/me/private-keys").json() == record

        inventory = carol.get(url).json()
        moved = pc.rekey(old.dk, old_pkcs8, NEW_PASSPHRASE, inventory, uid)
        body = {
            "current_password": CAROL_PASSWORD,
            "record": moved.enrolment.record,
            "owned": moved.owned,
            "received": moved.received,
        }
        done = carol.post(url, json=body)
        assert done.status_code == 200 and done.json() == {"rekeyed": 4}

        after = carol.get("/api/v1/me/private-keys").json()
        assert after["scheme"] == "passphrase" and after["needs_new_passphrase"] is False
        assert after["public_key"] != record["public_key"] and after["recovery_dk"] != record["recovery_dk"]
        dk = pc.unwrap_data_key(
            pc.derive_keys(NEW_PASSPHRASE, pc.KdfParams.from_json(after["kdf"])).kek, after["wrapped_dk"], uid
        )
        pkcs8 = pc.unwrap_private_key(dk, after["wrapped_private_key"], uid)
        for tid in (sealed, wrapped, shared, late):
            now = carol.get(f"/api/v1/transcripts/{tid}/envelope").json()
            assert _open(dk, pkcs8, now, uid, tid)["text"] == "hello world"
            if tid in bodies:
                assert now["body"] == bodies[tid]  # the documents were not touched, only their keys
            with pytest.raises(pc.CryptoRefused):  # the old keys open none of the new envelopes
                _open(old.dk, old_pkcs8, now, uid, tid)
        with pytest.raises(pc.CryptoRefused):
            pc.unwrap_data_key(pc.derive_keys(CAROL_PASSWORD, pc.KdfParams.from_json(after["kdf"])).kek, after["wrapped_dk"], uid)
        with pytest.raises(pc.CryptoRefused):
            pc.unwrap_data_key_with_recovery(pc.parse_recovery_key(old.recovery_key), after["recovery_dk"], uid)
        assert (
            pc.unwrap_data_key_with_recovery(pc.parse_recovery_key(moved.enrolment.recovery_key), after["recovery_dk"], uid) == dk
        )
        # A result finished after the move is sealed to the new key pair.
        fresh = _private_job(carol_api, w["team"], speech_bytes)
        assert _open(dk, pkcs8, carol.get(f"/api/v1/transcripts/{fresh}/envelope").json(), uid, fresh)["text"] == "hello world"
        # From now on the passphrase changes on its own, and so does the password.
        change = pc.change_passphrase(NEW_PASSPHRASE, "and later another one", after, uid)
        assert _change_both(carol, change, "carol's new password") == (200, 200)
    audit = connect(w["settings"].storage.database_path)
    try:
        actions = [r[0] for r in audit.execute("SELECT action FROM audit_log WHERE actor = ? ORDER BY id", [CAROL])]
    finally:
        audit.conn.close()
    assert "private.rekeyed" in actions and "private.passphrase_changed" in actions
