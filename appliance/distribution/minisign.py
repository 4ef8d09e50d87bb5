"""minisign-compatible Ed25519 signatures: keys, signing and verification.

Verification uses only the standard library (with `cryptography` when it is importable, else a small
pure-Python Ed25519 check), because the bundle's verifier runs with the customer's system python3,
not our virtual environment. Signing needs `cryptography`; it only happens on Sotto's side.

Formats (as written and read by the `minisign` tool):
- public key: "untrusted comment: ..." then base64(b"Ed" + key id (8) + public key (32))
- signature: "untrusted comment: ..." / base64(algorithm (b"ED" prehashed, b"Ed" legacy) + key id +
  signature (64)) / "trusted comment: ..." / base64(global signature over signature + trusted comment)
- secret key: base64(b"Ed" + kdf (b"Sc" or two zero bytes) + b"B2" + salt (32) + opslimit (8) +
  memlimit (8) + [key id (8) + secret key (64) + BLAKE2b-256 checksum (32)], the bracket XORed with
  scrypt output when encrypted)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

UNTRUSTED = "untrusted comment: "
TRUSTED = "trusted comment: "
PREHASHED = b"ED"
LEGACY = b"Ed"
KDF_SCRYPT = b"Sc"
KDF_NONE = b"\x00\x00"


class SignatureError(ValueError):
    """A key or signature is malformed, from an unknown key, or does not match; the message says which."""


def _b64(line: str, what: str) -> bytes:
    try:
        return base64.b64decode(line.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"the {what} is not valid base64") from None


@dataclass(frozen=True)
class PublicKey:
    key_id: bytes  # 8 bytes, in file order
    key: bytes  # 32 bytes

    @property
    def hex_id(self) -> str:
        """The id as minisign prints it (the 8 bytes read as a little-endian integer)."""
        return self.key_id[::-1].hex().upper()

    def to_text(self) -> str:
        blob = base64.b64encode(LEGACY + self.key_id + self.key).decode()
        return f"{UNTRUSTED}minisign public key {self.hex_id}\n{blob}\n"

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        """A public key file, or its base64 line alone (what `minisign -P` takes)."""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        if lines and lines[0].startswith(UNTRUSTED):
            lines = lines[1:]
        if len(lines) != 1:
            raise SignatureError("a public key is one base64 line (optionally after an untrusted comment)")
        raw = _b64(lines[0], "public key")
        if len(raw) != 42 or raw[:2] != LEGACY:
            raise SignatureError("not a minisign Ed25519 public key")
        return cls(raw[2:10], raw[10:])


@dataclass(frozen=True)
class Signature:
    algorithm: bytes
    key_id: bytes
    signature: bytes
    trusted_comment: str
    global_signature: bytes
    untrusted_comment: str

    @classmethod
    def from_text(cls, text: str) -> Signature:
        lines = text.splitlines()
        if len(lines) < 4 or not lines[0].startswith(UNTRUSTED) or not lines[2].startswith(TRUSTED):
            raise SignatureError(
                "not a minisign signature (expected 4 lines: comment, signature, trusted comment, global signature)"
            )
        raw = _b64(lines[1], "signature")
        if len(raw) != 74 or raw[:2] not in (PREHASHED, LEGACY):
            raise SignatureError("not a minisign Ed25519 signature")
        global_sig = _b64(lines[3], "global signature")
        if len(global_sig) != 64:
            raise SignatureError("the global signature has the wrong length")
        return cls(raw[:2], raw[2:10], raw[10:], lines[2][len(TRUSTED) :], global_sig, lines[0][len(UNTRUSTED) :])


# --------------------------------------------------------------------------- pure-Python Ed25519 check
# RFC 8032 verification in extended twisted-Edwards coordinates. Slow (tens of milliseconds) and not
# constant-time, which is fine: it only checks public data, once per bundle.

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]  # typing.Tuple: the customer's python3 may predate tuple[...]


def _add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    k = (y1 - x1) * (y2 - x2) % _P
    m = (y1 + x1) * (y2 + x2) % _P
    c = 2 * _D * t1 * t2 % _P
    dd = 2 * z1 * z2 % _P
    e, f, g, h = m - k, dd - c, dd + c, m + k
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _multiply(scalar: int, point: _Point) -> _Point:
    result: _Point = (0, 1, 1, 0)  # the neutral element
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _decompress(encoded: bytes) -> _Point | None:
    if len(encoded) != 32:
        return None
    y = int.from_bytes(encoded, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P or (x == 0 and sign):
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y, 1, x * y % _P


def _same(a: _Point, b: _Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


_BY = 4 * pow(5, _P - 2, _P) % _P
_BASE = _decompress(_BY.to_bytes(32, "little"))


def pure_ed25519_verify(public: bytes, signature: bytes, message: bytes) -> bool:
    """Is `signature` a valid Ed25519 signature of `message` by `public` (cofactorless check)?"""
    if len(signature) != 64 or _BASE is None:
        return False
    a, r = _decompress(public), _decompress(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    return _same(_multiply(s, _BASE), _add(r, _multiply(h, a)))


def _ed25519_verify(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:  # the customer's python3, without our environment
        return pure_ed25519_verify(public, signature, message)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify(data: bytes, signature_text: str, keys: Iterable[PublicKey]) -> Signature:
    """Check `data` against a minisign signature made by one of `keys`; return the parsed signature."""
    sig = Signature.from_text(signature_text)
    key = next((k for k in keys if hmac.compare_digest(k.key_id, sig.key_id)), None)
    if key is None:
        raise SignatureError(f"signed by an unknown key (id {sig.key_id[::-1].hex().upper()})")
    message = hashlib.blake2b(data, digest_size=64).digest() if sig.algorithm == PREHASHED else data
    if not _ed25519_verify(key.key, sig.signature, message):
        raise SignatureError("the signature does not match the data")
    # The trusted comment (timestamp, file name) is bound to the signature by the global signature.
    if not _ed25519_verify(key.key, sig.global_signature, sig.signature + sig.trusted_comment.encode()):
        raise SignatureError("the trusted comment does not match its signature")
    return sig


# --------------------------------------------------------------------------- signing (Sotto's side)


@dataclass(frozen=True)
class SecretKey:
    key_id: bytes
    seed: bytes  # the 32-byte Ed25519 private seed

    def _private(self):  # type: ignore[no-untyped-def]
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public(self) -> PublicKey:
        from cryptography.hazmat.primitives import serialization

        raw = self._private().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey(self.key_id, raw)

    def sign(
        self,
        data: bytes,
        trusted_comment: str | None = None,
        untrusted_comment: str = "signature from the Sotto release key",
        prehashed: bool = True,
    ) -> str:
        """A minisign signature file's text for `data` (prehashed like minisign 0.10+ by default)."""
        if trusted_comment is None:
            trusted_comment = f"timestamp:{int(time.time())}"
        if "\n" in trusted_comment or "\n" in untrusted_comment:
            raise SignatureError("comments must be one line")
        private = self._private()
        message = hashlib.blake2b(data, digest_size=64).digest() if prehashed else data
        signature = private.sign(message)
        global_sig = private.sign(signature + trusted_comment.encode())
        algorithm = PREHASHED if prehashed else LEGACY
        return (
            f"{UNTRUSTED}{untrusted_comment}\n{base64.b64encode(algorithm + self.key_id + signature).decode()}\n"
            f"{TRUSTED}{trusted_comment}\n{base64.b64encode(global_sig).decode()}\n"
        )

    def to_text(self) -> str:
        """An unencrypted minisign secret key file (like `minisign -G -W`): keep it offline."""
        # minisign leaves the checksum zero in unencrypted keys; the public half is checked instead.
        blob = LEGACY + KDF_NONE + b"B2" + bytes(32) + bytes(16) + self.key_id + self.seed + self.public.key + bytes(32)
        return f"{UNTRUSTED}minisign secret key {self.public.hex_id} (unencrypted)\n{base64.b64encode(blob).decode()}\n"


