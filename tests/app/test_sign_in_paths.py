"""Every way to sign in, against one real appliance with a real OpenLDAP server (slapd) and a real OpenID
provider (node-oidc-provider): local password, directory password, the single sign-on callback, an
authenticator code, a recovery code and a passkey. For each, failures land in the audit log and repeated
ones from an address are refused (429, with a message a person understands). Sessions made by single
sign-on and by the directory then follow the local rules: idle timeout, absolute timeout, sign-out
everywhere."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cbor2
import httpx
import pyotp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

from appliance.accounts import audit, factors
from appliance.accounts import users as accounts
from appliance.core.clock import ago, new_id, now
from appliance.web.app import create_app
from appliance.web.server import BackgroundServer, free_port
from tests.directory_support import BASE, GROUPS, PASSWORDS, SERVICE_DN, Slapd, slapd
from tests.oidc_support import OpenIdProvider, code_flow
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, Scenario, settings_in

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PROVIDER_KEY = ECKey.generate_key("P-256", private=True)  # the provider signs with it; tests sign logout tokens too
ATTEMPTS = 3  # failed sign-ins an address may make in a minute, here
RP_ID = "localhost"


@dataclass
class Site:
    url: str
    scenario: Scenario
    directory: Slapd
    idp: OpenIdProvider
    origin: str  # the passkeys' origin

    def client(self, address: str = "127.0.0.1") -> httpx.Client:
        """A client from its own loopback address: each sign-in path gets a window of its own."""
        return httpx.Client(
            base_url=self.url, timeout=30, follow_redirects=False, transport=httpx.HTTPTransport(local_address=address)
        )

    def failures(self, address: str) -> list[tuple[str, str, dict[str, Any] | None]]:
        return [
            (e["action"], e["actor"], e["detail"])
            for e in audit.entries(self.scenario.db, limit=5000)
            if e["ip"] == address and e["action"] in ("sign_in.failed", "sign_in.second_factor_failed")
        ]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root: Path = tmp_path_factory.mktemp("sign-in-paths")
    port, idp_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    url = f"http://127.0.0.1:{port}"
    env = {
        "REDIRECT_URI": f"{url}/auth/oidc/callback",
        "POST_LOGOUT_URI": f"{url}/login",
        "BACKCHANNEL_URI": f"{url}/auth/oidc/backchannel-logout",
        "SIGNING_JWK": json.dumps(PROVIDER_KEY.as_dict(private=True)),
    }
    idp = OpenIdProvider(idp_port, env)
    secret = root / "client-secret"
    secret.write_text("sotto-client-secret\n")
    with slapd(root / "slapd") as directory:
        config = root / "sotto.toml"
        config.write_text(
            "[ldap]\n"
            f'url = "{directory.url}"\nbind_dn = "{SERVICE_DN}"\nbind_password_file = "{directory.password_file}"\n'
            f'base_dn = "{BASE}"\ngroup_base_dn = "{GROUPS}"\nsync_minutes = 0\n'
            "[oidc]\n"
            f'issuer = "{idp.issuer}"\nclient_id = "sotto"\nclient_secret_file = "{secret}"\n'
            f'redirect_uri = "{url}/auth/oidc/callback"\npost_logout_redirect_uri = "{url}/login"\n'
            'provider_name = "Example SSO"\nscopes = "openid email groups"\n'
            "[group_map]\n"
            f'roles = ["cn=sotto-admins,{GROUPS} -> admin", "sotto-admins -> admin", "radio -> member"]\n'
            "[security]\n"
            f'egress_allow = ["127.0.0.1:{idp_port}", "{directory.host}:{directory.port}"]\n'
            f"address_attempts_per_minute = {ATTEMPTS}\n"
            f'passkey_rp_id = "{RP_ID}"\npasskey_origins = ["http://{RP_ID}:{port}"]\n'
        )
        scenario = Scenario(settings_in(root, APPLIANCE_CONFIG=str(config)))
        scenario.person(ADMIN_EMAIL, "admin", "admin")
        idp.start("key-1")
        try:
            with BackgroundServer(create_app(scenario.settings), port=port):
                yield Site(url, scenario, directory, idp, f"http://{RP_ID}:{port}")
        finally:
            idp.stop()
            scenario.close()


# --------------------------------------------------------------------------- second factors made here


def _with_app(site: Site, client: httpx.Client, email: str) -> str:
    """A local account with an authenticator app (and so recovery codes), past its password step: the token."""
    user = site.scenario.person(email).user
    enrolment = factors.start_totp(site.scenario.db, user)
    factors.confirm_totp(site.scenario.db, user.id, pyotp.TOTP(enrolment.secret).now())
    factors.new_recovery_codes(site.scenario.db, user.id)
    return _pending(client, email)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Authenticator:
    """A software passkey: what a security key does, in a few lines (P-256, ES256)."""

    credential_id: str
    key: ec.EllipticCurvePrivateKey

    def answer(self, options: dict[str, Any], origin: str, key: ec.EllipticCurvePrivateKey | None = None) -> dict[str, Any]:
        client_data = json.dumps({"type": "webauthn.get", "challenge": options["challenge"], "origin": origin}).encode()
        data = hashlib.sha256(RP_ID.encode()).digest() + b"\x05" + (1).to_bytes(4, "big")  # user present and verified
        signature = (key or self.key).sign(data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        response = {"authenticatorData": _b64(data), "clientDataJSON": _b64(client_data), "signature": _b64(signature)}
        return {"id": self.credential_id, "rawId": self.credential_id, "type": "public-key", "response": response}


def _with_passkey(site: Site, email: str) -> Authenticator:
    user = site.scenario.person(email).user
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
    authenticator = Authenticator(_b64(new_id().encode()), key)
    site.scenario.db.table("passkeys").insert(
        {
            "id": authenticator.credential_id,
            "user_id": user.id,
            "name": "Key",
            "public_key": cose,
            "sign_count": 0,
            "transports": "[]",
            "created_at": now(),
        }
    )
    return authenticator


def _pending(client: httpx.Client, email: str) -> str:
    step = client.post("/api/v1/auth/login", json={"email": email, "password": ADMIN_PASSWORD})
    assert step.status_code == 200, step.text
    return str(step.json()["second_factor"]["token"])


# --------------------------------------------------------------------------- the table


@dataclass
class Path_:
    name: str
    address: str
    setup: Callable[[Site, httpx.Client], Any]
    attempt: Callable[[Site, httpx.Client, Any], httpx.Response]
    failed: Callable[[httpx.Response], bool]
    audited: tuple[str, str, dict[str, Any] | None]  # action, actor, detail


def _oidc_attempt(site: Site, client: httpx.Client, _: Any) -> httpx.Response:
    """A real start (a fresh state, PKCE and nonce) ended with a code the provider never issued."""
    start = client.get("/auth/oidc/start")
    if start.status_code != 303:
        return start
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    return client.get("/auth/oidc/callback", params={"code": "a-guessed-code", "state": state})


def _passkey_attempt(site: Site, client: httpx.Client, setup: Any) -> httpx.Response:
    token, authenticator = setup
    options = client.post("/api/v1/auth/login/passkey-options", json={"token": token})
    if options.status_code != 200:
        return options
    forged = authenticator.answer(options.json(), site.origin, key=ec.generate_private_key(ec.SECP256R1()))
    return client.post("/api/v1/auth/login/passkey", json={"token": token, "credential": forged})


def _passkey_setup(site: Site, client: httpx.Client) -> tuple[str, Authenticator]:
    authenticator = _with_passkey(site, "pia@example.org")
    # The software key's own answer signs in: the forged answers below differ only in their key.
    token = _pending(client, "pia@example.org")
    options = client.post("/api/v1/auth/login/passkey-options", json={"token": token}).json()
    right = client.post(
        "/api/v1/auth/login/passkey", json={"token": token, "credential": authenticator.answer(options, site.origin)}
    )
    assert right.status_code == 200 and right.json()["user"]["email"] == "pia@example.org", right.text
    client.cookies.clear()
    return _pending(client, "pia@example.org"), authenticator


WRONG_SECOND_STEP = "That code is not right. Please try again."

PATHS = [
    Path_(
        "local password",
        "127.0.0.2",
        lambda site, client: None,
        lambda site, client, _: client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "a wrong guess"}),
        lambda r: r.status_code == 401 and "not right" in r.json()["detail"],
        ("sign_in.failed", ADMIN_EMAIL, None),
    ),
    Path_(
        "directory password",
        "127.0.0.3",
        lambda site, client: None,
        lambda site, client, _: client.post("/api/v1/auth/login", json={"email": "nico", "password": "a wrong guess"}),
        lambda r: r.status_code == 401 and "not right" in r.json()["detail"],
        ("sign_in.failed", "nico", {"via": "ldap", "reason": "unknown user or wrong password"}),
    ),
    Path_(
        "single sign-on callback",
        "127.0.0.4",
        lambda site, client: None,
        _oidc_attempt,
        lambda r: r.status_code == 303 and r.headers["location"] == "/login?sso=failed",
        ("sign_in.failed", "anonymous", None),  # the provider's refusal is the reason
    ),
    Path_(
        "authenticator code",
        "127.0.0.5",
        lambda site, client: _with_app(site, client, "tom@example.org"),
        lambda site, client, token: client.post("/api/v1/auth/login/second-factor", json={"token": token, "code": "000000"}),
        lambda r: r.status_code == 401 and r.json()["detail"] == WRONG_SECOND_STEP,
        ("sign_in.second_factor_failed", "tom@example.org", {"method": "authenticator code"}),
    ),
    Path_(
        "recovery code",
        "127.0.0.6",
        lambda site, client: _with_app(site, client, "rita@example.org"),
        lambda site, client, token: client.post("/api/v1/auth/login/second-factor", json={"token": token, "code": "abcde-fghjk"}),
        lambda r: r.status_code == 401 and r.json()["detail"] == WRONG_SECOND_STEP,
        ("sign_in.second_factor_failed", "rita@example.org", {"method": "recovery code"}),
    ),
    Path_(
        "passkey",
        "127.0.0.7",
        _passkey_setup,
        _passkey_attempt,
        lambda r: r.status_code == 401 and r.json()["detail"] == WRONG_SECOND_STEP,
        ("sign_in.second_factor_failed", "pia@example.org", {"method": "passkey"}),
    ),
]


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_every_sign_in_path_audits_its_failures_and_refuses_repeated_ones(site: Site, path: Path_) -> None:
    with site.client(path.address) as client:
        setup = path.setup(site, client)
        answers = [path.attempt(site, client, setup) for _ in range(ATTEMPTS + 1)]
        assert all(path.failed(a) for a in answers[:ATTEMPTS]), [(a.status_code, a.text[:200]) for a in answers]
        refused = answers[ATTEMPTS]
        assert refused.status_code == 429, (refused.status_code, refused.text[:300])
        assert int(refused.headers["retry-after"]) >= 1
        assert "Too many failed attempts from your address. Please wait a minute." in refused.text
    # Each failure that reached a check is in the log, with this address; the refused one never reached one.
    found = site.failures(path.address)
    assert len(found) == ATTEMPTS, found
    action, actor, detail = path.audited
    for entry in found:
        assert entry[0] == action and entry[1] == actor, entry
        if detail is not None:
            assert entry[2] == detail, entry
        else:
            assert entry[2] is None or entry[2].get("reason"), entry
    if path.name == "single sign-on callback":
        assert all(e[2] and e[2]["reason"].startswith("the provider did not exchange the code") for e in found), found
    # Other addresses are not affected: the window is per address.
    with site.client("127.0.0.1") as other:
        assert other.get("/auth/oidc/start").status_code == 303


# --------------------------------------------------------------------------- SSO sessions, local rules


def _oidc_session(site: Site, name: str) -> httpx.Client:
    callback = urlsplit(code_flow(site.url, site.idp.issuer, name))
    client = site.client()
    answer = client.get(f"{callback.path}?{callback.query}")
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.headers
    client.headers["X-CSRF-Token"] = client.get("/api/v1/me").json()["csrf_token"]
    return client


def _ldap_session(site: Site, name: str) -> httpx.Client:
    client = site.client()
    answer = client.post("/api/v1/auth/login", json={"email": name, "password": PASSWORDS[name]})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


SIGN_INS = {"oidc": (_oidc_session, "olivia", "olivia@example.org"), "ldap": (_ldap_session, "lena", "lena@example.org")}


def _session_id(site: Site, email: str) -> str:
    rows = list(
        site.scenario.db.query(
            "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = ? ORDER BY s.created_at DESC LIMIT 1",
            [email],
        )
    )
    return str(rows[0]["id"])


@pytest.mark.parametrize("via", list(SIGN_INS))
def test_sso_sessions_follow_the_idle_and_absolute_timeouts_and_sign_out_everywhere(site: Site, via: str) -> None:
    sign_in, name, email = SIGN_INS[via]
    security = site.scenario.settings.security
    db = site.scenario.db
    # Idle: a session last seen longer ago than the idle limit is gone.
    idle = sign_in(site, name)
    me = idle.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["user"]["email"] == email
    row = next(iter(db.query("SELECT source FROM users WHERE email = ?", [email])))
    assert row["source"] == via
    entry = next(e for e in audit.entries(db) if e["actor"] == email and e["action"] == "sign_in")
    assert entry["detail"] == {"via": via}
    if via == "oidc":  # no password here: a sensitive change asks for a fresh sign-in at the provider
        refused = idle.request("DELETE", "/api/v1/me", json={"password": "any guess"})
        assert refused.status_code == 403 and refused.json()["extra"]["code"] == "fresh_sign_in_required", refused.text
        assert "sign in again" in refused.json()["detail"]
    session = _session_id(site, email)
    created = next(iter(db.query("SELECT created_at, expires_at FROM sessions WHERE id = ?", [session])))
    limit = security.session_absolute_minutes  # the same absolute limit as local sessions
    assert ago(-limit + 1) <= created["expires_at"] <= ago(-limit - 1), created
    db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", [ago(security.session_idle_minutes + 1), session])
    assert idle.get("/api/v1/me").status_code == 401
    assert not list(db.query("SELECT 1 FROM sessions WHERE id = ?", [session]))
    assert not list(db.query("SELECT 1 FROM oidc_sessions WHERE session_id = ?", [session]))
    idle.close()
    # Absolute: active all along, but past its end.
    active = sign_in(site, name)
    session = _session_id(site, email)
    db.execute("UPDATE sessions SET expires_at = ?, last_seen_at = ? WHERE id = ?", [ago(1), now(), session])
    assert active.get("/api/v1/me").status_code == 401
    active.close()
    # Everywhere: two browsers; signing out everywhere in one ends the other too.
    laptop, phone = sign_in(site, name), sign_in(site, name)
    assert phone.get("/api/v1/me").status_code == 200
    ended = laptop.post("/api/v1/auth/logout-all")
    assert ended.status_code == 200 and ended.json()["sessions_ended"] == 2, ended.text
    assert phone.get("/api/v1/me").status_code == 401 and laptop.get("/api/v1/me").status_code == 401
    assert not list(db.query("SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = ?", [email]))
    assert any(e["action"] == "sign_out.everywhere" and e["actor"] == email for e in audit.entries(db))
    laptop.close()
    phone.close()


# --------------------------------------------------------------------------- private transcripts, SSO account


def _through_the_provider(page: Any, name: str) -> None:
    """The provider's development login (and consent) pages: any name signs in."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", name)
    page.fill("input[name=password]", "anything")
    page.click("button[type=submit]")
    consent = page.locator("button[type=submit]", has_text="Continue")
    if consent.count():
        consent.click()


