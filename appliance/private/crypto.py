"""Private transcripts, the Python side of the cryptography: the same primitives and envelope format as
`web/static/sotto-crypto-0.1.js`, byte for byte (known-answer vectors in tests/data hold both to it).

The server uses only `validate_envelope` (structure, no keys) and `seal_to_public_key` (the worker
seals a finished transcript to its owner). Everything else exists so tests can act as the browser:
derive keys from a password, unwrap, open, and check what the JavaScript produced.

Envelope (JSON text): {"v":1,"alg":"A256GCM","hdr":b64url(header JSON),"iv":b64url(12 bytes),"ct":b64url(ct||tag)}.
The header bytes are the GCM associated data and are never re-serialised: both sides authenticate
exactly the bytes that are stored.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

VERSION = 1
ALG = "A256GCM"
KDF_ALG = "PBKDF2-SHA-256"
MIN_ITERATIONS = 600_000  # OWASP's figure for PBKDF2-HMAC-SHA256; the browser refuses anything lower
MAX_ITERATIONS = 10_000_000  # a server asking for more is trying to hang the browser
SALT_BYTES = 16
KEY_BYTES = 32
IV_BYTES = 12
TAG_BYTES = 16
POINT_BYTES = 65  # an uncompressed P-256 point: 0x04 || X || Y
TYPES = ("dk", "dk-recovery", "tk", "tk-sealed", "transcript", "share", "sk")
ID_FIELDS = ("uid", "tid", "sid")
# The order fields are written in, so two implementations produce the same header bytes.
HEADER_ORDER = ("v", "typ", "uid", "tid", "sid", "cty", "z", "epk")
ENVELOPE_KEYS = ("v", "alg", "hdr", "iv", "ct")
MAX_KEY_CT = 512  # a wrapped 32-byte key is 48 bytes; a wrapped P-256 PKCS#8 key about 154
MAX_DOCUMENT_CT = 48 * 1024 * 1024
# HKDF info strings: one per purpose, so no two derived keys can ever coincide.
INFO_KEK = b"sotto/v1 kek"
INFO_AUTH = b"sotto/v1 auth"
INFO_RECOVERY = b"sotto/v1 recovery-kek"
INFO_SEAL = b"sotto/v1 tk-sealed"
ZERO_SALT = bytes(32)  # HKDF salt where the input key is already uniformly random (recovery key)
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


class CryptoRefused(ValueError):
    """An envelope or parameter set is refused; `code` says why (same codes as the JS module):
    malformed, version, algorithm, type, ids, weak-kdf, decrypt."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- encodings


def b64u_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Strict: the URL-safe alphabet, no padding, and the canonical encoding only (no spare bits)."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise CryptoRefused("malformed", "not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise CryptoRefused("malformed", "not base64url") from None
    if b64u_encode(data) != text:
        raise CryptoRefused("malformed", "not canonical base64url")
    return data


def format_recovery_key(raw: bytes) -> str:
    """32 bytes as RFC 4648 base32 in groups of four, e.g. ABCD-EFGH-…: easy to copy by hand."""
    bits = "".join(f"{b:08b}" for b in raw)
    bits += "0" * (-len(bits) % 5)
    chars = "".join(_BASE32[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))
    return "-".join(chars[i : i + 4] for i in range(0, len(chars), 4))


def parse_recovery_key(text: str) -> bytes:
    chars = re.sub(r"[\s-]", "", text or "").upper()
    if len(chars) != 52 or any(c not in _BASE32 for c in chars):
        raise CryptoRefused("malformed", "a recovery key is 52 letters and digits")
    bits = "".join(f"{_BASE32.index(c):05b}" for c in chars)
    if int(bits[256:], 2):
        raise CryptoRefused("malformed", "not a recovery key")
    return bytes(int(bits[i : i + 8], 2) for i in range(0, 256, 8))


# --------------------------------------------------------------------------- password → keys


