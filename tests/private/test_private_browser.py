"""Private transcripts in headless Chromium: the browser's Web Crypto and the Python oracle open each
other's envelopes, and everything that must be refused is refused in the browser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.core.config import Settings
from appliance.private import crypto as pc
from tests.browser import chromium_page, in_crypto_module
from tests.support import FakeRecognizer, LiveServer

UID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
TID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
PASSWORD = "open the vault, Hal ✓"
DOC = {
    "id": TID,
    "text": "Ünïcode survives the trip.",
    "segments": [
        {
            "id": 0,
            "start": 0.25,
            "end": 1.5,
            "text": "Ünïcode survives the trip.",
            "speaker": None,
            "words": [{"start": 0.25, "end": 0.75, "word": " Ünïcode", "probability": 0.5}],
        }
    ],
}


@pytest.fixture
def page(settings: Settings) -> Iterator[Any]:
    from appliance.web.app import create_app

    with LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server, chromium_page(f"{server.url}/login") as page:
        assert page.evaluate("window.isSecureContext && Boolean(crypto.subtle)")
        yield page


def test_browser_encrypts_python_decrypts(page: Any) -> None:
    out = in_crypto_module(
        page,
        """
        const {uid, tid, password, doc} = arg;
        const {record, recoveryKey, keys} = await sc.enrol(password, uid);
        const tk = sc.newTranscriptKey();
        const sk = sc.newShareKey();
        return {
            record, recoveryKey,
            sealed: await sc.sealToPublicKey(keys.publicKey, tk, uid, tid),
            wrapped: await sc.wrapTranscriptKey(keys.dk, tk, uid, tid),
            body: await sc.sealTranscript(tk, doc, uid, tid),
            plainBody: await sc.sealTranscript(tk, doc, uid, tid, {compress: false}),
            share: await sc.sealShare(sk, doc, "s1"), sk: sc.b64uEncode(sk), tk: sc.b64uEncode(tk),
        };
    """,
        {"uid": UID, "tid": TID, "password": PASSWORD, "doc": DOC},
    )
    record = out["record"]
    params = pc.KdfParams.from_json(record["kdf"])
    assert params.iterations == pc.MIN_ITERATIONS and len(params.salt) == 16
    keys = pc.derive_keys(PASSWORD, params)
    assert "auth_key" not in record  # nothing derived from the passphrase but the wrapped keys
    dk = pc.unwrap_data_key(keys.kek, record["wrapped_dk"], UID)
    assert pc.unwrap_data_key_with_recovery(pc.parse_recovery_key(out["recoveryKey"]), record["recovery_dk"], UID) == dk
    pkcs8 = pc.unwrap_private_key(dk, record["wrapped_private_key"], UID)
    tk = pc.unseal_with_private_key(pkcs8, out["sealed"], UID, TID)
    assert pc.b64u_encode(tk) == out["tk"] and pc.unwrap_transcript_key(dk, out["wrapped"], UID, TID) == tk
    assert pc.validate_envelope(out["body"], "transcript", {"uid": UID, "tid": TID}).header["z"] == "gzip"
    assert pc.open_transcript(tk, out["body"], UID, TID) == DOC
    assert pc.open_transcript(tk, out["plainBody"], UID, TID) == DOC
    assert pc.open_share(pc.b64u_decode(out["sk"]), out["share"], "s1") == DOC


def _python_side() -> dict[str, Any]:
    enrolment = pc.enrol(PASSWORD, UID)
    tk = bytes(range(32))
    public = pc.b64u_decode(enrolment.record["public_key"])
    return {
        "record": enrolment.record,
        "recoveryKey": enrolment.recovery_key,
        "sealed": pc.seal_to_public_key(public, tk, UID, TID),
        "wrapped": pc.wrap_transcript_key(enrolment.dk, tk, UID, TID),
        "body": pc.seal_transcript(tk, DOC, UID, TID),
        "uid": UID,
        "tid": TID,
        "password": PASSWORD,
    }


def test_python_encrypts_browser_decrypts(page: Any) -> None:
    result = in_crypto_module(
        page,
        """
        const {record, recoveryKey, sealed, wrapped, body, uid, tid, password} = arg;
        const out = [];
        for (const keys of [await sc.unlock(password, record, uid), await sc.unlockWithRecoveryKey(recoveryKey, record, uid)]) {
            const fromSealed = await sc.transcriptKey(keys, {kind: "tk-sealed", key_envelope: sealed}, uid, tid);
            const fromWrapped = await sc.transcriptKey(keys, {kind: "tk", key_envelope: wrapped}, uid, tid);
            const rewrapped = await sc.rewrapSealedKey(keys, sealed, uid, tid);
            out.push({doc: await sc.openTranscript(fromSealed, body, uid, tid), same: sc.b64uEncode(fromSealed) === sc.b64uEncode(fromWrapped),
                      rewrapped});
        }
        return out;
    """,
        _python_side(),
    )
    for item in result:
        assert item["doc"] == DOC and item["same"]
        # What the browser would PUT back after unlocking is a valid "tk" envelope for this record.
        assert pc.validate_envelope(item["rewrapped"], "tk", {"uid": UID, "tid": TID})


def _tamper(envelope: str, **changes: Any) -> str:
    return json.dumps({**json.loads(envelope), **changes}, separators=(",", ":"))


def test_browser_refuses_what_it_must(page: Any) -> None:
    side = _python_side()
    outer = json.loads(side["body"])
    ct = bytearray(pc.b64u_decode(outer["ct"]))
    ct[5] ^= 0x01
    weak = {**side["record"]["kdf"], "iterations": pc.MIN_ITERATIONS - 1}
    cases = {
        "flipped bit": {"envelope": _tamper(side["body"], ct=pc.b64u_encode(bytes(ct))), "tid": TID},
        "swapped record": {"envelope": side["body"], "tid": "ffffffffffffffffffffffffffffffff"},
        "unknown version": {"envelope": _tamper(side["body"], v=2), "tid": TID},
        "unknown algorithm": {"envelope": _tamper(side["body"], alg="A128CBC"), "tid": TID},
    }
    codes = in_crypto_module(
        page,
        """
        const {side, cases, weak} = arg;
        const code = async (fn) => { try { await fn(); return "accepted"; } catch (e) { return e.code || String(e); } };
        const keys = await sc.unlock(side.password, side.record, side.uid);
        const tk = await sc.transcriptKey(keys, {kind: "tk-sealed", key_envelope: side.sealed}, side.uid, side.tid);
        const out = {};
        for (const [name, c] of Object.entries(cases)) out[name] = await code(() => sc.openTranscript(tk, c.envelope, side.uid, c.tid));
        out["wrong password"] = await code(() => sc.unlock("not the password", side.record, side.uid));
        out["iterations below the floor"] = await code(() => sc.unlock(side.password, {...side.record, kdf: weak}, side.uid));
        out["short salt"] = await code(() => sc.deriveKeys(side.password, {...side.record.kdf, salt: "AAAAAAAAAAA"}));
        out["sealed key for another transcript"] = await code(() => sc.transcriptKey(keys, {kind: "tk-sealed", key_envelope: side.sealed}, side.uid, "other"));
        out["the untouched envelope"] = await code(() => sc.openTranscript(tk, side.body, side.uid, side.tid));
        return out;
    """,
        {"side": side, "cases": cases, "weak": weak},
    )
    assert codes == {
        "flipped bit": "decrypt",
        "swapped record": "ids",
        "unknown version": "version",
        "unknown algorithm": "algorithm",
        "wrong password": "decrypt",
        "iterations below the floor": "weak-kdf",
        "short salt": "weak-kdf",
        "sealed key for another transcript": "ids",
        "the untouched envelope": "accepted",
    }


def test_browser_passphrase_change_rewraps_only_the_data_key(page: Any) -> None:
    side = _python_side()
    change = in_crypto_module(
        page, "return sc.changePassphrase(arg.password, 'a brand new passphrase', arg.record, arg.uid);", side
    )
    assert set(change) == {"kdf", "wrapped_dk"}
    assert change["kdf"]["salt"] != side["record"]["kdf"]["salt"]
    new_record = {**side["record"], **change}
    with pytest.raises(pc.CryptoRefused):
        pc.unwrap_data_key(pc.derive_keys(PASSWORD, pc.KdfParams.from_json(new_record["kdf"])).kek, new_record["wrapped_dk"], UID)
    new_keys = pc.derive_keys("a brand new passphrase", pc.KdfParams.from_json(new_record["kdf"]))
    dk = pc.unwrap_data_key(new_keys.kek, new_record["wrapped_dk"], UID)
    assert pc.unwrap_transcript_key(dk, side["wrapped"], UID, TID) == bytes(range(32))


def test_browser_rekey_moves_every_key_and_python_opens_them(page: Any) -> None:
    """sotto-crypto's rekey against the oracle: keys made in Python under the old record, moved in Chromium."""
    side = _python_side()
    inventory = {
        "owned": [{"transcript_id": TID, "kind": "tk-sealed", "key_envelope": side["sealed"]}],
        "received": [
            {
                "transcript_id": "t-shared",
                "key_envelope": pc.seal_to_public_key(
                    pc.b64u_decode(side["record"]["public_key"]), b"\x05" * 32, UID, "t-shared"
                ),
            }
        ],
    }
    out = in_crypto_module(
        page,
        """
        const old = await sc.unlock(arg.password, arg.record, arg.uid);
        const moved = await sc.rekey(old, "a passphrase of its own", arg.inventory, arg.uid);
        return {record: moved.record, recoveryKey: moved.recoveryKey, owned: moved.owned, received: moved.received};
    """,
        {**side, "inventory": inventory},
    )
    record = out["record"]
    dk = pc.unwrap_data_key(
        pc.derive_keys("a passphrase of its own", pc.KdfParams.from_json(record["kdf"])).kek, record["wrapped_dk"], UID
    )
    assert pc.unwrap_data_key_with_recovery(pc.parse_recovery_key(out["recoveryKey"]), record["recovery_dk"], UID) == dk
    assert pc.unwrap_transcript_key(dk, out["owned"][TID], UID, TID) == bytes(range(32))
    pkcs8 = pc.unwrap_private_key(dk, record["wrapped_private_key"], UID)
    assert pc.unseal_with_private_key(pkcs8, out["received"]["t-shared"], UID, "t-shared") == b"\x05" * 32
    assert record["public_key"] != side["record"]["public_key"]
