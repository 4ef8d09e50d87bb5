"""Second factors of local accounts: TOTP codes (RFC 6238) with one-time recovery codes, the per-role
requirement an admin sets, and the short-lived pending sign-in between a right password and the factor.
Passkeys are the other kind of factor (accounts/passkeys.py)."""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
import segno
import sqlite_utils

from appliance.accounts.users import ROLES, User
from appliance.core.clock import ago, now
from appliance.core.db import transaction

ISSUER = "Sotto"
RECOVERY_CODES = 10
PENDING_MINUTES = 5  # from the right password to the second factor
PENDING_FAILURES = 5  # wrong codes before a pending sign-in is void (the password is asked again)
# One step (30 s) either side of now: a phone's clock that is a little off still works.
DRIFT_STEPS = 1
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper


class FactorError(ValueError):
    """A request about second factors cannot be done; the message is safe to show."""


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, shown as text for authenticator apps without a camera
    uri: str  # otpauth:// URI, what the QR code holds
    qr_svg: str  # the QR code as an SVG document, made here (no script draws it)
    qr_data_uri: str  # the same SVG as a data: URI, for an <img> (the pages' CSP allows data: images)


# --------------------------------------------------------------------------- TOTP


def _totp_row(db: sqlite_utils.Database, user_id: str) -> dict[str, object] | None:
    rows = list(db.query("SELECT * FROM user_totp WHERE user_id = ?", [user_id]))
    return rows[0] if rows else None


def has_totp(db: sqlite_utils.Database, user_id: str) -> bool:
    row = _totp_row(db, user_id)
    return bool(row and row["confirmed_at"])


def start_totp(db: sqlite_utils.Database, user: User) -> Enrolment:
    """A new secret waiting for its first code; replaces an unconfirmed one."""
    if has_totp(db, user.id):
        raise FactorError("An authenticator app is already set up. Remove it first to set up another.")
    secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
    with transaction(db):
        db.execute("DELETE FROM user_totp WHERE user_id = ?", [user.id])
        db.table("user_totp").insert({"user_id": user.id, "secret": secret, "created_at": now()})
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    qr = segno.make(uri, error="m")
    svg = io.BytesIO()
    qr.save(svg, kind="svg", scale=4, border=2, xmldecl=False, svgns=True, title="QR code")
    return Enrolment(secret, uri, svg.getvalue().decode(), qr.svg_data_uri(scale=4, border=2))


def _accept_code(db: sqlite_utils.Database, user_id: str, code: str, *, confirmed: bool) -> bool:
    """A six-digit code for a time step within the drift window and newer than the last accepted one.
    The step is recorded in the same UPDATE that checks it, so the same code cannot pass twice, even
    from two requests at once."""
    code = "".join((code or "").split())
    row = _totp_row(db, user_id)
    if row is None or bool(row["confirmed_at"]) != confirmed or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(str(row["secret"]))
    current = totp.timecode(datetime.now(UTC))
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return (
                db.execute(
                    "UPDATE user_totp SET last_step = ? WHERE user_id = ? AND last_step < ?", [step, user_id, step]
                ).rowcount
                == 1
            )
    return False


def confirm_totp(db: sqlite_utils.Database, user_id: str, code: str) -> list[str]:
    """The first code proves the app holds the secret; the recovery codes come with it (shown once)."""
    if not _accept_code(db, user_id, code, confirmed=False):
        raise FactorError("That code is not right. Type the six digits your app shows now.")
    db.execute("UPDATE user_totp SET confirmed_at = ? WHERE user_id = ?", [now(), user_id])
    return new_recovery_codes(db, user_id)


def remove_totp(db: sqlite_utils.Database, user_id: str) -> None:
    """The app and the recovery codes that belong to the account's factors go; passkeys stay."""
    with transaction(db):
        db.execute("DELETE FROM user_totp WHERE user_id = ?", [user_id])
        if not db.execute("SELECT 1 FROM passkeys WHERE user_id = ?", [user_id]).fetchone():
            db.execute("DELETE FROM recovery_codes WHERE user_id = ?", [user_id])


# --------------------------------------------------------------------------- recovery codes


def _code_hash(code: str) -> str:
    # Codes are random (50 bits) and single use: a plain hash is enough, no password hashing needed.
    return hashlib.sha256("".join(code.lower().split()).replace("-", "").encode()).hexdigest()


def new_recovery_codes(db: sqlite_utils.Database, user_id: str) -> list[str]:
    """Ten fresh codes replace any earlier ones; only their hashes are stored."""
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    shown = [f"{c[:5]}-{c[5:]}" for c in codes]
    with transaction(db):
        db.execute("DELETE FROM recovery_codes WHERE user_id = ?", [user_id])
        for code in codes:
            db.table("recovery_codes").insert({"user_id": user_id, "code_hash": _code_hash(code)})
    return shown


