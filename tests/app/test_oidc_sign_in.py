"""Single sign-on against a real OpenID provider started by the test (node-oidc-provider, OpenID
Certified, pinned in tests/data/oidc-provider/package-lock.json) on loopback: the whole code flow in Chromium from the
"Sign in with ..." button, the account made from the token's claims and groups; a replayed callback, a
replayed code, a tampered token, a token for another client, an expired token and a wrong nonce refused;
a rotated signing key picked up; RP-initiated logout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from appliance.accounts import audit, workspaces
from appliance.core.egress_broker import Destination, DirectConnector
from appliance.directory.oidc import Provider, TokenRefused
from appliance.web.app import create_app
from appliance.web.server import BackgroundServer, free_port
from tests.oidc_support import OpenIdProvider, code_flow
from tests.support import ADMIN_EMAIL, Scenario, settings_in

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@dataclass
class Site:
    url: str
    scenario: Scenario
    services: Any
    idp: OpenIdProvider


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("oidc")
    port, idp_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    url = f"http://127.0.0.1:{port}"
    idp = OpenIdProvider(idp_port, {"REDIRECT_URI": f"{url}/auth/oidc/callback", "POST_LOGOUT_URI": f"{url}/login"})
    secret = root / "client-secret"
    secret.write_text("sotto-client-secret\n")
    config = root / "sotto.toml"
    config.write_text(
        "[oidc]\n"
        f'issuer = "{idp.issuer}"\nclient_id = "sotto"\nclient_secret_file = "{secret}"\n'
        f'redirect_uri = "{url}/auth/oidc/callback"\npost_logout_redirect_uri = "{url}/login"\n'
        'provider_name = "Example SSO"\nscopes = "openid email groups"\n'
        "[group_map]\n"
        'roles = ["sotto-admins -> admin", "radio -> member"]\n'
        'workspaces = ["radio -> Newsroom: member"]\n'
        "[security]\n"
        f'egress_allow = ["127.0.0.1:{idp_port}"]\naddress_attempts_per_minute = 1000\n'
    )
    scenario = Scenario(settings_in(root, APPLIANCE_CONFIG=str(config)))
    alice = scenario.person(ADMIN_EMAIL, "admin", "admin")
    scenario.workspace("Newsroom", alice)
    idp.start("key-1")
    try:
        app = create_app(scenario.settings)
        with BackgroundServer(app, port=port):
            yield Site(url, scenario, app.state.services, idp)
    finally:
        idp.stop()
        scenario.close()


def _through_the_provider(page: Any, name: str) -> None:
    """The provider's own pages (its development login and consent screens): any name signs in."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", name)
    page.fill("input[name=password]", "anything")
    page.click("button[type=submit]")
    consent = page.locator("button[type=submit]", has_text="Continue")
    if consent.count():
        consent.click()


def test_the_whole_code_flow_in_chromium_from_the_button(site: Site, browser: Any) -> None:
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(f"{site.url}/login?next=/search")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "sso-login-390.png"), full_page=True)
    page.click("#sso-start:has-text('Sign in with Example SSO')")
    _through_the_provider(page, "olivia")
    page.wait_for_url(f"{site.url}/search")
    me = page.evaluate("fetch('/api/v1/me').then(r => r.json())")
    assert me["user"]["email"] == "olivia@example.org" and me["user"]["role"] == "admin"
    row = next(iter(site.scenario.db.query("SELECT source, external_id FROM users WHERE email = 'olivia@example.org'")))
    assert row["source"] == "oidc" and row["external_id"] == f"{site.idp.issuer}|olivia"
    entry = next(e for e in audit.entries(site.scenario.db) if e["actor"] == "olivia@example.org" and e["action"] == "sign_in")
    assert entry["detail"] == {"via": "oidc"}
    # Signing out (the header's button) goes on to the provider's logout (RP-initiated), the ID token as the hint.
    with page.expect_request(lambda r: r.url.startswith(f"{site.idp.issuer}/session/end")) as ended:
        page.click("form.signout button")
    end = urlsplit(ended.value.url)
    assert parse_qs(end.query)["post_logout_redirect_uri"] == [f"{site.url}/login"] and parse_qs(end.query)["id_token_hint"]
    page.click("button[type=submit]")  # the provider asks whether to sign out there too
    page.wait_for_url(f"{site.url}/login")
    assert page.evaluate("fetch('/api/v1/me').then(r => r.status)") == 401
    page.context.close()


