"""Passkeys and security keys (WebAuthn) as the second factor of a local account: the registration and
authentication ceremonies, with each challenge kept here (never trusted from the browser) and taken
once; the relying party's id and origins come from the settings."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import sqlite_utils
import webauthn
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from appliance.accounts.users import User
from appliance.core.clock import ago, now

CHALLENGE_MINUTES = 5
MAX_NAME = 60


class PasskeyError(ValueError):
    """A passkey request cannot be done; the message is safe to show."""


@dataclass(frozen=True)
class RelyingParty:
    id: str  # the domain the passkeys are bound to ("sotto.example.org"; "localhost" in development)
    name: str
    origins: tuple[str, ...]  # what the browser reports as the page's origin, e.g. https://sotto.example.org


def _store_challenge(db: sqlite_utils.Database, user_id: str, purpose: str, challenge: bytes) -> None:
    db.execute(
        "INSERT OR REPLACE INTO webauthn_challenges (user_id, purpose, challenge, expires_at) VALUES (?, ?, ?, ?)",
        [user_id, purpose, challenge, ago(-CHALLENGE_MINUTES)],
    )


def _take_challenge(db: sqlite_utils.Database, user_id: str, purpose: str) -> bytes:
    """The outstanding challenge, deleted in the same statement: an answer can be checked once."""
    row = db.execute(
        "DELETE FROM webauthn_challenges WHERE user_id = ? AND purpose = ? RETURNING challenge, expires_at", [user_id, purpose]
    ).fetchone()
    if row is None or row[1] < now():
        raise PasskeyError("This request has expired or was already used. Please try again.")
    return bytes(row[0])


def _descriptors(db: sqlite_utils.Database, user_id: str) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(id=webauthn.base64url_to_bytes(r["id"]))
        for r in db.query("SELECT id FROM passkeys WHERE user_id = ?", [user_id])
    ]


def registration_options(db: sqlite_utils.Database, rp: RelyingParty, user: User) -> dict[str, Any]:
    """What navigator.credentials.create() needs (as JSON), its challenge kept for the answer."""
    options = webauthn.generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=user.email,
        user_id=user.id.encode(),
        challenge=secrets.token_bytes(32),
        exclude_credentials=_descriptors(db, user.id),  # the same key twice would be one factor counted twice
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED
        ),
    )
    _store_challenge(db, user.id, "register", options.challenge)
    return dict(json.loads(webauthn.options_to_json(options)))


def register(db: sqlite_utils.Database, rp: RelyingParty, user: User, credential: dict[str, Any], name: str) -> dict[str, Any]:
    name = " ".join((name or "").split())[:MAX_NAME] or "Security key"
    challenge = _take_challenge(db, user.id, "register")
    try:
        verified = webauthn.verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp.id, expected_origin=list(rp.origins)
        )
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise PasskeyError(f"The browser's answer could not be verified: {exc}") from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if db.execute("SELECT 1 FROM passkeys WHERE id = ?", [credential_id]).fetchone():
        raise PasskeyError("This passkey is already registered.")
    transports = credential.get("response", {}).get("transports") or []
    record = {
        "id": credential_id,
        "user_id": user.id,
        "name": name,
        "public_key": verified.credential_public_key,
        "sign_count": verified.sign_count,
        "transports": json.dumps([t for t in transports if isinstance(t, str)][:8]),
        "created_at": now(),
    }
    db.table("passkeys").insert(record)
    return {"id": credential_id, "name": name, "created_at": record["created_at"], "last_used_at": None}


def authentication_options(db: sqlite_utils.Database, rp: RelyingParty, user_id: str) -> dict[str, Any]:
    """What navigator.credentials.get() needs to prove one of this user's passkeys."""
    allowed = _descriptors(db, user_id)
    if not allowed:
        raise PasskeyError("This account has no passkey.")
    options = webauthn.generate_authentication_options(
        rp_id=rp.id,
        challenge=secrets.token_bytes(32),
        allow_credentials=allowed,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    _store_challenge(db, user_id, "authenticate", options.challenge)
    return dict(json.loads(webauthn.options_to_json(options)))


def authenticate(db: sqlite_utils.Database, rp: RelyingParty, user_id: str, credential: dict[str, Any]) -> str:
    """Check an answer to the outstanding challenge; the passkey's id when it is right."""
    challenge = _take_challenge(db, user_id, "authenticate")
    credential_id = str(credential.get("id") or credential.get("rawId") or "")
    rows = list(db.query("SELECT * FROM passkeys WHERE id = ? AND user_id = ?", [credential_id, user_id]))
    if not rows:
        raise PasskeyError("That passkey is not registered for this account.")
    stored = rows[0]
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            credential_public_key=bytes(stored["public_key"]),
            credential_current_sign_count=stored["sign_count"],
        )
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise PasskeyError(f"The passkey's answer could not be verified: {exc}") from None
    db.execute(
        "UPDATE passkeys SET sign_count = ?, last_used_at = ? WHERE id = ?", [verified.new_sign_count, now(), credential_id]
    )
    return credential_id


def for_user(db: sqlite_utils.Database, user_id: str) -> list[dict[str, Any]]:
    return list(
        db.query("SELECT id, name, created_at, last_used_at FROM passkeys WHERE user_id = ? ORDER BY created_at", [user_id])
    )


def rename(db: sqlite_utils.Database, user_id: str, passkey_id: str, name: str) -> bool:
    name = " ".join((name or "").split())[:MAX_NAME]
    if not name:
        raise PasskeyError("Give the passkey a name.")
    return db.execute("UPDATE passkeys SET name = ? WHERE id = ? AND user_id = ?", [name, passkey_id, user_id]).rowcount == 1


def remove(db: sqlite_utils.Database, user_id: str, passkey_id: str) -> bool:
    return db.execute("DELETE FROM passkeys WHERE id = ? AND user_id = ?", [passkey_id, user_id]).rowcount == 1