def test_an_sso_account_turns_private_transcripts_on_after_a_fresh_sign_in_at_its_provider(site: Site, browser: Any) -> None:
    from appliance.private import crypto as pc

    passphrase = "a passphrase only oona knows"
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(f"{site.url}/login?next=/account")
    page.click("#sso-start")
    _through_the_provider(page, "oona")
    page.wait_for_url(f"{site.url}/account")
    card = " ".join(page.inner_text("#private").split())
    # The appliance never receives this person's password: the card must not say it does.
    assert "never receives your sign-in password" in card and "not your Example SSO password" in card, card
    assert "receives your sign-in password every time" not in card
    assert page.locator("#enrol-form input[name=current_password][type=password]").count() == 0
    # Nor does the rest of the page offer a password or a second factor of the appliance's.
    assert page.locator("#password-form").count() == 0
    assert "your password is kept and changed there" in page.inner_text("#password-elsewhere")
    assert "Example SSO decides how you prove who you are" in page.inner_text("#second-factor-card")
    # Without a fresh sign-in at the provider the keys are refused, with what to do instead.
    page.check("#enrol-form input[name=understood]")
    page.fill("#enrol-form input[name=new_passphrase]", passphrase)
    page.fill("#enrol-form input[name=repeat_passphrase]", passphrase)
    page.press("#enrol-form input[name=repeat_passphrase]", "Enter")
    page.wait_for_function("() => document.getElementById('enrol-state').textContent.includes('sign in again')", timeout=30000)
    uid = page.evaluate("fetch('/api/v1/me').then(r => r.json())")["user"]["id"]
    assert not list(site.scenario.db.query("SELECT 1 FROM user_keys WHERE user_id = ?", [uid]))
    # The card's button: the provider asks for the password again (prompt=login), then back here.
    with page.expect_request(lambda r: r.url.startswith(f"{site.idp.issuer}/auth?")) as asked:
        page.click("#enrol-form a:has-text('Sign in again with Example SSO')")
    query = parse_qs(urlsplit(asked.value.url).query)
    assert query["prompt"] == ["login"] and query["max_age"] == ["0"]
    _through_the_provider(page, "oona")
    page.wait_for_url(f"{site.url}/account")
    page.locator("#enrol-form .sso-fresh", has_text="a moment ago").wait_for()
    page.screenshot(path=str(SHOTS / "private-sso-390.png"), full_page=True)
    page.check("#enrol-form input[name=understood]")
    page.fill("#enrol-form input[name=new_passphrase]", passphrase)
    page.fill("#enrol-form input[name=repeat_passphrase]", passphrase)
    page.press("#enrol-form input[name=repeat_passphrase]", "Enter")
    page.wait_for_selector("#recovery-shown:not(.hidden)", timeout=30000)
    recovery = page.inner_text("#recovery-key").strip()
    # Unlocking is the passphrase's job alone: the stored record opens with it, and with the recovery key.
    record = page.evaluate("fetch('/api/v1/me/private-keys').then(r => r.json())")
    kek = pc.derive_keys(passphrase, pc.KdfParams.from_json(record["kdf"])).kek
    assert pc.unwrap_data_key(kek, record["wrapped_dk"], uid)
    assert recovery and any(
        e["action"] == "private.enabled" and e["actor"] == "oona@example.org" for e in audit.entries(site.scenario.db)
    )
    # A forgotten passphrase: the recovery key sets a new one (the fresh sign-in still counts).
    page.check("#recovery-stored")
    page.click("#recovery-done")
    page.click("#private-forgot summary")
    page.locator("#private-recover-form .sso-fresh").wait_for()
    page.fill("#private-recover-form input[name=recovery_key]", recovery)
    page.fill("#private-recover-form input[name=new_passphrase]", "oona's second passphrase")
    page.fill("#private-recover-form input[name=repeat_passphrase]", "oona's second passphrase")
    page.press("#private-recover-form input[name=repeat_passphrase]", "Enter")
    done = "() => document.getElementById('private-recover-state').textContent.startsWith('Done')"
    page.wait_for_function(done, timeout=30000)
    record = page.evaluate("fetch('/api/v1/me/private-keys').then(r => r.json())")
    kek = pc.derive_keys("oona's second passphrase", pc.KdfParams.from_json(record["kdf"])).kek
    assert pc.unwrap_data_key(kek, record["wrapped_dk"], uid)
    # Deleting the account is confirmed by the same fresh sign-in (there is no password to type).
    page.click("#delete-account")
    page.locator("#delete-account-dialog .sso-fresh").wait_for()
    assert page.locator("#delete-account-dialog input[type=password]").count() == 0
    page.click("#delete-account-dialog button.danger")
    page.wait_for_url(f"{site.url}/login?deleted=1")
    assert not list(site.scenario.db.query("SELECT 1 FROM users WHERE email = 'oona@example.org'"))
    page.context.close()