def recovery_codes_left(db: sqlite_utils.Database, user_id: str) -> int:
    return int(
        next(iter(db.query("SELECT count(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", [user_id])))["n"]
    )


def _use_recovery_code(db: sqlite_utils.Database, user_id: str, code: str) -> bool:
    return (
        db.execute(
            "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
            [now(), user_id, _code_hash(code or "")],
        ).rowcount
        == 1
    )


def verify_code(db: sqlite_utils.Database, user_id: str, code: str) -> str | None:
    """A code typed as the second factor: "totp" or "recovery" for the kind it was, None if wrong."""
    if _accept_code(db, user_id, code, confirmed=True):
        return "totp"
    if len("".join((code or "").split())) > 6 and _use_recovery_code(db, user_id, code):
        return "recovery"
    return None


# --------------------------------------------------------------------------- which factors, which roles


def has_factor(db: sqlite_utils.Database, user_id: str) -> bool:
    return has_totp(db, user_id) or bool(db.execute("SELECT 1 FROM passkeys WHERE user_id = ?", [user_id]).fetchone())


def users_with_factor(db: sqlite_utils.Database) -> set[str]:
    """Ids of the users who have a confirmed app or a passkey (the admin's Users page)."""
    rows = db.query("SELECT user_id FROM user_totp WHERE confirmed_at IS NOT NULL UNION SELECT user_id FROM passkeys")
    return {r["user_id"] for r in rows}


def required_roles(db: sqlite_utils.Database) -> set[str]:
    return {r["role"] for r in db.query("SELECT role FROM second_factor_policy")}


def set_required_roles(db: sqlite_utils.Database, roles: set[str]) -> None:
    unknown = roles - set(ROLES)
    if unknown:
        raise FactorError(f"Unknown role: {', '.join(sorted(unknown))}. Roles are {', '.join(ROLES)}.")
    with transaction(db):
        db.execute("DELETE FROM second_factor_policy")
        for role in sorted(roles):
            db.table("second_factor_policy").insert({"role": role})


def enrolment_needed(db: sqlite_utils.Database, user: User) -> bool:
    """The user's role requires a second factor and they have none yet. Single sign-on accounts are
    not asked: their provider decides how they prove who they are (its own MFA policy)."""
    required = db.execute(
        "SELECT 1 FROM second_factor_policy p JOIN users u ON u.role = p.role WHERE u.id = ? AND u.source != 'oidc'", [user.id]
    ).fetchone()
    return bool(required) and not has_factor(db, user.id)


def reset(db: sqlite_utils.Database, user_id: str) -> None:
    """An admin's way back in for someone who lost every factor: all of them go."""
    with transaction(db):
        for table in ("user_totp", "recovery_codes", "passkeys", "webauthn_challenges", "pending_logins"):
            db.execute(f"DELETE FROM {table} WHERE user_id = ?", [user_id])


# --------------------------------------------------------------------------- pending sign-ins


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def begin_pending(db: sqlite_utils.Database, user_id: str) -> str:
    """After the right password: a token the second step presents instead of the password."""
    token = secrets.token_urlsafe(32)
    db.execute("DELETE FROM pending_logins WHERE expires_at < ?", [now()])
    db.table("pending_logins").insert(
        {"id": _token_hash(token), "user_id": user_id, "expires_at": ago(-PENDING_MINUTES), "failures": 0}
    )
    return token


def pending_user(db: sqlite_utils.Database, token: str) -> str | None:
    """The user a pending sign-in is for, while it is valid."""
    rows = list(
        db.query("SELECT user_id FROM pending_logins WHERE id = ? AND expires_at >= ?", [_token_hash(token or ""), now()])
    )
    return rows[0]["user_id"] if rows else None


def pending_failed(db: sqlite_utils.Database, token: str) -> None:
    """A wrong code: counted; after PENDING_FAILURES the pending sign-in is gone (back to the password,
    which has its own lockout)."""
    token_id = _token_hash(token or "")
    db.execute("UPDATE pending_logins SET failures = failures + 1 WHERE id = ?", [token_id])
    db.execute("DELETE FROM pending_logins WHERE id = ? AND failures >= ?", [token_id, PENDING_FAILURES])


def finish_pending(db: sqlite_utils.Database, token: str) -> bool:
    """Take the pending sign-in (once: a second request with the same token gets False)."""
    return (
        db.execute("DELETE FROM pending_logins WHERE id = ? AND expires_at >= ?", [_token_hash(token or ""), now()]).rowcount == 1
    )