@dataclass(frozen=True)
class KdfParams:
    iterations: int
    salt: bytes
    alg: str = KDF_ALG

    def to_json(self) -> dict[str, Any]:
        return {"alg": self.alg, "iterations": self.iterations, "salt": b64u_encode(self.salt)}

    @classmethod
    def new(cls, iterations: int = MIN_ITERATIONS) -> KdfParams:
        return cls(iterations, os.urandom(SALT_BYTES))

    @classmethod
    def from_json(cls, value: Any) -> KdfParams:
        """Refuse anything weaker than the floor, exactly as the browser does."""
        if not isinstance(value, Mapping) or set(value) != {"alg", "iterations", "salt"}:
            raise CryptoRefused("malformed", "key derivation parameters need alg, iterations and salt")
        if value["alg"] != KDF_ALG:
            raise CryptoRefused("weak-kdf", f"unknown key derivation {value['alg']!r}")
        iterations = value["iterations"]
        if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < MIN_ITERATIONS:
            raise CryptoRefused("weak-kdf", f"key derivation needs at least {MIN_ITERATIONS} iterations")
        if iterations > MAX_ITERATIONS:
            raise CryptoRefused("weak-kdf", f"key derivation allows at most {MAX_ITERATIONS} iterations")
        salt = b64u_decode(value["salt"])
        if len(salt) != SALT_BYTES:
            raise CryptoRefused("weak-kdf", f"the salt must be {SALT_BYTES} bytes")
        return cls(iterations, salt)


@dataclass(frozen=True)
class DerivedKeys:
    kek: bytes  # wraps the data key; in the browser a non-extractable CryptoKey that never leaves it
    # What the browser once sent at sign-in instead of the password (accounts enrolled before private
    # transcripts had a passphrase of their own); now only derived to recognise such an old sign-in.
    auth_key: bytes

    @property
    def auth_key_text(self) -> str:
        return b64u_encode(self.auth_key)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(ikm)


def derive_keys(password: str, params: KdfParams) -> DerivedKeys:
    """PBKDF2 → master secret → HKDF with distinct info strings → KEK and auth key."""
    if params.iterations < MIN_ITERATIONS or len(params.salt) != SALT_BYTES:
        raise CryptoRefused("weak-kdf", "key derivation parameters below the floor")
    secret = unicodedata.normalize("NFC", password).encode("utf-8")
    master = PBKDF2HMAC(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=params.salt, iterations=params.iterations).derive(
        secret
    )
    return DerivedKeys(_hkdf(master, params.salt, INFO_KEK), _hkdf(master, params.salt, INFO_AUTH))


def recovery_kek(recovery_key: bytes) -> bytes:
    return _hkdf(recovery_key, ZERO_SALT, INFO_RECOVERY)


# --------------------------------------------------------------------------- envelopes


@dataclass(frozen=True)
class Envelope:
    header: dict[str, Any]
    hdr: bytes  # the header bytes exactly as stored: the associated data
    iv: bytes
    ct: bytes


def header_bytes(typ: str, ids: Mapping[str, str], extra: Mapping[str, str] | None = None) -> bytes:
    fields: dict[str, Any] = {"v": VERSION, "typ": typ, **ids, **(extra or {})}
    unknown = set(fields) - set(HEADER_ORDER)
    if unknown:
        raise ValueError(f"unknown header fields {sorted(unknown)}")
    ordered = {k: fields[k] for k in HEADER_ORDER if k in fields}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _serialise(hdr: bytes, iv: bytes, ct: bytes) -> str:
    return json.dumps(
        {"v": VERSION, "alg": ALG, "hdr": b64u_encode(hdr), "iv": b64u_encode(iv), "ct": b64u_encode(ct)}, separators=(",", ":")
    )


def seal(
    key: bytes,
    typ: str,
    ids: Mapping[str, str],
    plaintext: bytes,
    *,
    extra: Mapping[str, str] | None = None,
    iv: bytes | None = None,
) -> str:
    """Encrypt under a 32-byte key. A fixed `iv` is for known-answer tests only."""
    hdr = header_bytes(typ, ids, extra)
    iv = iv if iv is not None else os.urandom(IV_BYTES)
    return _serialise(hdr, iv, AESGCM(key).encrypt(iv, plaintext, hdr))


