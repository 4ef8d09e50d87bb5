"""The install-time signature check (appliance/distribution/minisign.py) against Project Wycheproof's Ed25519
vectors: the pure-Python verifier that runs on the customer's bare python3 when checking an offline
bundle, and the `cryptography` path the appliance itself uses, must both give Wycheproof's answer for
every case (non-canonical points, small-order keys, S >= L malleability, wrong lengths)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.distribution import minisign

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "wycheproof" / "ed25519_test.json").read_text())
CASES = [(group["publicKey"]["pk"], test) for group in VECTORS["testGroups"] for test in group["tests"]]


def test_the_vector_file_is_complete() -> None:
    assert VECTORS["algorithm"] == "EDDSA" and len(CASES) == VECTORS["numberOfTests"] == 151
    assert {t["result"] for _, t in CASES} == {"valid", "invalid"}


@pytest.mark.parametrize(("public", "case"), CASES, ids=[f"tc{t['tcId']}" for _, t in CASES])
def test_both_verifiers_agree_with_wycheproof(public: str, case: dict) -> None:  # type: ignore[type-arg]
    key, signature, message = bytes.fromhex(public), bytes.fromhex(case["sig"]), bytes.fromhex(case["msg"])
    expected = case["result"] == "valid"
    assert minisign.pure_ed25519_verify(key, signature, message) is expected, case["comment"]
    assert minisign._ed25519_verify(key, signature, message) is expected, case["comment"]
