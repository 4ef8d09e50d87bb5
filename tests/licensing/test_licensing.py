"""The licence module: every check in shared/design/licensing.md, in order, with typed errors."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance.licensing import licence as L
from appliance.licensing.store import LicenseBlocked, LicenseStore
from tests.licensing_keys import OTHER_PRIVATE, TEST_KID, TEST_MACHINE_ID, TEST_PRIVATE, TEST_TRUST
from tests.licensing_support import NOW, Clock, issue, payload

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    path = tmp_path / "machine-id"
    path.write_text(TEST_MACHINE_ID + "\n")
    return path


def envelope_of(text: str) -> dict[str, Any]:
    lines = text.strip().splitlines()
    return json.loads(base64.b64decode("".join(lines[1:-1])))


def armor(envelope: dict[str, Any] | list[Any] | str) -> str:
    raw = envelope if isinstance(envelope, str) else json.dumps(envelope)
    return f"{L.ARMOR_BEGIN}\n{base64.b64encode(raw.encode()).decode()}\n{L.ARMOR_END}\n"


def store(
    tmp_path: Path, machine: Path, clock: Clock | None = None, gpus: list[str] | None = None, witness: Any = None
) -> LicenseStore:
    return LicenseStore(
        tmp_path / "lic",
        machine,
        trusted=TEST_TRUST,
        clock=clock or Clock(),
        gpus=gpus or [],
        newest_event=witness or (lambda: None),
    )


# --------------------------------------------------------------------------- signature and format


def test_round_trip(machine: Path) -> None:
    fp = L.fingerprint(machine, [])
    lic = L.verify(issue(fp), TEST_TRUST)
    assert lic.payload["customer"] == "Hospital" and lic.kid == TEST_KID and lic.serial == 1
    assert lic.features == ["diarization", "api"] and lic.limits == {"max_users": 3}


def test_production_trust_map_never_holds_the_test_key() -> None:
    assert TEST_KID not in L.TRUSTED_KEYS and TEST_TRUST[TEST_KID] not in L.TRUSTED_KEYS.values()
    assert len(L.TRUSTED_KEYS) == 2
    for public in L.TRUSTED_KEYS.values():
        assert len(base64.b64decode(public)) == 32
    with pytest.raises(L.LicenseError) as err:
        L.verify(issue(_fp()))  # the production map: the test key is unknown there
    assert err.value.code == "unknown_key"


def _fp() -> L.Fingerprint:
    return L.Fingerprint("a" * 64, (), "test")


@pytest.mark.parametrize("field", ["payload", "sig"])
def test_edited_payload_or_flipped_signature_bit(field: str) -> None:
    env = envelope_of(issue(_fp()))
    raw = bytearray(base64.urlsafe_b64decode(env[field] + "=" * (-len(env[field]) % 4)))
    if field == "payload":
        raw = bytearray(bytes(raw).replace(b'"max_users":3', b'"max_users":9'))
    else:
        raw[5] ^= 0x01
    env[field] = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(L.LicenseError) as err:
        L.verify(armor(env), TEST_TRUST)
    assert err.value.code == "signature"


def test_wrong_key_claiming_the_vendor_kid() -> None:
    with pytest.raises(L.LicenseError) as err:
        L.verify(issue(_fp(), key=OTHER_PRIVATE, kid=TEST_KID), TEST_TRUST)
    assert err.value.code == "signature"


def test_unknown_kid_and_algorithm_none() -> None:
    with pytest.raises(L.LicenseError) as err:
        L.verify(issue(_fp(), kid="someone-else"), TEST_TRUST)
    assert err.value.code == "unknown_key"
    env = envelope_of(issue(_fp()))
    for alg in ("none", "HS256", "ED25519"):
        with pytest.raises(L.LicenseError) as err:
            L.verify(armor({**env, "alg": alg}), TEST_TRUST)
        assert err.value.code == "algorithm"
    with pytest.raises(L.LicenseError) as err:
        L.verify(armor({**env, "v": 2}), TEST_TRUST)
    assert err.value.code == "algorithm"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "armor"),
        ("   \n", "armor"),
        ("hello", "armor"),
        (f"{L.ARMOR_BEGIN}\n{L.ARMOR_END}", "armor"),
        (f"{L.ARMOR_BEGIN}\n!!!not base64!!!\n{L.ARMOR_END}", "encoding"),
        (armor("[1, 2, 3]"), "encoding"),
        (armor("not json"), "encoding"),
        (armor({"v": 1, "alg": "ed25519"}), "encoding"),
    ],
)
def test_garbage_is_a_typed_error(text: str, code: str) -> None:
    with pytest.raises(L.LicenseError) as err:
        L.verify(text, TEST_TRUST)
    assert err.value.code == code
    assert str(err.value)  # a sentence for the admin


def test_bad_payload_or_signature_encoding() -> None:
    env = envelope_of(issue(_fp()))
    for broken in ({**env, "payload": "***"}, {**env, "sig": "***"}, {**env, "sig": 5}):
        with pytest.raises(L.LicenseError) as err:
            L.verify(armor(broken), TEST_TRUST)
        assert err.value.code == "encoding"


def _signed_raw(raw: bytes) -> str:
    sig = TEST_PRIVATE.sign(L.DOMAIN + raw)
    enc = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
    return armor({"v": 1, "alg": "ed25519", "kid": TEST_KID, "payload": enc(raw), "sig": enc(sig)})


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"not json", "payload"),
        (b"[1]", "payload"),
        (json.dumps({**payload(_fp()), "product": "other"}).encode(), "product"),
        (json.dumps({**payload(_fp()), "schema": 2}).encode(), "product"),
        (json.dumps({**payload(_fp()), "serial": "7"}).encode(), "payload"),
        (json.dumps({**payload(_fp()), "expires_at": "soon"}).encode(), "payload"),
        (json.dumps({**payload(_fp()), "expires_at": 5}).encode(), "payload"),
        (json.dumps({**payload(_fp()), "expires_at": "2030-01-01T00:00:00"}).encode(), "payload"),
        (json.dumps({**payload(_fp()), "grace_days": -1}).encode(), "payload"),
        (json.dumps({**payload(_fp()), "features": "all"}).encode(), "payload"),
        (json.dumps({**payload(_fp()), "limits": {"max_users": -1}}).encode(), "payload"),
    ],
)
def test_signed_but_malformed_payloads(raw: bytes, code: str) -> None:
    with pytest.raises(L.LicenseError) as err:
        L.verify(_signed_raw(raw), TEST_TRUST)
    assert err.value.code == code


def test_crlf_line_endings_are_fine() -> None:
    text = issue(_fp()).replace("\n", "\r\n")
    assert L.verify(text, TEST_TRUST).payload["customer"] == "Hospital"


def test_golden_licence_keeps_verifying(tmp_path: Path) -> None:
    text = (REPO / "tests" / "data" / "golden.lic").read_text()
    lic = L.verify(text, TEST_TRUST)
    assert lic.payload["license_id"] == "GOLDEN-0001" and lic.serial == 7
    machine = tmp_path / "mid"
    machine.write_text(TEST_MACHINE_ID)
    assert L.binding_matches(lic.payload["binding"], L.fingerprint(machine, []))
    state = L.state_of(lic, datetime(2030, 1, 1, tzinfo=UTC), tampered=False)
    assert state.state == "valid" and state.limits["max_users"] == 50


# --------------------------------------------------------------------------- fingerprint and binding


def test_fingerprint_hashes_and_fails_closed(tmp_path: Path, machine: Path) -> None:
    fp = L.fingerprint(machine, ["GPU-aaa", "GPU-bbb"])
    assert TEST_MACHINE_ID not in json.dumps(fp.as_dict()) and "GPU-aaa" not in json.dumps(fp.as_dict())
    assert fp.source == "machine-id and 2 GPU(s)"
    assert L.fingerprint(machine, []).source.startswith("machine-id only")
    with pytest.raises(L.FingerprintError, match="mount the host's"):
        L.fingerprint(tmp_path / "missing", [])
    (tmp_path / "short").write_text("abc")
    with pytest.raises(L.FingerprintError):
        L.fingerprint(tmp_path / "short", [])


def test_gpu_uuids_without_nvidia_is_empty() -> None:
    assert L.gpu_uuids() == []  # no NVIDIA driver on CI: no GPUs, no crash


def test_one_gpu_swapped_passes_all_swapped_fails(machine: Path) -> None:
    licensed = L.fingerprint(machine, ["GPU-1", "GPU-2", "GPU-3"])
    binding = payload(licensed)["binding"]
    assert binding["min_gpu_match"] == 2
    assert L.binding_matches(binding, L.fingerprint(machine, ["GPU-1", "GPU-2", "GPU-new"]))
    assert not L.binding_matches(binding, L.fingerprint(machine, ["GPU-1", "GPU-x", "GPU-y"]))
    assert not L.binding_matches(binding, L.fingerprint(machine, ["GPU-a", "GPU-b", "GPU-c"]))


def test_binding_rejects_malformed_and_other_machines(tmp_path: Path, machine: Path) -> None:
    fp = L.fingerprint(machine, [])
    other = tmp_path / "other-id"
    other.write_text("fedcba9876543210fedcba9876543210")
    assert L.binding_matches({"machine": fp.machine}, fp)
    assert not L.binding_matches({"machine": fp.machine}, L.fingerprint(other, []))
    assert not L.binding_matches(None, fp)
    assert not L.binding_matches({"machine": 5}, fp)
    assert not L.binding_matches({"machine": fp.machine, "gpus": "GPU"}, fp)
    assert not L.binding_matches({"machine": fp.machine, "gpus": ["x"], "min_gpu_match": 0}, fp)


# --------------------------------------------------------------------------- install checks


def test_install_checks_nonce_serial_binding_and_issue_time(tmp_path: Path, machine: Path) -> None:
    s = store(tmp_path, machine)
    request = s.request("K-1")
    assert request["fingerprint"]["machine"] == L.fingerprint(machine, []).machine
    assert TEST_MACHINE_ID not in json.dumps(request)
    fp = L.fingerprint(machine, [])
    with pytest.raises(L.LicenseError) as err:  # a response to another request
        s.install(issue(fp, nonce="someone-else"))
    assert err.value.code == "nonce"
    state = s.install(issue(fp, nonce=request["nonce"], serial=5))
    assert state.state == "valid" and state.customer == "Hospital"
    with pytest.raises(L.LicenseError) as err:  # older serial over newer
        s.install(issue(fp, nonce=request["nonce"], serial=4))
    assert err.value.code == "serial"
    renewed = s.install(issue(fp, nonce=request["nonce"], serial=6, expires_at=L.iso(NOW + timedelta(days=900))))
    assert renewed.days_left and renewed.days_left > 800
    other = tmp_path / "other"
    other.write_text("fedcba9876543210fedcba9876543210")
    with pytest.raises(L.LicenseError) as err:
        s.install(issue(L.fingerprint(other, []), nonce=request["nonce"], serial=9))
    assert err.value.code == "binding"
    with pytest.raises(L.LicenseError) as err:  # issued in the future by this machine's clock
        s.install(issue(fp, nonce=request["nonce"], serial=9, issued_at=L.iso(NOW + timedelta(hours=2))))
    assert err.value.code == "clock"


def test_request_needs_a_key(tmp_path: Path, machine: Path) -> None:
    with pytest.raises(L.LicenseError) as err:
        store(tmp_path, machine).request("")
    assert err.value.code == "request"


def test_licence_copied_to_another_machine_is_wrong_machine(tmp_path: Path, machine: Path) -> None:
    s = store(tmp_path, machine)
    nonce = s.request("K-1")["nonce"]
    s.install(issue(L.fingerprint(machine, []), nonce=nonce))
    other_id = tmp_path / "other-machine-id"
    other_id.write_text("fedcba9876543210fedcba9876543210")
    copied = LicenseStore(tmp_path / "lic", other_id, trusted=TEST_TRUST, clock=Clock(), gpus=[])
    state = copied.state()
    assert state.state == "wrong_machine" and not state.allows_new_jobs
    with pytest.raises(LicenseBlocked) as err:
        copied.require_new_jobs()
    assert err.value.code == "license_wrong_machine"
    missing = LicenseStore(tmp_path / "lic", tmp_path / "no-such-id", trusted=TEST_TRUST, clock=Clock(), gpus=[])
    assert missing.state().state == "wrong_machine"


def test_tampered_installed_file_is_invalid_and_a_good_file_still_installs(tmp_path: Path, machine: Path) -> None:
    s = store(tmp_path, machine)
    nonce = s.request("K-1")["nonce"]
    s.install(issue(L.fingerprint(machine, []), nonce=nonce))
    s.license_file.write_text(s.license_file.read_text().replace("A", "B", 3))
    assert s.state().state == "invalid"
    nonce = s.request("K-1")["nonce"]
    assert s.install(issue(L.fingerprint(machine, []), nonce=nonce)).state == "valid"


# --------------------------------------------------------------------------- time and states


def test_expiring_then_grace_then_expired(tmp_path: Path, machine: Path) -> None:
    clock = Clock()
    s = store(tmp_path, machine, clock)
    nonce = s.request("K-1")["nonce"]
    s.install(issue(L.fingerprint(machine, []), nonce=nonce, expires_at=L.iso(NOW + timedelta(days=40))))
    assert s.state().state == "valid"
    clock.now = NOW + timedelta(days=20)
    assert s.state().state == "expiring_soon" and s.state().banner
    clock.now = NOW + timedelta(days=45)
    grace = s.state()
    assert grace.state == "grace" and grace.allows_new_jobs
    clock.now = NOW + timedelta(days=51)
    expired = s.state()
    assert expired.state == "expired" and not expired.allows_new_jobs
    with pytest.raises(LicenseBlocked) as err:
        s.require_new_jobs()
    assert err.value.code == "license_expired"


def test_not_yet_valid_and_skew(machine: Path) -> None:
    fp = L.fingerprint(machine, [])
    lic = L.verify(issue(fp, not_before=L.iso(NOW + timedelta(days=3))), TEST_TRUST)
    assert L.state_of(lic, NOW, tampered=False).state == "not_yet_valid"
    lic = L.verify(
        issue(fp, issued_at=L.iso(NOW + timedelta(minutes=2)), not_before=L.iso(NOW + timedelta(minutes=2))), TEST_TRUST
    )
    assert L.state_of(lic, NOW, tampered=False).state == "valid"  # 2 minutes of skew is tolerated
    lic = L.verify(issue(fp, issued_at=L.iso(NOW + timedelta(hours=2))), TEST_TRUST)
    assert L.state_of(lic, NOW, tampered=False).state == "clock_tampered"  # clock before the issue time


def test_clock_rollback_against_the_stored_mark_and_recovery(tmp_path: Path, machine: Path) -> None:
    clock = Clock()
    s = store(tmp_path, machine, clock)
    nonce = s.request("K-1")["nonce"]
    s.install(issue(L.fingerprint(machine, []), nonce=nonce))
    clock.now = NOW + timedelta(days=10)
    assert s.state().state == "valid"  # the mark moves to now
    clock.now = NOW + timedelta(days=2)
    rolled = s.state()
    assert rolled.state == "clock_tampered" and not rolled.allows_new_jobs
    clock.now = NOW + timedelta(days=10, minutes=30)
    assert s.state().state == "valid"  # the clock was fixed: recovered by itself
    clock.now = NOW + timedelta(days=10, minutes=-20)
    assert s.state().state == "valid"  # under an hour behind the mark is tolerated


def test_rollback_with_the_state_file_deleted_is_caught_by_the_sqlite_witness(tmp_path: Path, machine: Path) -> None:
    clock = Clock()
    newest_job = NOW + timedelta(days=30)
    s = store(tmp_path, machine, clock, witness=lambda: newest_job)
    nonce = s.request("K-1")["nonce"]
    s.install(issue(L.fingerprint(machine, []), nonce=nonce))
    (tmp_path / "lic" / "clock.json").unlink(missing_ok=True)
    assert s.state().state == "clock_tampered"


def test_clock_mark_survives_a_corrupt_state_file(tmp_path: Path) -> None:
    guard = L.ClockGuard(tmp_path / "clock.json")
    assert guard.high_water() is None and not guard.tampered(NOW)
    (tmp_path / "clock.json").write_text("{broken")
    assert guard.high_water() is None
    guard.observe(NOW)
    guard.observe(NOW - timedelta(days=1))  # never moves backwards
    assert guard.high_water() == NOW


def test_evaluation_mode_then_none(tmp_path: Path, machine: Path) -> None:
    clock = Clock()
    s = store(tmp_path, machine, clock)
    first = s.state()
    assert first.state == "evaluation" and first.allows_new_jobs and first.days_left == 14
    assert "diarization" in first.features
    clock.now = NOW + timedelta(days=15)
    ended = s.state()
    assert ended.state == "none" and not ended.allows_new_jobs
    clock.now = NOW - timedelta(days=3)  # rolling the clock back does not restart the evaluation
    assert s.state().state == "clock_tampered"


def _witnessed(tmp_path: Path, machine: Path, clock: Clock) -> tuple[LicenseStore, Any]:
    """A store with the database witness, as the appliance builds it (a real SQLite file, migrated)."""
    from appliance.core import migrations
    from appliance.core.db import connect
    from appliance.licensing import store as license_store

    db = connect(tmp_path / "appliance.db")
    migrations.apply(db)
    s = LicenseStore(
        tmp_path / "lic",
        machine,
        trusted=TEST_TRUST,
        clock=clock,
        gpus=[],
        newest_event=lambda: license_store.newest_job_time(db),
        witness=license_store.Witness(lambda: db),
    )
    return s, db


def test_deleting_or_garbling_the_evaluation_file_does_not_restart_the_evaluation(tmp_path: Path, machine: Path) -> None:
    clock = Clock()
    s, db = _witnessed(tmp_path, machine, clock)
    assert s.state().days_left == 14
    folder = tmp_path / "lic"
    for attack in ("delete", "garble", "post-date", "delete the folder"):
        clock.now += timedelta(days=2)
        if attack == "delete":
            (folder / "evaluation.json").unlink()
        elif attack == "garble":
            (folder / "evaluation.json").write_text('{"started_at": "soon"')
        elif attack == "post-date":
            (folder / "evaluation.json").write_text(json.dumps({"started_at": L.iso(clock.now)}))
        else:
            import shutil

            shutil.rmtree(folder)
        assert s.state().days_left == 14 - (clock.now - NOW).days, attack
    clock.now = NOW + timedelta(days=15)
    assert s.state().state == "none"
    # Even with the database's record gone too, the first account dates the evaluation.
    from appliance.accounts import users as accounts

    accounts.create(db, "first@example.org", "a long enough password", "admin")
    db.execute("UPDATE users SET created_at = ?", [L.iso(NOW)])
    db.execute("DELETE FROM license_witness")
    (folder / "evaluation.json").unlink()
    assert s.state().state == "none"


def test_a_lapsed_licence_with_its_file_deleted_is_missing_not_an_evaluation(tmp_path: Path, machine: Path) -> None:
    clock = Clock()
    s, _db = _witnessed(tmp_path, machine, clock)
    nonce = s.request("K-1")["nonce"]
    s.install(issue(L.fingerprint(machine, []), nonce=nonce, expires_at=L.iso(NOW + timedelta(days=5)), grace_days=0))
    clock.now = NOW + timedelta(days=6)
    assert s.state().state == "expired"
    (tmp_path / "lic" / "license.lic").unlink()
    missing = s.state()
    assert missing.state == "missing" and not missing.allows_new_jobs and "license install" in missing.message
    with pytest.raises(LicenseBlocked) as blocked:
        s.require_new_jobs()
    assert blocked.value.code == "license_missing"


def test_a_clock_that_ran_ahead_is_corrected_by_an_admin_and_a_rollback_is_still_caught(tmp_path: Path, machine: Path) -> None:
    clock = Clock()
    s, db = _witnessed(tmp_path, machine, clock)
    assert s.state().state == "evaluation"
    clock.now = NOW + timedelta(days=365)  # the hardware clock jumped a year ahead; work went on
    assert s.state().state == "none"  # (the evaluation ran out meanwhile; what matters is the clock)
    db["jobs"].insert(
        {
            "id": "j",
            "state": "done",
            "filename": "a.wav",
            "size_bytes": 1,
            "models": "[]",
            "options": "{}",
            "priority": 0,
            "created_at": L.iso(clock.now),
            "transcript_ids": "[]",
            "progress": 1.0,
        }
    )
    clock.now = NOW + timedelta(days=1)  # set right again
    (tmp_path / "lic" / "clock.json").unlink()  # the file alone no longer holds the mark
    assert s.state().state == "clock_tampered"
    from appliance.licensing.store import ClockCorrectionRefused

    with pytest.raises(ClockCorrectionRefused, match="does not agree"):
        s.correct_clock(L.iso(clock.now + timedelta(hours=1)))
    with pytest.raises(ClockCorrectionRefused, match="date and time"):
        s.correct_clock("tomorrow")
    made = s.correct_clock(L.iso(clock.now))
    assert made["discarded_mark"] == L.iso(NOW + timedelta(days=365)) and made["corrected_to"] == L.iso(NOW + timedelta(days=1))
    assert s.state().state == "evaluation"
    clock.now = NOW + timedelta(days=3)
    s.state()
    clock.now = NOW + timedelta(days=1)  # a rollback after the correction is still caught (the database keeps the mark)
    (tmp_path / "lic" / "clock.json").unlink()
    assert s.state().state == "clock_tampered"


def test_features_and_limits_come_only_from_the_payload(tmp_path: Path, machine: Path) -> None:
    s = store(tmp_path, machine)
    nonce = s.request("K-1")["nonce"]
    s.install(issue(L.fingerprint(machine, []), nonce=nonce, features=["api"], limits={"max_users": 2, "max_gpus": 0}))
    assert s.limit("max_users") == 2 and s.limit("max_gpus") is None and s.limit("max_concurrent_jobs") is None
    with pytest.raises(LicenseBlocked) as err:
        s.require_new_jobs("diarization")
    assert err.value.code == "feature_not_licensed"
    assert s.require_new_jobs("api").state == "valid"
    assert s.state().as_dict()["allows_new_jobs"] is True


def test_gpu_uuids_via_nvml_count_mig_slices_as_their_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    calls: list[str] = []
    fake = types.ModuleType("pynvml")
    devices = {0: "whole-0", 1: "mig-slice-of-1", 2: "mig-other-slice-of-1"}
    parents = {"mig-slice-of-1": "parent-1", "mig-other-slice-of-1": "parent-1"}
    fake.nvmlInit = lambda: calls.append("init")  # type: ignore[attr-defined]
    fake.nvmlShutdown = lambda: calls.append("shutdown")  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCount = lambda: len(devices)  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda i: devices[i]  # type: ignore[attr-defined]

    def parent(handle: str) -> str:
        if handle not in parents:
            raise RuntimeError("not a MIG device")
        return parents[handle]

    fake.nvmlDeviceGetDeviceHandleFromMigDeviceHandle = parent  # type: ignore[attr-defined]
    fake.nvmlDeviceGetUUID = lambda h: {"whole-0": b"GPU-0000", "parent-1": "GPU-1111"}[h]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert L.gpu_uuids() == ["GPU-0000", "GPU-1111"]
    assert calls == ["init", "shutdown"]

    def broken_init() -> None:
        raise RuntimeError("NVML Shared Library Not Found")

    fake.nvmlInit = broken_init  # type: ignore[attr-defined]
    assert L.gpu_uuids() == []