def _captured_callback(site: Site, name: str) -> str:
    return code_flow(site.url, site.idp.issuer, name)


def _callback(site: Site, url: str) -> httpx.Response:
    parts = urlsplit(url)
    with httpx.Client(base_url=site.url, timeout=30) as client:
        return client.get(f"{parts.path}?{parts.query}")


def test_a_replayed_callback_and_a_replayed_code_are_refused(site: Site, browser: Any) -> None:
    url = _captured_callback(site, "oscar")
    first = _callback(site, url)
    assert (
        first.status_code == 303 and first.headers["location"] == "/" and "sotto_session" in first.headers.get("set-cookie", "")
    )
    again = _callback(site, url)  # the same state: taken at the first use
    assert again.status_code == 303 and again.headers["location"] == "/login?sso=failed" and "set-cookie" not in again.headers
    # The same code under a fresh, valid state: the provider refuses to redeem it twice.
    with httpx.Client(base_url=site.url, timeout=30) as client:
        fresh = parse_qs(urlsplit(client.get("/auth/oidc/start").headers["location"]).query)["state"][0]
    code = parse_qs(urlsplit(url).query)["code"][0]
    reused = _callback(site, f"{site.url}/auth/oidc/callback?code={code}&state={fresh}")
    assert reused.headers["location"] == "/login?sso=failed"
    reasons = [e["detail"]["reason"] for e in audit.entries(site.scenario.db) if e["action"] == "sign_in.failed"]
    assert "unknown, used or expired state" in reasons
    assert any(r.startswith("the provider did not exchange the code") for r in reasons)
    # oscar's groups: radio -> member, and the Newsroom workspace.
    oscar = next(iter(site.scenario.db.query("SELECT id, role FROM users WHERE email = 'oscar@example.org'")))
    assert oscar["role"] == "member"
    newsroom = next(iter(site.scenario.db.query("SELECT id FROM workspaces WHERE name = 'Newsroom'")))["id"]
    assert workspaces.role_of(site.scenario.db, newsroom, oscar["id"]) == "member"


def _a_real_token(site: Site) -> tuple[str, str]:
    """An ID token the provider issued in these tests, and its nonce."""
    import base64
    import json

    token = next(iter(site.scenario.db.query("SELECT id_token FROM oidc_sessions ORDER BY rowid DESC LIMIT 1")))["id_token"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return token, claims["nonce"]


def test_tampered_foreign_expired_and_wrong_nonce_tokens_are_refused(site: Site, browser: Any) -> None:
    _callback(site, _captured_callback(site, "oscar"))
    token, nonce = _a_real_token(site)
    connector = DirectConnector([Destination.parse(f"127.0.0.1:{site.idp.port}")])
    settings = site.scenario.settings.oidc
    ours = Provider(settings, connector)
    assert ours.verify(token, nonce).email == "oscar@example.org"  # the untouched token passes
    header, payload, signature = token.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    with pytest.raises(TokenRefused, match="signature"):
        ours.verify(f"{header}.{flipped}.{signature}", nonce)
    with pytest.raises(TokenRefused, match="signature"):
        ours.verify(f"{header}.{payload}.{signature[::-1]}", nonce)
    import dataclasses

    other_client = Provider(dataclasses.replace(settings, client_id="another-app"), connector)
    with pytest.raises(TokenRefused, match="aud"):
        other_client.verify(token, nonce)
    later = Provider(settings, connector, now=lambda: time.time() + 3 * 3600)
    with pytest.raises(TokenRefused, match="exp"):
        later.verify(token, nonce)
    # Within the configured skew a slightly fast clock is fine; beyond it the token is refused.
    skewed = Provider(dataclasses.replace(settings, clock_skew_seconds=0), connector, now=lambda: time.time() - 120)
    with pytest.raises(TokenRefused):
        skewed.verify(token, nonce)
    with pytest.raises(TokenRefused, match="nonce"):
        ours.verify(token, "another nonce")


def test_a_rotated_signing_key_is_fetched_when_a_token_names_it(site: Site, browser: Any) -> None:
    site.idp.stop()
    site.idp.start("key-2")  # the provider's new key; the appliance still holds key-1 from earlier sign-ins
    first = _callback(site, _captured_callback(site, "oscar"))
    assert first.status_code == 303 and first.headers["location"] == "/", first.headers
    assert {k.kid for k in site.services.oidc.provider._key_set().keys} == {"key-2"}