# --------------------------------------------------------------------------- back-channel logout


def _sessions_of(site: Site, email: str) -> int:
    rows = site.scenario.db.query(
        "SELECT count(*) AS n FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = ?", [email]
    )
    return int(next(iter(rows))["n"])


def test_signing_out_at_the_provider_ends_the_appliance_session_by_back_channel(site: Site, browser: Any) -> None:
    page = browser.new_context().new_page()
    page.goto(f"{site.url}/login")
    page.click("#sso-start")
    _through_the_provider(page, "olga")
    page.wait_for_url(f"{site.url}/")
    assert page.request.get(f"{site.url}/api/v1/me").status == 200
    row = next(iter(site.scenario.db.query("SELECT sid FROM oidc_sessions ORDER BY rowid DESC LIMIT 1")))
    assert row["sid"]  # the ID token named the provider's session
    # Signing out at the provider itself (not through the appliance): it tells the appliance directly.
    page.goto(f"{site.idp.issuer}/session/end")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.request.get(f"{site.url}/api/v1/me").status == 401
    assert _sessions_of(site, "olga@example.org") == 0
    entry = next(e for e in audit.entries(site.scenario.db) if e["action"] == "sign_out.backchannel")
    assert entry["target"] == "olga@example.org" and entry["detail"] == {"sessions_ended": 1}
    page.context.close()