def validate_envelope(text: str | bytes, typ: str, ids: Mapping[str, str], *, max_ct: int | None = None) -> Envelope:
    """Check an envelope without any key: its shape, version, algorithm, and that the header's type and
    ids are exactly the ones expected (a record swapped in from elsewhere fails here)."""
    if max_ct is None:
        max_ct = MAX_DOCUMENT_CT if typ in {"transcript", "share"} else MAX_KEY_CT
    if isinstance(text, bytes):
        text = text.decode("utf-8", "strict")
    if not isinstance(text, str) or len(text) > max_ct * 4 // 3 + 4096:
        raise CryptoRefused("malformed", "the envelope is not text, or too large")
    try:
        outer = json.loads(text)
    except ValueError:
        raise CryptoRefused("malformed", "the envelope is not JSON") from None
    if not isinstance(outer, dict) or set(outer) != set(ENVELOPE_KEYS):
        raise CryptoRefused("malformed", f"an envelope has exactly the fields {', '.join(ENVELOPE_KEYS)}")
    if outer["v"] != VERSION or isinstance(outer["v"], bool):
        raise CryptoRefused("version", f"unknown envelope version {outer['v']!r}")
    if outer["alg"] != ALG:
        raise CryptoRefused("algorithm", f"unknown algorithm {outer['alg']!r}")
    hdr, iv, ct = b64u_decode(outer["hdr"]), b64u_decode(outer["iv"]), b64u_decode(outer["ct"])
    if len(iv) != IV_BYTES:
        raise CryptoRefused("malformed", f"the IV must be {IV_BYTES} bytes")
    if not TAG_BYTES <= len(ct) <= max_ct + TAG_BYTES:
        raise CryptoRefused("malformed", "the ciphertext has an impossible length")
    try:
        header = json.loads(hdr.decode("utf-8", "strict"))
    except (UnicodeDecodeError, ValueError):
        raise CryptoRefused("malformed", "the header is not UTF-8 JSON") from None
    if not isinstance(header, dict) or set(header) - set(HEADER_ORDER):
        raise CryptoRefused("malformed", "the header has unknown fields")
    if header.get("v") != VERSION or isinstance(header.get("v"), bool):
        raise CryptoRefused("version", f"unknown header version {header.get('v')!r}")
    if header.get("typ") != typ:
        raise CryptoRefused("type", f"expected a {typ!r} envelope, got {header.get('typ')!r}")
    present = {k: header[k] for k in ID_FIELDS if k in header}
    if present != dict(ids):
        raise CryptoRefused("ids", "the envelope belongs to another record")
    if any(not isinstance(v, str) or not _ID.match(v) for v in present.values()):
        raise CryptoRefused("malformed", "malformed ids in the header")
    if "z" in header and header["z"] != "gzip":
        raise CryptoRefused("malformed", "unknown compression")
    if typ == "tk-sealed":
        point = b64u_decode(header.get("epk", ""))
        check_public_key(point)
    elif "epk" in header:
        raise CryptoRefused("malformed", "an ephemeral key belongs only in a sealed key")
    if typ in {"dk", "dk-recovery", "tk", "tk-sealed"} and len(ct) != KEY_BYTES + TAG_BYTES:
        raise CryptoRefused("malformed", "a wrapped key is 48 bytes")
    return Envelope(header, hdr, iv, ct)


def open_envelope(key: bytes, text: str | bytes, typ: str, ids: Mapping[str, str]) -> tuple[dict[str, Any], bytes]:
    """Validate, then decrypt with the stored header bytes as associated data."""
    env = validate_envelope(text, typ, ids)
    try:
        return env.header, AESGCM(key).decrypt(env.iv, env.ct, env.hdr)
    except InvalidTag:
        raise CryptoRefused("decrypt", "wrong key, or the envelope was altered") from None


# --------------------------------------------------------------------------- the key hierarchy


def wrap_data_key(kek: bytes, dk: bytes, uid: str, *, iv: bytes | None = None) -> str:
    return seal(kek, "dk", {"uid": uid}, dk, iv=iv)


def unwrap_data_key(kek: bytes, text: str, uid: str) -> bytes:
    return open_envelope(kek, text, "dk", {"uid": uid})[1]


def wrap_data_key_for_recovery(recovery_key: bytes, dk: bytes, uid: str, *, iv: bytes | None = None) -> str:
    return seal(recovery_kek(recovery_key), "dk-recovery", {"uid": uid}, dk, iv=iv)


def unwrap_data_key_with_recovery(recovery_key: bytes, text: str, uid: str) -> bytes:
    return open_envelope(recovery_kek(recovery_key), text, "dk-recovery", {"uid": uid})[1]


