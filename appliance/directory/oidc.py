"""OpenID Connect single sign-on against the customer's own provider (Keycloak, ADFS, Entra ID, any
certified one): discovery, the authorization code flow with PKCE, state and nonce, the ID token checked
with joserfc against the provider's keys (fetched again when a token names a key id not seen yet: key
rotation), a configurable clock skew, RP-initiated logout, a fresh sign-in on request (prompt=login,
max_age=0, then the token's auth_time says when the person last proved who they are), and the logout
token of back-channel logout (OpenID Connect Back-Channel Logout 1.0) checked the same way.

Every HTTP request goes over a socket from the egress broker (core/egress_broker.py) to the issuer's
host:port only, which must be in security.egress_allow; TLS runs here against oidc.ca_file."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from appliance.core.config import OidcSettings
from appliance.core.egress_broker import Connector

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
MAX_BODY = 1024 * 1024


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered something unusable."""


class TokenRefused(Exception):
    """The provider's answer does not prove who signed in; the message says why (for the audit log)."""


@dataclass(frozen=True)
class Identity:
    subject: str  # issuer + "|" + sub: stable, whatever the e-mail becomes
    email: str
    groups: frozenset[str]
    id_token: str  # kept for RP-initiated logout (id_token_hint)
    auth_time: int | None = None  # when the person last signed in at the provider (seconds since 1970)
    sid: str | None = None  # the provider's session id: what a back-channel logout may name


BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE = 600  # seconds: an older logout token is refused (and its jti need not be kept longer)


@dataclass(frozen=True)
class LogoutToken:
    """A checked back-channel logout token: which sessions to end, and its id (accepted once)."""

    subject: str | None  # issuer|sub, as Identity.subject
    sid: str | None
    jti: str
    expires_at: int  # when it can no longer pass the age check (seconds since 1970)


