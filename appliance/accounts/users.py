"""Users: Argon2id passwords, roles, sign-in with lockout, invites, disabling, deletion."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance.accounts import workspaces
from appliance.core.clock import new_id, now
from appliance.core.db import transaction

ROLES = ("admin", "member", "viewer")
MIN_PASSWORD = 10
_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so a wrong address costs as long as a wrong
    password. Made on first use: hashing at import would add its cost to every start-up."""
    return _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A request about accounts cannot be done; the message is safe to show."""


@dataclass(frozen=True)
class User:
    id: str
    email: str
    role: str
    disabled: bool
    personal_workspace_id: str | None = None
    language: str | None = None  # the UI language they chose; None: their browser's

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "disabled": self.disabled,
            "personal_workspace_id": self.personal_workspace_id,
            "language": self.language,
        }


def _user(row: dict[str, Any], db: sqlite_utils.Database) -> User:
    personal = list(db.query("SELECT id FROM workspaces WHERE personal_user_id = ?", [row["id"]]))
    return User(
        row["id"], row["email"], row["role"], bool(row["disabled"]), personal[0]["id"] if personal else None, row.get("language")
    )


def set_language(db: sqlite_utils.Database, user_id: str, language: str | None) -> None:
    """The UI language a person chose (checked against the UI's languages by the caller); None: automatic."""
    db.execute("UPDATE users SET language = ? WHERE id = ?", [language, user_id])


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise AccountError("Please give a valid e-mail address.")
    return email


def check_password_strength(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"Passwords need at least {MIN_PASSWORD} characters.")
    if len(password) > 1024:
        raise AccountError("That password is too long.")


def count(db: sqlite_utils.Database) -> int:
    return next(iter(db.query("SELECT count(*) AS n FROM users")))["n"]


def create(db: sqlite_utils.Database, email: str, password: str, role: str = "member") -> User:
    """A new user with a personal workspace."""
    email = normalise_email(email)
    check_password_strength(password)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if list(db.query("SELECT 1 FROM users WHERE email = ?", [email])):
        raise AccountError("A user with that e-mail address already exists.")
    user_id = new_id()
    stamp = now()
    with transaction(db):
        db.table("users").insert(
            {
                "id": user_id,
                "email": email,
                "password_hash": _hasher.hash(password),
                "role": role,
                "disabled": 0,
                "failed_logins": 0,
                "created_at": stamp,
                "password_changed_at": stamp,
            }
        )
        workspaces.create(db, f"{email} (personal)", owner_id=user_id, personal=True)
    return get(db, user_id)  # type: ignore[return-value]


def get(db: sqlite_utils.Database, user_id: str) -> User | None:
    rows = list(db.query("SELECT * FROM users WHERE id = ?", [user_id]))
    return _user(rows[0], db) if rows else None


def by_email(db: sqlite_utils.Database, email: str) -> User | None:
    rows = list(db.query("SELECT * FROM users WHERE email = ?", [(email or "").strip().lower()]))
    return _user(rows[0], db) if rows else None


def list_all(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [
        {
            "id": r["id"],
            "email": r["email"],
            "role": r["role"],
            "disabled": bool(r["disabled"]),
            "created_at": r["created_at"],
            "last_login_at": r["last_login_at"],
        }
        for r in db.query("SELECT * FROM users ORDER BY created_at")
    ]


class SignInFailed(Exception):
    """Wrong e-mail or password, a disabled account, or a locked one: deliberately one message."""

    message = "The e-mail address or password is not right, or the account is locked. Please try again later."


class LegacySignIn(Protocol):
    """Accounts whose password hash is of something derived from the password (private transcripts
    enrolled before they had a passphrase of their own: appliance/private/keys.py provides this)."""

    def secret(self, db: sqlite_utils.Database, user_id: str, password: str) -> str | None:
        """What the stored hash is of, for such an account; None for every other account."""
        ...

    def converted(self, db: sqlite_utils.Database, user_id: str) -> None:
        """The hash is of the password itself from now on."""
        ...


def authenticate(
    db: sqlite_utils.Database,
    email: str,
    password: str,
    *,
    max_failures: int,
    lockout_minutes: int,
    legacy: LegacySignIn | None = None,
) -> User:
    """Check a password; count failures and lock the account for a while after too many.

    Each attempt is charged *before* the password is checked, in one UPDATE that also refuses while the
    account is locked. Concurrent guesses therefore cannot all read the same count: exactly
    `max_failures` get checked before the lock, however many arrive at once. A right password then
    clears the count."""
    rows = list(db.query("SELECT * FROM users WHERE email = ?", [(email or "").strip().lower()]))
    row = rows[0] if rows else None
    charged = False
    if row is not None:
        moment = now()
        until = (datetime.now(UTC) + timedelta(minutes=lockout_minutes)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        charged = (
            db.execute(
                "UPDATE users SET failed_logins = CASE WHEN failed_logins + 1 >= ? THEN 0 ELSE failed_logins + 1 END, "
                "locked_until = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE NULL END "
                "WHERE id = ? AND (locked_until IS NULL OR locked_until <= ?)",
                [max_failures, max_failures, until, row["id"], moment],
            ).rowcount
            == 1
        )
    stored = row["password_hash"] if row is not None and charged else _dummy_hash()  # same work either way
    ok = _matches(db, row["id"] if row is not None and charged else None, stored, password, legacy)
    if row is None or not charged or not ok or row["disabled"]:
        raise SignInFailed()
    if _hasher.check_needs_rehash(stored):
        db.execute("UPDATE users SET password_hash = ? WHERE id = ?", [_hasher.hash(password), row["id"]])
    db.execute("UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = ? WHERE id = ?", [now(), row["id"]])
    return _user(row, db)


def set_password(db: sqlite_utils.Database, user_id: str, password: str, *, legacy: LegacySignIn | None = None) -> None:
    check_password_strength(password)
    with transaction(db):
        db.execute(
            "UPDATE users SET password_hash = ?, password_changed_at = ?, failed_logins = 0, locked_until = NULL WHERE id = ?",
            [_hasher.hash(password), now(), user_id],
        )
        if legacy is not None:
            legacy.converted(db, user_id)


def verify_password(db: sqlite_utils.Database, user_id: str, password: str, *, legacy: LegacySignIn | None = None) -> bool:
    rows = list(db.query("SELECT password_hash FROM users WHERE id = ?", [user_id]))
    return bool(rows) and _matches(db, user_id, rows[0]["password_hash"], password, legacy)


def _matches(db: sqlite_utils.Database, user_id: str | None, stored: str, password: str, legacy: LegacySignIn | None) -> bool:
    """The password against its hash. For an account `legacy` knows, the hash is of a secret derived
    from the password: that is checked instead, and on a match the password's own hash replaces it
    (once; the raw derived secret is never accepted as a password)."""
    derived = legacy.secret(db, user_id, password or "") if legacy is not None and user_id else None
    try:
        ok = _hasher.verify(stored, derived if derived is not None else password or "")
    except (VerificationError, InvalidHashError):
        return False
    if ok and derived is not None and user_id and legacy is not None:
        with transaction(db):
            db.execute("UPDATE users SET password_hash = ? WHERE id = ?", [_hasher.hash(password), user_id])
            legacy.converted(db, user_id)
    return ok


def set_disabled(db: sqlite_utils.Database, user_id: str, disabled: bool) -> None:
    db.execute("UPDATE users SET disabled = ? WHERE id = ?", [int(disabled), user_id])


def delete(db: sqlite_utils.Database, user_id: str) -> None:
    """Everything the user owns goes: personal workspace, transcripts, jobs, keys, sessions (cascades)."""
    with transaction(db):
        db.execute("DELETE FROM transcripts WHERE user_id = ?", [user_id])
        db.execute("DELETE FROM jobs WHERE user_id = ?", [user_id])
        db.execute("DELETE FROM users WHERE id = ?", [user_id])


# --------------------------------------------------------------------------- invites


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(db: sqlite_utils.Database, email: str, role: str, created_by: str, hours: int = 72) -> str:
    """A one-time token for a new user; only its hash is stored."""
    email = normalise_email(email)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    token = secrets.token_urlsafe(32)
    expires = (datetime.now(UTC) + timedelta(hours=hours)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    db.table("invites").insert(
        {
            "id": _token_id(token),
            "email": email,
            "role": role,
            "created_by": created_by,
            "created_at": now(),
            "expires_at": expires,
        }
    )
    return token


def accept_invite(db: sqlite_utils.Database, token: str, password: str) -> User:
    rows = list(db.query("SELECT * FROM invites WHERE id = ?", [_token_id(token or "")]))
    if not rows or rows[0]["used_at"] or rows[0]["expires_at"] < now():
        raise AccountError("This invitation link is not valid any more. Ask your administrator for a new one.")
    row = rows[0]
    user = create(db, row["email"], password, row["role"])
    db.execute("UPDATE invites SET used_at = ? WHERE id = ?", [now(), row["id"]])
    return user
