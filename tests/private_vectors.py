"""Writes tests/data/private_vectors.json: known-answer vectors for private transcripts, made once with
the Python oracle from fixed inputs (salt, keys, IVs, ephemeral key), then committed. Both the oracle
and the JavaScript module must open every vector and reproduce every envelope byte for byte.

    .venv/bin/python tests/private_vectors.py      # only when the format changes on purpose
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric import ec

from appliance.private import crypto as pc

PATH = Path(__file__).parent / "data" / "private_vectors.json"
UID = "0b7e5c6a1f2d4e3b9a8c7d6e5f4a3b2c"
TID = "5d4c3b2a19f8e7d6c5b4a3928170f6e5"
SID = "share-7f3a"
PASSWORD = "correct horse battery staple ✓"  # non-ASCII on purpose: NFC, then UTF-8
NEW_PASSWORD = "a different passphrase entirely"
DOCUMENT = {
    "id": TID,
    "text": "Kant vivisects the marmalade.",
    "language": "en",
    "segments": [
        {
            "id": 0,
            "start": 0.5,
            "end": 2.25,
            "text": "Kant vivisects the marmalade.",
            "speaker": "S1",
            "words": [{"start": 0.5, "end": 0.9, "word": " Kant", "probability": 0.875}],
        }
    ],
    "speakers": [{"id": "S1", "label": "Speaker 1", "display_name": "Ännchen"}],
}


def _fixed(start: int, n: int) -> bytes:
    return bytes((start + i) % 256 for i in range(n))


def _pkcs8_from_scalar(scalar: int) -> bytes:
    return pc.private_pkcs8(ec.derive_private_key(scalar, ec.SECP256R1()))


def build() -> dict[str, Any]:
    kdf = pc.KdfParams(pc.MIN_ITERATIONS, _fixed(0x10, 16))
    keys = pc.derive_keys(PASSWORD, kdf)
    new_kdf = pc.KdfParams(pc.MIN_ITERATIONS, _fixed(0x90, 16))
    new_keys = pc.derive_keys(NEW_PASSWORD, new_kdf)
    dk, tk, sk, recovery = _fixed(0x20, 32), _fixed(0x40, 32), _fixed(0x60, 32), _fixed(0xA0, 32)
    user_pkcs8 = _pkcs8_from_scalar(0x1F2E3D4C5B6A79880102030405060708090A0B0C0D0E0F101112131415161718)
    user_public = pc.public_point(
        ec.derive_private_key(0x1F2E3D4C5B6A79880102030405060708090A0B0C0D0E0F101112131415161718, ec.SECP256R1()).public_key()
    )
    ephemeral_pkcs8 = _pkcs8_from_scalar(0x7A6B5C4D3E2F10010203040506070809A0B0C0D0E0F0010203040506070809)
    doc_raw = pc.document_bytes(DOCUMENT)
    doc_gzip = pc.compress(doc_raw)
    ivs = {
        name: _fixed(0xC0 + 13 * i, 12)
        for i, name in enumerate(
            ["dk", "dk-recovery", "tk", "sk", "tk-sealed", "transcript", "transcript-gzip", "share", "dk-new"]
        )
    }
    envelopes = [
        {
            "name": "dk",
            "typ": "dk",
            "ids": {"uid": UID},
            "key": "kek",
            "pt": dk,
            "envelope": pc.wrap_data_key(keys.kek, dk, UID, iv=ivs["dk"]),
        },
        {
            "name": "dk-recovery",
            "typ": "dk-recovery",
            "ids": {"uid": UID},
            "key": "recovery_kek",
            "pt": dk,
            "envelope": pc.wrap_data_key_for_recovery(recovery, dk, UID, iv=ivs["dk-recovery"]),
        },
        {
            "name": "tk",
            "typ": "tk",
            "ids": {"uid": UID, "tid": TID},
            "key": "dk",
            "pt": tk,
            "envelope": pc.wrap_transcript_key(dk, tk, UID, TID, iv=ivs["tk"]),
        },
        {
            "name": "sk",
            "typ": "sk",
            "ids": {"uid": UID},
            "key": "dk",
            "pt": user_pkcs8,
            "envelope": pc.wrap_private_key(dk, user_pkcs8, UID, iv=ivs["sk"]),
        },
        {
            "name": "tk-sealed",
            "typ": "tk-sealed",
            "ids": {"uid": UID, "tid": TID},
            "key": "user_private_key",
            "pt": tk,
            "envelope": pc.seal_to_public_key(user_public, tk, UID, TID, ephemeral_pkcs8=ephemeral_pkcs8, iv=ivs["tk-sealed"]),
        },
        {
            "name": "transcript",
            "typ": "transcript",
            "ids": {"uid": UID, "tid": TID},
            "key": "tk",
            "pt": doc_raw,
            "gzip": False,
            "envelope": pc.seal_document(
                tk, "transcript", {"uid": UID, "tid": TID}, doc_raw, gzipped=False, iv=ivs["transcript"]
            ),
        },
        {
            "name": "transcript-gzip",
            "typ": "transcript",
            "ids": {"uid": UID, "tid": TID},
            "key": "tk",
            "pt": doc_gzip,
            "gzip": True,
            "envelope": pc.seal_document(
                tk, "transcript", {"uid": UID, "tid": TID}, doc_gzip, gzipped=True, iv=ivs["transcript-gzip"]
            ),
        },
        {
            "name": "share",
            "typ": "share",
            "ids": {"sid": SID},
            "key": "sk_share",
            "pt": doc_gzip,
            "gzip": True,
            "envelope": pc.seal_document(sk, "share", {"sid": SID}, doc_gzip, gzipped=True, iv=ivs["share"]),
        },
        {
            "name": "dk-new-password",
            "typ": "dk",
            "ids": {"uid": UID},
            "key": "new_kek",
            "pt": dk,
            "envelope": pc.wrap_data_key(new_keys.kek, dk, UID, iv=ivs["dk-new"]),
        },
    ]
    for vector, iv in zip(envelopes, ivs.values(), strict=False):
        vector["iv"] = pc.b64u_encode(iv)
        vector["pt"] = pc.b64u_encode(vector["pt"])
    by_name = {v["name"]: v["envelope"] for v in envelopes}
    return {
        "about": "Known-answer vectors for Sotto private transcripts (appliance/private/crypto.py and "
        "appliance/web/static/sotto-crypto-0.1.js). Made by tests/private_vectors.py; do not edit by hand.",
        "uid": UID,
        "tid": TID,
        "sid": SID,
        "password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "kdf": kdf.to_json(),
        "new_kdf": new_kdf.to_json(),
        "auth_key": keys.auth_key_text,
        "new_auth_key": new_keys.auth_key_text,
        "kek": pc.b64u_encode(keys.kek),
        "new_kek": pc.b64u_encode(new_keys.kek),
        "dk": pc.b64u_encode(dk),
        "tk": pc.b64u_encode(tk),
        "sk_share": pc.b64u_encode(sk),
        "recovery_key": pc.format_recovery_key(recovery),
        "recovery_kek": pc.b64u_encode(pc.recovery_kek(recovery)),
        "user_private_key": pc.b64u_encode(user_pkcs8),
        "user_public_key": pc.b64u_encode(user_public),
        "ephemeral_private_key": pc.b64u_encode(ephemeral_pkcs8),
        "document": DOCUMENT,
        "envelopes": envelopes,
        "refusals": refusals(by_name),
        "kdf_refusals": [
            {
                "why": "iterations below the floor",
                "code": "weak-kdf",
                "params": {**kdf.to_json(), "iterations": pc.MIN_ITERATIONS - 1},
            },
            {"why": "short salt", "code": "weak-kdf", "params": {**kdf.to_json(), "salt": pc.b64u_encode(_fixed(0x10, 8))}},
            {"why": "unknown algorithm", "code": "weak-kdf", "params": {**kdf.to_json(), "alg": "PBKDF2-SHA-1"}},
            {"why": "iterations as text", "code": "weak-kdf", "params": {**kdf.to_json(), "iterations": "600000"}},
        ],
    }


def _mutate(envelope: str, **changes: Any) -> str:
    outer = json.loads(envelope)
    outer.update(changes)
    return json.dumps(outer, separators=(",", ":"))


def _flip(b64: str, index: int) -> str:
    raw = bytearray(pc.b64u_decode(b64))
    raw[index] ^= 0x01
    return pc.b64u_encode(bytes(raw))


def refusals(envelopes: dict[str, str]) -> list[dict[str, Any]]:
    """Envelopes both implementations must refuse, each with the reason code they must give."""
    tk_env, doc_env = envelopes["tk"], envelopes["transcript"]
    outer = json.loads(tk_env)
    other_tid = "ffffffffffffffffffffffffffffffff"
    header = json.loads(pc.b64u_decode(outer["hdr"]))
    forged_hdr = pc.b64u_encode(json.dumps({**header, "tid": other_tid}, separators=(",", ":")).encode())
    tk_ids, doc_ids = {"uid": UID, "tid": TID}, {"uid": UID, "tid": TID}
    return [
        {
            "why": "a flipped bit in the ciphertext",
            "typ": "tk",
            "ids": tk_ids,
            "key": "dk",
            "code": "decrypt",
            "envelope": _mutate(tk_env, ct=_flip(outer["ct"], 3)),
        },
        {
            "why": "a flipped bit in the tag",
            "typ": "tk",
            "ids": tk_ids,
            "key": "dk",
            "code": "decrypt",
            "envelope": _mutate(tk_env, ct=_flip(outer["ct"], 40)),
        },
        {
            "why": "a flipped bit in the IV",
            "typ": "tk",
            "ids": tk_ids,
            "key": "dk",
            "code": "decrypt",
            "envelope": _mutate(tk_env, iv=_flip(outer["iv"], 0)),
        },
        {
            "why": "the header rewritten to another transcript (tag no longer matches)",
            "typ": "tk",
            "ids": {"uid": UID, "tid": other_tid},
            "key": "dk",
            "code": "decrypt",
            "envelope": _mutate(tk_env, hdr=forged_hdr),
        },
        {
            "why": "a record swapped in from another transcript",
            "typ": "tk",
            "ids": {"uid": UID, "tid": other_tid},
            "key": "dk",
            "code": "ids",
            "envelope": tk_env,
        },
        {
            "why": "a transcript key where a data key was expected",
            "typ": "dk",
            "ids": {"uid": UID},
            "key": "kek",
            "code": "type",
            "envelope": tk_env,
        },
        {
            "why": "an unknown envelope version",
            "typ": "tk",
            "ids": tk_ids,
            "key": "dk",
            "code": "version",
            "envelope": _mutate(tk_env, v=2),
        },
        {
            "why": "an unknown algorithm",
            "typ": "tk",
            "ids": tk_ids,
            "key": "dk",
            "code": "algorithm",
            "envelope": _mutate(tk_env, alg="A128GCM"),
        },
        {
            "why": "a short IV",
            "typ": "tk",
            "ids": tk_ids,
            "key": "dk",
            "code": "malformed",
            "envelope": _mutate(tk_env, iv=pc.b64u_encode(bytes(8))),
        },
        {
            "why": "padded base64",
            "typ": "tk",
            "ids": tk_ids,
            "key": "dk",
            "code": "malformed",
            "envelope": _mutate(tk_env, iv=outer["iv"] + "=="),
        },
        {
            "why": "an extra field",
            "typ": "tk",
            "ids": tk_ids,
            "key": "dk",
            "code": "malformed",
            "envelope": tk_env[:-1] + ',"x":1}',
        },
        {"why": "not JSON", "typ": "tk", "ids": tk_ids, "key": "dk", "code": "malformed", "envelope": "tk:" + outer["ct"]},
        {
            "why": "a wrong key (another user's data key)",
            "typ": "transcript",
            "ids": doc_ids,
            "key": "sk_share",
            "code": "decrypt",
            "envelope": doc_env,
        },
    ]


if __name__ == "__main__":
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {PATH}")
