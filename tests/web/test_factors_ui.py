"""Second factors in headless Chromium against the real app: an authenticator app set up from its QR
page (the code typed is computed by pyotp, as a phone would), then the two-step sign-in; a passkey
registered and used with Chromium's virtual authenticator (CDP WebAuthn domain), renamed; a role that
requires a factor sends its users to the enrolment page. Served at http://localhost:<port>, a secure
context, with the passkey domain "localhost"."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest

from appliance.accounts import factors
from appliance.web.app import create_app
from appliance.web.server import BackgroundServer, free_port
from tests.support import ADMIN_PASSWORD, Scenario, settings_in

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@dataclass
class Site:
    url: str
    scenario: Scenario


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required; scripts/test installs it")
    port = free_port("127.0.0.1")
    settings = settings_in(
        tmp_path_factory.mktemp("factors-ui"),
        APPLIANCE_SECURITY__ADDRESS_ATTEMPTS_PER_MINUTE="1000",
        APPLIANCE_SECURITY__PASSKEY_RP_ID="localhost",
        APPLIANCE_SECURITY__PASSKEY_ORIGINS=f"http://localhost:{port}",
    )
    scenario = Scenario(settings)
    scenario.person("uma@example.org")  # an account before start: otherwise the appliance waits for its setup
    with BackgroundServer(create_app(settings), port=port):
        yield Site(f"http://localhost:{port}", scenario)
    scenario.close()


def _page(browser: Any, width: int = 1366) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 844 if width < 800 else 768})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return page


def _password(page: Any, site: Site, email: str) -> None:
    page.goto(f"{site.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.keyboard.press("Enter")


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_an_authenticator_app_set_up_in_the_page_then_asked_at_sign_in(site: Site, browser: Any) -> None:
    site.scenario.person("uma@example.org")
    page = _page(browser)
    _password(page, site, "uma@example.org")
    page.wait_for_url(f"{site.url}/")
    page.goto(f"{site.url}/account")
    page.click("a:has-text('Set up an authenticator app or a passkey')")
    page.click("#start-totp")
    page.wait_for_selector("#totp-qr[src^='data:image/svg+xml']")
    assert page.evaluate("document.getElementById('totp-qr').naturalWidth") > 0  # the SVG drew under the CSP
    _shot(page, "second-factor-setup-1366.png")
    secret = page.inner_text("#totp-secret").replace(" ", "")
    page.fill("#totp-confirm-form input[name=code]", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.keyboard.press("Enter")
    page.locator("#totp-status", has_text="not right").wait_for()
    page.fill("#totp-confirm-form input[name=code]", pyotp.TOTP(secret).now())
    page.keyboard.press("Enter")
    page.wait_for_selector("#recovery-codes-card:not(.hidden)")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    _shot(page, "second-factor-codes-1366.png")

    page.context.clear_cookies()
    _password(page, site, "uma@example.org")
    page.wait_for_selector("#second-factor-form:not(.hidden)")
    assert page.url.endswith("/login")
    assert page.is_hidden("#use-passkey")  # no passkey on this account
    _shot(page, "second-factor-sign-in-1366.png")
    step = int(time.time()) // 30
    page.fill("#second-factor-form input[name=code]", pyotp.TOTP(secret).generate_otp(step + 1))  # unused: one step on
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}/")
    assert page.errors == []
    page.context.close()


def _virtual_authenticator(page: Any) -> Any:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]
    return cdp, authenticator


def test_a_passkey_registered_then_used_to_sign_in_on_a_phone(site: Site, browser: Any) -> None:
    site.scenario.person("pat@example.org")
    page = _page(browser, width=390)
    cdp, authenticator = _virtual_authenticator(page)
    _password(page, site, "pat@example.org")
    page.wait_for_url(f"{site.url}/")
    page.goto(f"{site.url}/account/second-factor")
    page.fill("#passkey-form input[name=name]", "Phone")
    page.keyboard.press("Enter")
    page.wait_for_selector("#recovery-codes-card:not(.hidden)")  # the account's first factor: codes with it
    assert len(cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]) == 1
    page.click("#codes-saved")
    page.locator("#passkeys td.passkey-name", has_text="Phone").wait_for()
    _shot(page, "second-factor-passkeys-390.png")

    page.context.clear_cookies()
    _password(page, site, "pat@example.org")
    page.wait_for_selector("#use-passkey:visible")
    _shot(page, "second-factor-sign-in-390.png")
    page.click("#use-passkey")
    page.wait_for_url(f"{site.url}/")
    db = site.scenario.db
    row = next(iter(db.query("SELECT sign_count, last_used_at FROM passkeys WHERE name = 'Phone'")))
    assert row["last_used_at"] is not None

    # Rename in a dialog (Enter confirms).
    page.goto(f"{site.url}/account/second-factor")
    page.click(".rename-passkey")
    page.fill("#passkey-rename-form input[name=name]", "Work phone")
    page.keyboard.press("Enter")
    page.locator("#passkeys td.passkey-name", has_text="Work phone").wait_for()
    assert page.errors == []
    page.context.close()


def test_an_admin_requires_a_factor_for_a_role_and_resets_a_lost_one(site: Site, browser: Any) -> None:
    site.scenario.person("ada@example.org", "admin", "admin")
    site.scenario.person("vic@example.org", "viewer")
    admin = _page(browser)
    _password(admin, site, "ada@example.org")
    admin.wait_for_url(f"{site.url}/")
    admin.goto(f"{site.url}/admin/users")
    admin.check("#factor-policy-form input[value=viewer]")
    admin.click("#factor-policy-form button[type=submit]")
    admin.locator("#factor-policy-status", has_text="Required for: viewer.").wait_for()
    assert factors.required_roles(site.scenario.db) == {"viewer"}
    # uma set up an app in the first test: she lost her phone; the admin resets it (Enter confirms).
    uma = admin.locator("tr", has_text="uma@example.org")
    assert uma.locator("td").nth(3).inner_text() == "yes"
    uma.locator(".user-factors-reset").click()
    admin.wait_for_selector("#factors-reset-dialog[open]")
    _shot(admin, "second-factor-users-1366.png")
    admin.keyboard.press("Enter")
    admin.wait_for_selector("#factors-reset-dialog:not([open])", state="hidden")
    uma.locator("td", has_text="no").wait_for()
    uma_id = next(iter(site.scenario.db.query("SELECT id FROM users WHERE email = 'uma@example.org'")))["id"]
    assert not factors.has_factor(site.scenario.db, uma_id)
    assert admin.errors == []
    admin.context.close()
    try:
        page = _page(browser, width=390)
        _password(page, site, "vic@example.org")
        page.wait_for_url(f"{site.url}/account/second-factor")
        page.wait_for_selector("#enrol-required")
        _shot(page, "second-factor-required-390.png")
        page.goto(f"{site.url}/search")
        assert page.url == f"{site.url}/account/second-factor"
        page.context.close()
    finally:
        factors.set_required_roles(site.scenario.db, set())