@dataclass(frozen=True)
class Start:
    url: str  # where the browser goes: the provider's authorization endpoint
    state: str
    nonce: str
    verifier: str  # PKCE code verifier (kept here; only its S256 challenge travels)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Provider:
    def __init__(self, settings: OidcSettings, connector: Connector, now: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.connector = connector
        self.now = now
        issuer = urlsplit(settings.issuer)
        self.host = issuer.hostname or ""
        self.https = issuer.scheme == "https"
        self.port = issuer.port or (443 if self.https else 80)
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._lock = threading.Lock()

    # --------------------------------------------------------------------------- HTTP over the broker

    def _request(
        self, method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        target = urlsplit(url)
        port = target.port or (443 if target.scheme == "https" else 80)
        if (target.hostname or "") != self.host or port != self.port or target.scheme not in ("http", "https"):
            # Endpoints the discovery document names elsewhere are not followed: one exception, the issuer.
            raise ProviderUnavailable(f"{url} is not on the issuer's host ({self.host}:{self.port})")
        timeout = float(self.settings.timeout_seconds)
        try:
            sock = self.connector.connect(self.host, self.port, timeout)
            sock.settimeout(timeout)
            if target.scheme == "https":
                context = ssl.create_default_context(cafile=self.settings.ca_file or None)
                sock = context.wrap_socket(sock, server_hostname=self.host)
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            connection.sock = sock
            try:
                path = target.path + (f"?{target.query}" if target.query else "")
                connection.request(method, path or "/", body=body, headers={"Accept": "application/json", **(headers or {})})
                response = connection.getresponse()
                raw = response.read(MAX_BODY + 1)
            finally:
                connection.close()
        except (OSError, http.client.HTTPException) as exc:
            raise ProviderUnavailable(f"{self.host}:{self.port}: {exc}") from None
        if len(raw) > MAX_BODY:
            raise ProviderUnavailable("the provider's answer is too large")
        try:
            return response.status, json.loads(raw or b"null")
        except ValueError:
            raise ProviderUnavailable(f"the provider answered {response.status} without JSON") from None

    def metadata(self) -> dict[str, Any]:
        """The discovery document, checked to be this issuer's."""
        with self._lock:
            if self._metadata is None:
                status, doc = self._request("GET", self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration")
                if status != 200 or not isinstance(doc, dict) or doc.get("issuer") != self.settings.issuer:
                    raise ProviderUnavailable("the discovery document is missing or names another issuer")
                self._metadata = doc
            return self._metadata

    def _key_set(self, refresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._keys
        if cached is not None and not refresh:
            return cached
        status, doc = self._request("GET", self.metadata()["jwks_uri"])
        if status != 200 or not isinstance(doc, dict):
            raise ProviderUnavailable("the provider's keys (jwks_uri) could not be read")
        keys = KeySet.import_key_set({"keys": [k for k in doc.get("keys", []) if k.get("use", "sig") == "sig"]})
        with self._lock:
            self._keys = keys
        return keys

    # --------------------------------------------------------------------------- the flow

    def start(self, *, fresh: bool = False) -> Start:
        """`fresh`: the provider must ask the person to sign in again now, even inside its own session
        (prompt=login, max_age=0); the ID token's auth_time then shows whether it did."""
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.settings.redirect_uri,
            "scope": self.settings.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if fresh:
            params |= {"prompt": "login", "max_age": "0"}
        query = urlencode(params)
        endpoint = self.metadata()["authorization_endpoint"]
        return Start(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", state, nonce, verifier)

    def _client_secret(self) -> str:
        return Path(self.settings.client_secret_file).read_text().strip() if self.settings.client_secret_file else ""

    def redeem(self, code: str, verifier: str, nonce: str) -> Identity:
        """Exchange the code (with the PKCE verifier) for tokens and check the ID token."""
        secret = self._client_secret()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if secret:
            pair = f"{_quote(self.settings.client_id)}:{_quote(secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        else:
            form["client_id"] = self.settings.client_id
        status, answer = self._request("POST", self.metadata()["token_endpoint"], urlencode(form).encode(), headers)
        if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("id_token"), str):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise TokenRefused(f"the provider did not exchange the code ({status} {error or ''})".strip())
        return self.verify(answer["id_token"], nonce)

    def verify(self, id_token: str, nonce: str) -> Identity:
        """Signature (the provider's current keys; fetched again for an unknown key id), issuer,
        audience, authorized party, expiry and issue time (with the configured skew), and nonce."""
        try:
            header = json.loads(base64.urlsafe_b64decode(id_token.split(".", 1)[0] + "=="))
        except (ValueError, IndexError):
            raise TokenRefused("the ID token is not a JWT") from None
        keys = self._key_set()
        if header.get("kid") and not any(k.kid == header["kid"] for k in keys.keys):
            keys = self._key_set(refresh=True)  # the provider rotated its keys
        try:
            token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
        except JoseError as exc:
            raise TokenRefused(f"the ID token's signature is not the provider's ({exc.error})") from None
        claims = token.claims
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self.now()),
            leeway=self.settings.clock_skew_seconds,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise TokenRefused(f"the ID token's claims are not acceptable ({exc.error}: {exc.description})") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise TokenRefused("the ID token was issued to another party (azp)")
        if int(claims["iat"]) > self.now() + self.settings.clock_skew_seconds:
            raise TokenRefused("the ID token was issued in the future")
        auth_time = claims.get("auth_time")
        if auth_time is not None and (
            not isinstance(auth_time, int) or auth_time > self.now() + self.settings.clock_skew_seconds
        ):
            raise TokenRefused("the ID token's auth_time is not a time in the past")
        email = str(claims.get(self.settings.email_claim) or "").strip().lower()
        raw_groups = claims.get(self.settings.groups_claim) or []
        groups = frozenset(str(g) for g in (raw_groups if isinstance(raw_groups, list) else [raw_groups]))
        sid = claims.get("sid") if isinstance(claims.get("sid"), str) else None
        return Identity(f"{self.settings.issuer}|{claims['sub']}", email, groups, id_token, auth_time, sid)

    def _decode(self, token: str, what: str) -> dict[str, Any]:
        """A JWT's claims once its signature is the provider's (keys fetched again for a new key id)."""
        try:
            header = json.loads(base64.urlsafe_b64decode(token.split(".", 1)[0] + "=="))
        except (ValueError, IndexError):
            raise TokenRefused(f"the {what} is not a JWT") from None
        keys = self._key_set()
        if isinstance(header, dict) and header.get("kid") and not any(k.kid == header["kid"] for k in keys.keys):
            keys = self._key_set(refresh=True)
        try:
            return dict(jwt.decode(token, keys, algorithms=ALGORITHMS).claims)
        except JoseError as exc:
            raise TokenRefused(f"the {what}'s signature is not the provider's ({exc.error})") from None

    def verify_logout_token(self, token: str) -> LogoutToken:
        """A back-channel logout token (section 2.6 of the spec): the provider's signature, issuer,
        audience, issue time (not in the future, not older than LOGOUT_TOKEN_MAX_AGE), expiry if any,
        the back-channel logout event, a sid or a sub, a jti, and no nonce (so an ID token cannot pass)."""
        claims = self._decode(token, "logout token")
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self.now()),
            leeway=self.settings.clock_skew_seconds,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.client_id},
            iat={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise TokenRefused(f"the logout token's claims are not acceptable ({exc.error}: {exc.description})") from None
        skew = self.settings.clock_skew_seconds
        iat = claims["iat"]
        if not isinstance(iat, int) or iat > self.now() + skew:
            raise TokenRefused("the logout token was issued in the future")
        if iat < self.now() - LOGOUT_TOKEN_MAX_AGE - skew:
            raise TokenRefused("the logout token is too old")
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
            raise TokenRefused("the logout token has no back-channel logout event")
        if "nonce" in claims:
            raise TokenRefused("the logout token has a nonce (an ID token is not a logout token)")
        sub, sid, jti = claims.get("sub"), claims.get("sid"), claims.get("jti")
        if not (isinstance(sub, str) and sub) and not (isinstance(sid, str) and sid):
            raise TokenRefused("the logout token names neither a session (sid) nor an account (sub)")
        if not isinstance(jti, str) or not jti:
            raise TokenRefused("the logout token has no jti")
        return LogoutToken(
            f"{self.settings.issuer}|{sub}" if isinstance(sub, str) and sub else None,
            sid if isinstance(sid, str) and sid else None,
            jti,
            iat + LOGOUT_TOKEN_MAX_AGE + skew,
        )

    def logout_url(self, id_token: str | None) -> str | None:
        """RP-initiated logout: where the browser goes to end the provider's session too."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except ProviderUnavailable:
            return None
        if not endpoint:
            return None
        params = {"client_id": self.settings.client_id}
        if id_token:
            params["id_token_hint"] = id_token
        if self.settings.post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = self.settings.post_logout_redirect_uri
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
