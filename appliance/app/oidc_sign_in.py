"""Single sign-on with the customer's OpenID provider: the sign-in's start (state, nonce and PKCE
verifier kept here, single use) and its end (the code redeemed, the ID token checked, the account made or
updated from its claims), audited; the provider's logout URL for an OIDC session; and whether an OIDC
session's person signed in at the provider recently (the step-up check before a sensitive change: the
appliance never sees their password, so it asks the provider for a fresh sign-in instead); and the
provider's back-channel logout, ending the sessions its logout token names (each token accepted once)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from typing import Any

import sqlite_utils

from appliance.accounts import audit
from appliance.accounts import users as accounts
from appliance.core.clock import ago, now
from appliance.core.config import Settings
from appliance.core.egress_broker import Connector
from appliance.directory import provisioning
from appliance.directory.oidc import Identity, Provider, ProviderUnavailable, TokenRefused
from appliance.directory.provisioning import GroupMap

log = logging.getLogger(__name__)
SOURCE = "oidc"
FEATURE = "sso"
PENDING_MINUTES = 10  # from the button to the provider's answer


class LogoutRefused(Exception):
    """A back-channel logout token that does not hold; the reason is in the audit log."""


class SignInRefused(Exception):
    """The single sign-on did not prove an account allowed here; the reason is in the audit log."""


def _state_id(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class OidcSignIn:
    def __init__(self, settings: Settings, connector: Connector, licensed: Any) -> None:
        self.provider = Provider(settings.oidc, connector) if settings.oidc.issuer else None
        self.group_map = GroupMap.from_settings(settings.group_map)
        self.name = settings.oidc.provider_name
        self._licensed = licensed

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def begin(self, db: sqlite_utils.Database, next_path: str, *, fresh: bool = False) -> str:
        """Where to send the browser (`fresh`: the provider asks for the password again, whatever its own
        session); raises SignInRefused (not licensed) or ProviderUnavailable."""
        assert self.provider is not None
        if FEATURE not in self._licensed():
            raise SignInRefused("not licensed")
        start = self.provider.start(fresh=fresh)
        db.execute("DELETE FROM oidc_logins WHERE expires_at < ?", [now()])
        db.table("oidc_logins").insert(
            {
                "id": _state_id(start.state),
                "nonce": start.nonce,
                "verifier": start.verifier,
                "next": next_path,
                "expires_at": ago(-PENDING_MINUTES),
            }
        )
        return start.url

    def finish(self, db: sqlite_utils.Database, state: str, code: str, *, ip: str | None) -> tuple[accounts.User, Identity, str]:
        """The signed-in user, their checked identity (ID token, sid) and where they were going. The state
        is taken (deleted) first: a replayed callback finds nothing. Raises SignInRefused (audited) or
        ProviderUnavailable."""
        assert self.provider is not None
        row = db.execute(
            "DELETE FROM oidc_logins WHERE id = ? RETURNING nonce, verifier, next, expires_at", [_state_id(state or "")]
        ).fetchone()
        if row is None or row[3] < now():
            self._fail(db, "anonymous", ip, "unknown, used or expired state")
        assert row is not None
        nonce, verifier, next_path = row[0], row[1], row[2]
        if FEATURE not in self._licensed():
            self._fail(db, "anonymous", ip, "not licensed")
        try:
            identity = self.provider.redeem(code, verifier, nonce)
        except TokenRefused as exc:
            self._fail(db, "anonymous", ip, str(exc))
        except ProviderUnavailable as exc:
            log.warning("oidc sign-in: %s", exc)
            audit.record(db, "sign_in.failed", actor="anonymous", ip=ip, detail={"via": SOURCE, "reason": "provider unavailable"})
            raise
        try:
            user = provisioning.provision(
                db, self.group_map, source=SOURCE, external_id=identity.subject, email=identity.email, groups=identity.groups
            )
        except provisioning.ProvisioningRefused as exc:
            self._fail(db, identity.email or identity.subject, ip, str(exc))
        if user.disabled:
            self._fail(db, user.email, ip, "disabled on this appliance")
        return user, identity, next_path

    def _fail(self, db: sqlite_utils.Database, actor: str, ip: str | None, reason: str) -> None:
        audit.record(db, "sign_in.failed", actor=actor, ip=ip, detail={"via": SOURCE, "reason": reason})
        raise SignInRefused(reason)

    def remember(self, db: sqlite_utils.Database, session_id: str, identity: Identity) -> None:
        """An OIDC session's ID token (logout hint, auth_time) and what a back-channel logout names it by."""
        db.table("oidc_sessions").insert(
            {"session_id": session_id, "id_token": identity.id_token, "sid": identity.sid, "subject": identity.subject},
            replace=True,
        )

    def backchannel_logout(self, db: sqlite_utils.Database, token: str, *, ip: str | None) -> int:
        """End the sessions a back-channel logout token names (its sid; else every session of its sub);
        how many. Raises LogoutRefused (audited) or ProviderUnavailable (the keys could not be fetched)."""
        assert self.provider is not None
        try:
            logout = self.provider.verify_logout_token(token)
        except TokenRefused as exc:
            audit.record(db, "sign_out.backchannel_refused", actor="provider", ip=ip, detail={"reason": str(exc)})
            raise LogoutRefused(str(exc)) from None
        db.execute("DELETE FROM oidc_logout_tokens WHERE expires_at < ?", [int(time.time())])
        fresh = db.execute(
            "INSERT OR IGNORE INTO oidc_logout_tokens (jti, expires_at) VALUES (?, ?)", [logout.jti, logout.expires_at]
        ).rowcount
        if not fresh:
            reason = "the logout token was used before (jti)"
            audit.record(db, "sign_out.backchannel_refused", actor="provider", ip=ip, detail={"reason": reason})
            raise LogoutRefused(reason)
        if logout.sid is not None:
            # A session recorded without a sid (its ID token had none) is matched by its account instead.
            where = "sid = ? OR (sid IS NULL AND subject = ?)"
            params: list[Any] = [logout.sid, logout.subject]
        else:
            where, params = "subject = ?", [logout.subject]
        ended = db.execute(
            f"DELETE FROM sessions WHERE id IN (SELECT session_id FROM oidc_sessions WHERE {where})", params
        ).rowcount
        target = next(
            iter(db.query("SELECT email FROM users WHERE source = ? AND external_id = ?", [SOURCE, logout.subject])), None
        )
        audit.record(
            db,
            "sign_out.backchannel",
            actor="provider",
            target=target["email"] if target else None,
            ip=ip,
            detail={"sessions_ended": ended},
        )
        return int(ended)

    def owns(self, db: sqlite_utils.Database, user_id: str) -> bool:
        """Whether an account signs in here through the provider (it has no password the appliance knows)."""
        return bool(db.execute("SELECT 1 FROM users WHERE id = ? AND source = ?", [user_id, SOURCE]).fetchone())

    def signed_in_within(self, db: sqlite_utils.Database, session_id: str, minutes: int) -> bool:
        """Whether this OIDC session's person proved who they are at the provider within `minutes`: the
        auth_time of the ID token the session holds (checked at its sign-in; a provider that leaves
        auth_time out never counts as fresh)."""
        rows = list(db.query("SELECT id_token FROM oidc_sessions WHERE session_id = ?", [session_id]))
        if not rows:
            return False
        try:
            claims = json.loads(base64.urlsafe_b64decode(rows[0]["id_token"].split(".")[1] + "=="))
        except (ValueError, IndexError):
            return False
        auth_time = claims.get("auth_time") if isinstance(claims, dict) else None
        return isinstance(auth_time, int) and time.time() - auth_time <= minutes * 60

    def logout_url(self, db: sqlite_utils.Database, session_id: str) -> str | None:
        """The provider's end-session URL for an OIDC session (RP-initiated logout), else None."""
        rows = list(db.query("SELECT id_token FROM oidc_sessions WHERE session_id = ?", [session_id]))
        if self.provider is None or not rows:
            return None
        return self.provider.logout_url(rows[0]["id_token"])