def _logout_token(site: Site, key: Any = None, **changes: Any) -> str:
    claims: dict[str, Any] = {
        "iss": site.idp.issuer,
        "aud": "sotto",
        "iat": int(time.time()),
        "jti": new_id(),
        "sub": "oscar",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "ES256", "kid": "key-1", "typ": "logout+jwt"}, claims, key or PROVIDER_KEY)


def _post_logout(site: Site, token: str, address: str = "127.0.0.1") -> httpx.Response:
    with site.client(address) as client:
        return client.post("/auth/oidc/backchannel-logout", data={"logout_token": token})


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("signed by another key", {"key": ECKey.generate_key("P-256", private=True)}, "signature"),
    ("for another client", {"aud": "another-app"}, "aud"),
    ("from another issuer", {"iss": "http://127.0.0.1:9"}, "iss"),
    ("without the event", {"events": {"something-else": {}}}, "event"),
    ("an ID token (nonce)", {"nonce": "n"}, "nonce"),
    ("naming nothing", {"sub": None}, "neither"),
    ("without a jti", {"jti": None}, "jti"),
    ("too old", {"iat": int(time.time()) - 3600}, "too old"),
    ("from the future", {"iat": int(time.time()) + 3600}, "future"),
]


def test_a_logout_token_is_checked_and_accepted_once(site: Site) -> None:
    laptop, phone = _oidc_session(site, "oscar"), _oidc_session(site, "oscar")
    for i, (why, changes, reason) in enumerate(REFUSED):
        answer = _post_logout(site, _logout_token(site, **changes), f"127.0.1.{i + 1}")  # one address each: see below
        assert answer.status_code == 400, (why, answer.text)
        assert answer.json()["error"] == "invalid_request" and reason in answer.json()["error_description"], (why, answer.text)
        assert answer.headers["cache-control"] == "no-store"
    assert laptop.get("/api/v1/me").status_code == 200  # nothing ended by a token that did not hold
    refusals = [e for e in audit.entries(site.scenario.db, limit=5000) if e["action"] == "sign_out.backchannel_refused"]
    assert len(refusals) >= len(REFUSED)
    # A token naming the account (sub, no sid) ends every session of it; the same token again is refused.
    token = _logout_token(site)
    answer = _post_logout(site, token)
    assert answer.status_code == 200 and answer.json() == {"sessions_ended": 2}, answer.text
    assert laptop.get("/api/v1/me").status_code == 401 and phone.get("/api/v1/me").status_code == 401
    again = _post_logout(site, token)
    assert again.status_code == 400 and "used before" in again.json()["error_description"]
    # Refused tokens count like failed sign-ins: a flood of forged ones from one address is cut off.
    flood = [_post_logout(site, _logout_token(site, aud="another-app"), "127.0.2.1").status_code for _ in range(ATTEMPTS + 1)]
    assert flood == [400] * ATTEMPTS + [429], flood
    laptop.close()
    phone.close()