def generate() -> SecretKey:
    return SecretKey(os.urandom(8), os.urandom(32))


def _scrypt_params(opslimit: int, memlimit: int) -> tuple[int, int, int]:
    """libsodium's scryptsalsa208sha256 mapping of (opslimit, memlimit) to scrypt (N, r, p)."""
    opslimit = max(opslimit, 32768)
    r = 8
    if opslimit < memlimit // 32:
        p = 1
        max_n = opslimit // (r * 4)
    else:
        max_n = memlimit // (r * 128)
    n_log2 = 1
    while n_log2 < 63 and (1 << n_log2) <= max_n // 2:
        n_log2 += 1
    if opslimit >= memlimit // 32:
        p = min((opslimit // 4) // (1 << n_log2), 0x3FFFFFFF) // r
    return 1 << n_log2, r, p


def load_secret_key(text: str, password: str | None = None) -> SecretKey:
    """Read a minisign secret key file (encrypted with scrypt, or unencrypted)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) != 2 or not lines[0].startswith(UNTRUSTED):
        raise SignatureError("not a minisign secret key file")
    raw = _b64(lines[1], "secret key")
    if len(raw) != 158 or raw[:2] != LEGACY or raw[4:6] != b"B2":
        raise SignatureError("not a minisign Ed25519 secret key")
    kdf, salt = raw[2:4], raw[6:38]
    opslimit, memlimit = int.from_bytes(raw[38:46], "little"), int.from_bytes(raw[46:54], "little")
    body = raw[54:]
    if kdf == KDF_SCRYPT:
        if password is None:
            raise SignatureError("this secret key is encrypted: a password is needed")
        n, r, p = _scrypt_params(opslimit, memlimit)
        stream = hashlib.scrypt(
            password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(body), maxmem=128 * r * (n + p + 2) + 2**20
        )
        body = bytes(a ^ b for a, b in zip(body, stream, strict=True))
    elif kdf != KDF_NONE:
        raise SignatureError("unknown key derivation in the secret key")
    key_id, sk, checksum = body[:8], body[8:72], body[72:]
    unchecked = kdf == KDF_NONE and checksum == bytes(32)  # minisign -W writes no checksum
    if not unchecked and not hmac.compare_digest(hashlib.blake2b(LEGACY + key_id + sk, digest_size=32).digest(), checksum):
        raise SignatureError("wrong password, or a damaged secret key")
    key = SecretKey(key_id, sk[:32])
    if key.public.key != sk[32:]:
        raise SignatureError("the secret key's public half does not match")
    return key


def load_signing_key(text: str, password: str | None = None) -> SecretKey:
    """A minisign secret key file, or a PKCS#8 PEM Ed25519 key (the vendor tool's format).

    A PEM key has no minisign key id; it gets the first 8 bytes of BLAKE2b(public key), so the
    same key always has the same id.
    """
    if "-----BEGIN" not in text:
        return load_secret_key(text, password)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        private = serialization.load_pem_private_key(text.encode(), password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"cannot read the PEM key: {exc}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SignatureError("the PEM key is not an Ed25519 key")
    seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SecretKey(hashlib.blake2b(public, digest_size=8).digest(), seed)
