"""Private transcripts, the cryptography: the Python oracle against the known-answer vectors, the
server's key-free envelope checks. The JavaScript module runs on the same vectors under `node --test`
(tests/js/crypto.test.mjs, run by tests/web/test_static_js.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appliance.private import crypto as pc
from tests.private_vectors import build

REPO = Path(__file__).resolve().parents[2]
VECTORS = json.loads((REPO / "tests" / "data" / "private_vectors.json").read_text(encoding="utf-8"))
ENVELOPES = {v["name"]: v for v in VECTORS["envelopes"]}


def _raw(name: str) -> bytes:
    return pc.b64u_decode(VECTORS[name])


def _key(name: str) -> bytes:
    return _raw(name)


def _without_gzip_payloads(vectors: dict[str, Any]) -> dict[str, Any]:
    # Another zlib may compress differently; the committed compressed bytes are inputs to the vectors.
    envelopes = [{k: v for k, v in e.items() if not e.get("gzip") or k not in {"pt", "envelope"}} for e in vectors["envelopes"]]
    return {**vectors, "envelopes": envelopes, "refusals": vectors["refusals"]}


def test_vectors_file_is_what_the_generator_makes() -> None:
    # Fixed inputs in, the committed file out: the format has not drifted from its generator.
    assert _without_gzip_payloads(build()) == _without_gzip_payloads(json.loads(json.dumps(VECTORS)))


def test_password_derives_the_vector_keys() -> None:
    # The auth key is what accounts enrolled before the separate passphrase signed in with: the server
    # derives it once more to recognise such a sign-in (accounts._matches), so it stays a vector.
    keys = pc.derive_keys(VECTORS["password"], pc.KdfParams.from_json(VECTORS["kdf"]))
    assert pc.b64u_encode(keys.kek) == VECTORS["kek"] and keys.auth_key_text == VECTORS["auth_key"]
    assert keys.kek != keys.auth_key  # distinct HKDF info strings
    new = pc.derive_keys(VECTORS["new_password"], pc.KdfParams.from_json(VECTORS["new_kdf"]))
    assert new.auth_key_text == VECTORS["new_auth_key"]


@pytest.mark.parametrize("name", list(ENVELOPES))
def test_vector_opens_and_is_reproduced_byte_for_byte(name: str) -> None:
    v = ENVELOPES[name]
    iv, pt = pc.b64u_decode(v["iv"]), pc.b64u_decode(v["pt"])
    if v["typ"] == "tk-sealed":
        opened = pc.unseal_with_private_key(_raw("user_private_key"), v["envelope"], **v["ids"])
        again = pc.seal_to_public_key(
            _raw("user_public_key"), pt, v["ids"]["uid"], v["ids"]["tid"], ephemeral_pkcs8=_raw("ephemeral_private_key"), iv=iv
        )
    else:
        opened = pc.open_envelope(_key(v["key"]), v["envelope"], v["typ"], v["ids"])[1]
        if v["typ"] in {"transcript", "share"}:
            again = pc.seal_document(_key(v["key"]), v["typ"], v["ids"], pt, gzipped=v["gzip"], iv=iv)
        else:
            again = pc.seal(_key(v["key"]), v["typ"], v["ids"], pt, iv=iv)
    assert opened == pt
    assert again == v["envelope"]


def test_documents_decode_to_the_vector_document() -> None:
    for name in ("transcript", "transcript-gzip"):
        assert pc.open_transcript(_raw("tk"), ENVELOPES[name]["envelope"], VECTORS["uid"], VECTORS["tid"]) == VECTORS["document"]
    assert pc.open_share(_raw("sk_share"), ENVELOPES["share"]["envelope"], VECTORS["sid"]) == VECTORS["document"]


def test_recovery_key_round_trip() -> None:
    raw = pc.parse_recovery_key(VECTORS["recovery_key"])
    assert pc.format_recovery_key(raw) == VECTORS["recovery_key"]
    assert pc.parse_recovery_key(VECTORS["recovery_key"].lower().replace("-", " ")) == raw
    assert pc.unwrap_data_key_with_recovery(raw, ENVELOPES["dk-recovery"]["envelope"], VECTORS["uid"]) == _raw("dk")
    with pytest.raises(pc.CryptoRefused):
        pc.parse_recovery_key(VECTORS["recovery_key"][:-1])


@pytest.mark.parametrize("refusal", VECTORS["refusals"], ids=[r["why"] for r in VECTORS["refusals"]])
def test_refusals(refusal: dict[str, Any]) -> None:
    with pytest.raises(pc.CryptoRefused) as caught:
        pc.open_envelope(_key(refusal["key"]), refusal["envelope"], refusal["typ"], refusal["ids"])
    assert caught.value.code == refusal["code"]
    if refusal["code"] != "decrypt":  # the server refuses these without any key
        with pytest.raises(pc.CryptoRefused):
            pc.validate_envelope(refusal["envelope"], refusal["typ"], refusal["ids"])


@pytest.mark.parametrize("refusal", VECTORS["kdf_refusals"], ids=[r["why"] for r in VECTORS["kdf_refusals"]])
def test_weak_kdf_parameters_are_refused(refusal: dict[str, Any]) -> None:
    with pytest.raises(pc.CryptoRefused) as caught:
        pc.KdfParams.from_json(refusal["params"])
    assert caught.value.code == refusal["code"]


def test_validation_needs_no_key_and_checks_sizes() -> None:
    ids = {"uid": VECTORS["uid"], "tid": VECTORS["tid"]}
    env = pc.validate_envelope(ENVELOPES["tk-sealed"]["envelope"], "tk-sealed", ids)
    assert env.header["typ"] == "tk-sealed" and len(pc.b64u_decode(env.header["epk"])) == 65
    with pytest.raises(pc.CryptoRefused, match="another record"):
        pc.validate_envelope(ENVELOPES["tk"]["envelope"], "tk", {"uid": VECTORS["uid"]})  # an id too many
    too_big = pc.seal(bytes(32), "transcript", ids, bytes(2000), extra={"cty": "application/json"})
    with pytest.raises(pc.CryptoRefused, match="too large|impossible length"):
        pc.validate_envelope(too_big, "transcript", ids, max_ct=1000)
    off_curve = pc.b64u_encode(b"\x04" + bytes(64))
    forged = json.loads(ENVELOPES["tk-sealed"]["envelope"])
    header = json.loads(pc.b64u_decode(forged["hdr"]))
    forged["hdr"] = pc.b64u_encode(json.dumps({**header, "epk": off_curve}, separators=(",", ":")).encode())
    with pytest.raises(pc.CryptoRefused, match="not a point"):
        pc.validate_envelope(json.dumps(forged), "tk-sealed", ids)


def test_enrol_seal_and_passphrase_change_in_python() -> None:
    enrolment = pc.enrol("first passphrase", "u1")
    record = enrolment.record
    tk = b"\x07" * 32
    sealed = pc.seal_to_public_key(pc.b64u_decode(record["public_key"]), tk, "u1", "t1")
    body = pc.seal_transcript(tk, {"text": "hello"}, "u1", "t1")
    assert "auth_key" not in record  # nothing derived from the passphrase goes to the server but wrapped keys
    change = pc.change_passphrase("first passphrase", "second passphrase", record, "u1")
    assert set(change) == {"kdf", "wrapped_dk"}
    changed = {**record, **change}
    assert changed["kdf"]["salt"] != record["kdf"]["salt"]
    with pytest.raises(pc.CryptoRefused, match="wrong key"):
        pc.unwrap_data_key(
            pc.derive_keys("first passphrase", pc.KdfParams.from_json(changed["kdf"])).kek, changed["wrapped_dk"], "u1"
        )
    dk = pc.unwrap_data_key(
        pc.derive_keys("second passphrase", pc.KdfParams.from_json(changed["kdf"])).kek, changed["wrapped_dk"], "u1"
    )
    pkcs8 = pc.unwrap_private_key(dk, changed["wrapped_private_key"], "u1")
    assert pc.open_transcript(pc.unseal_with_private_key(pkcs8, sealed, "u1", "t1"), body, "u1", "t1") == {"text": "hello"}


def test_the_server_can_tell_a_passphrase_that_is_the_password() -> None:
    record = pc.enrol("the sign-in password", "u1", iterations=pc.MIN_ITERATIONS).record
    assert pc.opens_data_key("the sign-in password", record["kdf"], record["wrapped_dk"], "u1")
    assert not pc.opens_data_key("another secret", record["kdf"], record["wrapped_dk"], "u1")
    assert not pc.opens_data_key("the sign-in password", record["kdf"], record["wrapped_dk"], "someone else")