# --------------------------------------------------------------------------- the per-role second-factor policy


def test_the_second_factor_policy_applies_to_directory_accounts_not_to_single_sign_on_ones(site: Site) -> None:
    """Decided: a directory account signs in with its password here, so the appliance's policy applies
    (the same enrolment, the same second step); a single sign-on account proves itself at its provider,
    whose MFA policy is the one that counts (docs/operator-guide.md, "Second factors")."""
    db = site.scenario.db
    factors.set_required_roles(db, {"admin"})
    try:
        lena = _ldap_session(site, "lena")  # admin by her directory group
        assert lena.get("/api/v1/me").json()["user"]["role"] == "admin"
        held = lena.get("/api/v1/transcripts")
        assert held.status_code == 403 and held.json()["code"] == "second_factor_enrolment_required", held.text
        olivia = _oidc_session(site, "olivia")  # admin by her provider group
        assert olivia.get("/api/v1/me").json()["user"]["role"] == "admin"
        assert olivia.get("/api/v1/transcripts").status_code == 200
        # Once lena has an authenticator app, her directory password is only the first step.
        user = next(iter(db.query("SELECT id, email FROM users WHERE email = 'lena@example.org'")))
        enrolment = factors.start_totp(db, accounts.get(db, user["id"]))  # type: ignore[arg-type]
        factors.confirm_totp(db, user["id"], pyotp.TOTP(enrolment.secret).now())
        with site.client() as client:
            step = client.post("/api/v1/auth/login", json={"email": "lena", "password": PASSWORDS["lena"]}).json()
            assert "csrf_token" not in step and step["second_factor"]["methods"] == ["totp", "recovery"], step
        lena.close()
        olivia.close()
    finally:
        factors.set_required_roles(db, set())
        for row in db.query("SELECT id FROM users WHERE email = 'lena@example.org'"):
            factors.reset(db, row["id"])