def wrap_transcript_key(dk: bytes, tk: bytes, uid: str, tid: str, *, iv: bytes | None = None) -> str:
    return seal(dk, "tk", {"uid": uid, "tid": tid}, tk, iv=iv)


def unwrap_transcript_key(dk: bytes, text: str, uid: str, tid: str) -> bytes:
    return open_envelope(dk, text, "tk", {"uid": uid, "tid": tid})[1]


def new_key_pair() -> tuple[bytes, bytes]:
    """An ECDH P-256 key pair: (private key as PKCS#8 DER, public key as an uncompressed point)."""
    private = ec.generate_private_key(ec.SECP256R1())
    return private_pkcs8(private), public_point(private.public_key())


def private_pkcs8(private: ec.EllipticCurvePrivateKey) -> bytes:
    return private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def public_point(public: ec.EllipticCurvePublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def check_public_key(point: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key as an uncompressed point that lies on the curve."""
    if len(point) != POINT_BYTES or point[0] != 4:
        raise CryptoRefused("malformed", "a public key is an uncompressed P-256 point (65 bytes)")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise CryptoRefused("malformed", "the public key is not a point on P-256") from None


def wrap_private_key(dk: bytes, pkcs8: bytes, uid: str, *, iv: bytes | None = None) -> str:
    return seal(dk, "sk", {"uid": uid}, pkcs8, iv=iv)


def unwrap_private_key(dk: bytes, text: str, uid: str) -> bytes:
    return open_envelope(dk, text, "sk", {"uid": uid})[1]


def _seal_key(shared: bytes, epk: bytes, recipient: bytes) -> bytes:
    # Both public keys go into the salt, so the key is bound to this exact exchange.
    return _hkdf(shared, epk + recipient, INFO_SEAL)


def seal_to_public_key(
    public_key: bytes, tk: bytes, uid: str, tid: str, *, ephemeral_pkcs8: bytes | None = None, iv: bytes | None = None
) -> str:
    """Wrap a transcript key to a user's public key (ephemeral ECDH P-256 + HKDF → AES-256-GCM), so the
    worker can store a result nobody but that user can open. Fixed inputs are for known-answer tests."""
    recipient = check_public_key(public_key)
    if ephemeral_pkcs8 is None:
        ephemeral = ec.generate_private_key(ec.SECP256R1())
    else:
        loaded = serialization.load_der_private_key(ephemeral_pkcs8, None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ephemeral = loaded
    epk = public_point(ephemeral.public_key())
    key = _seal_key(ephemeral.exchange(ec.ECDH(), recipient), epk, public_key)
    return seal(key, "tk-sealed", {"uid": uid, "tid": tid}, tk, extra={"epk": b64u_encode(epk)}, iv=iv)


def unseal_with_private_key(pkcs8: bytes, text: str, uid: str, tid: str) -> bytes:
    env = validate_envelope(text, "tk-sealed", {"uid": uid, "tid": tid})
    private = serialization.load_der_private_key(pkcs8, None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    epk = b64u_decode(env.header["epk"])
    key = _seal_key(private.exchange(ec.ECDH(), check_public_key(epk)), epk, public_point(private.public_key()))
    return open_envelope(key, text, "tk-sealed", {"uid": uid, "tid": tid})[1]


# --------------------------------------------------------------------------- documents


def document_bytes(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def compress(data: bytes) -> bytes:
    # mtime=0: no timestamp in the gzip header, so the same document always compresses the same way here.
    return gzip.compress(data, compresslevel=6, mtime=0)


def seal_document(key: bytes, typ: str, ids: Mapping[str, str], payload: bytes, *, gzipped: bool, iv: bytes | None = None) -> str:
    """`payload` is the document's JSON bytes, already gzip-compressed when `gzipped`."""
    extra = {"cty": "application/json", **({"z": "gzip"} if gzipped else {})}
    return seal(key, typ, ids, payload, extra=extra, iv=iv)


def seal_transcript(tk: bytes, doc: Any, uid: str, tid: str, *, compressed: bool = True) -> str:
    raw = document_bytes(doc)
    return seal_document(tk, "transcript", {"uid": uid, "tid": tid}, compress(raw) if compressed else raw, gzipped=compressed)


def open_document(key: bytes, text: str, typ: str, ids: Mapping[str, str]) -> Any:
    header, payload = open_envelope(key, text, typ, ids)
    if header.get("cty") != "application/json":
        raise CryptoRefused("malformed", "not a JSON document")
    if header.get("z") == "gzip":
        payload = gzip.decompress(payload)
    return json.loads(payload.decode("utf-8"))


def open_transcript(tk: bytes, text: str, uid: str, tid: str) -> Any:
    return open_document(tk, text, "transcript", {"uid": uid, "tid": tid})


def seal_share(sk: bytes, doc: Any, sid: str) -> str:
    return seal_document(sk, "share", {"sid": sid}, compress(document_bytes(doc)), gzipped=True)


def open_share(sk: bytes, text: str, sid: str) -> Any:
    return open_document(sk, text, "share", {"sid": sid})


# --------------------------------------------------------------------------- whole records (what tests act out)


@dataclass(frozen=True)
class Enrolment:
    record: dict[str, Any]  # what the browser sends to the server (PUT /api/v1/me/private-keys)
    recovery_key: str  # shown once
    dk: bytes
    private_key: bytes  # PKCS#8


def enrol(passphrase: str, uid: str, *, iterations: int = MIN_ITERATIONS) -> Enrolment:
    """Everything the browser does when a user turns private transcripts on."""
    params = KdfParams.new(iterations)
    keys = derive_keys(passphrase, params)
    dk, recovery = os.urandom(KEY_BYTES), os.urandom(KEY_BYTES)
    pkcs8, public = new_key_pair()
    record = {
        "kdf": params.to_json(),
        "wrapped_dk": wrap_data_key(keys.kek, dk, uid),
        "recovery_dk": wrap_data_key_for_recovery(recovery, dk, uid),
        "public_key": b64u_encode(public),
        "wrapped_private_key": wrap_private_key(dk, pkcs8, uid),
    }
    return Enrolment(record, format_recovery_key(recovery), dk, pkcs8)


def change_passphrase(old_passphrase: str, new_passphrase: str, record: Mapping[str, Any], uid: str) -> dict[str, Any]:
    """New salt, new KEK, the same data key re-wrapped; nothing else changes."""
    dk = unwrap_data_key(derive_keys(old_passphrase, KdfParams.from_json(record["kdf"])).kek, record["wrapped_dk"], uid)
    params = KdfParams.new(max(MIN_ITERATIONS, record["kdf"]["iterations"]))
    return {"kdf": params.to_json(), "wrapped_dk": wrap_data_key(derive_keys(new_passphrase, params).kek, dk, uid)}


def opens_data_key(secret: str, kdf: Mapping[str, Any], wrapped_dk: str, uid: str) -> bool:
    """Whether `secret` is the passphrase of this wrapped data key: the server tries the sign-in password
    it was just given, to refuse a passphrase that is the same (the server sees that password)."""
    try:
        unwrap_data_key(derive_keys(secret, KdfParams.from_json(kdf)).kek, wrapped_dk, uid)
    except CryptoRefused:
        return False
    return True


@dataclass(frozen=True)
class Rekeyed:
    enrolment: Enrolment  # the new record, recovery key and keys
    owned: dict[str, str]  # transcript id → its key wrapped under the new data key ("tk")
    received: dict[str, str]  # transcript id → a teammate's key sealed again to the new public key ("tk-sealed")


def rekey(old_dk: bytes, old_pkcs8: bytes, new_passphrase: str, inventory: Mapping[str, Any], uid: str) -> Rekeyed:
    """What the browser does to leave a record wrapped under the sign-in password (sotto-crypto's rekey):
    a new record, and every transcript key the old keys open moved to the new ones."""
    fresh = enrol(new_passphrase, uid)
    owned, received = {}, {}
    for item in inventory["owned"]:
        tid = item["transcript_id"]
        tk = (
            unseal_with_private_key(old_pkcs8, item["key_envelope"], uid, tid)
            if item["kind"] == "tk-sealed"
            else unwrap_transcript_key(old_dk, item["key_envelope"], uid, tid)
        )
        owned[tid] = wrap_transcript_key(fresh.dk, tk, uid, tid)
    public = b64u_decode(fresh.record["public_key"])
    for item in inventory["received"]:
        tid = item["transcript_id"]
        received[tid] = seal_to_public_key(public, unseal_with_private_key(old_pkcs8, item["key_envelope"], uid, tid), uid, tid)
    return Rekeyed(fresh, owned, received)
