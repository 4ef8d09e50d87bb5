"""Directory sign-in through the real app and a real OpenLDAP server: accounts made at first sign-in with
their role and workspace from their groups, every refusal audited and rate-limited, the break-glass
local admin signing in while the directory is down, the periodic check signing out an account the
directory locked, and the licence's "sso" feature required."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ldap3
import pytest

from appliance.accounts import audit, workspaces
from appliance.app.directory_sign_in import DirectorySignIn, NotLicensed
from appliance.core.egress_broker import Destination, DirectConnector
from appliance.web.app import create_app
from appliance.web.server import BackgroundServer
from tests.directory_support import BASE, GROUPS, PASSWORDS, SERVICE_DN, Slapd, people, slapd
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, Scenario, settings_in

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _env(server: Slapd, root: Path, **more: str) -> dict[str, str]:
    # Group DNs hold commas: the map is written in a config file (the environment splits lists at commas).
    config = root / "sotto.toml"
    config.write_text(
        "[group_map]\n"
        f'roles = ["cn=sotto-admins,{GROUPS} -> admin", "cn=sotto-users, {GROUPS.upper()} -> member"]\n'
        f'workspaces = ["cn=team-radio,{GROUPS} -> Newsroom: member"]\n'
    )
    return {
        "APPLIANCE_CONFIG": str(config),
        "APPLIANCE_LDAP__URL": server.url,
        "APPLIANCE_LDAP__BIND_DN": SERVICE_DN,
        "APPLIANCE_LDAP__BIND_PASSWORD_FILE": str(server.password_file),
        "APPLIANCE_LDAP__BASE_DN": BASE,
        "APPLIANCE_LDAP__GROUP_BASE_DN": GROUPS,
        "APPLIANCE_LDAP__DISABLED_FILTER": "(pwdAccountLockedTime=*)",
        "APPLIANCE_LDAP__SYNC_MINUTES": "0",
        "APPLIANCE_SECURITY__EGRESS_ALLOW": f"{server.host}:{server.port}",
        **more,
    }


@dataclass
class Site:
    url: str
    scenario: Scenario
    services: Any
    directory: Slapd

    def login(self, name: str, password: str) -> httpx.Response:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            return client.post("/api/v1/auth/login", json={"email": name, "password": password})

    def failures(self, actor: str) -> list[dict[str, Any]]:
        return [
            e["detail"]
            for e in audit.entries(self.scenario.db, limit=1000)
            if e["action"] == "sign_in.failed" and e["actor"] == actor
        ]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root: Path = tmp_path_factory.mktemp("directory-sign-in")
    with slapd(root / "slapd") as directory:
        scenario = Scenario(settings_in(root, **_env(directory, root, APPLIANCE_SECURITY__ADDRESS_ATTEMPTS_PER_MINUTE="8")))
        alice = scenario.person(ADMIN_EMAIL, "admin", "admin")  # the local, break-glass admin
        scenario.workspace("Newsroom", alice)
        app = create_app(scenario.settings)
        with BackgroundServer(app) as server:
            yield Site(server.url, scenario, app.state.services, directory)
        scenario.close()


def _user(site: Site, email: str) -> dict[str, Any]:
    return next(iter(site.scenario.db.query("SELECT * FROM users WHERE email = ?", [email])))


def test_first_sign_in_makes_the_account_with_its_role_from_the_groups(site: Site) -> None:
    response = site.login("lena", PASSWORDS["lena"])
    assert response.status_code == 200, response.text
    assert response.json()["user"]["email"] == "lena@example.org" and response.json()["user"]["role"] == "admin"
    lena = _user(site, "lena@example.org")
    assert lena["source"] == "ldap" and lena["external_id"] == people("lena")
    entry = next(e for e in audit.entries(site.scenario.db) if e["actor"] == "lena@example.org" and e["action"] == "sign_in")
    assert entry["detail"] == {"via": "ldap"}
    # The directory checks passwords: the local hash is of nothing anyone knows.
    assert site.login("lena@example.org", PASSWORDS["lena"]).status_code == 200  # by e-mail too, still the directory


def test_nested_groups_give_the_role_and_the_workspace(site: Site) -> None:
    response = site.login("nico", PASSWORDS["nico"])
    assert response.status_code == 200, response.text
    assert response.json()["user"]["role"] == "member"  # sotto-users, through team-radio
    nico = _user(site, "nico@example.org")
    newsroom = next(iter(site.scenario.db.query("SELECT id FROM workspaces WHERE name = 'Newsroom'")))["id"]
    assert workspaces.role_of(site.scenario.db, newsroom, nico["id"]) == "member"


def test_wrong_password_unknown_user_unmapped_and_disabled_users_are_refused_and_audited(site: Site) -> None:
    cases = {
        "lena": ("a wrong password", "unknown user or wrong password"),
        "zed": ("whatever it is", "unknown user or wrong password"),
        "olga": (PASSWORDS["olga"], "in no group that maps to a role, and group_map.default_role is empty"),
        "dora": (PASSWORDS["dora"], "disabled in the directory"),
    }
    for name, (password, reason) in cases.items():
        response = site.login(name, password)
        assert response.status_code == 401, (name, response.text)
        assert "not right" in response.json()["detail"]  # one message for every refusal
        assert {"via": "ldap", "reason": reason} in site.failures(name)
    assert not list(site.scenario.db.query("SELECT 1 FROM users WHERE email IN ('olga@example.org', 'dora@example.org')"))


def test_the_periodic_check_signs_out_an_account_the_directory_locked(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as nico:
        assert nico.post("/api/v1/auth/login", json={"email": "nico", "password": PASSWORDS["nico"]}).status_code == 200
        assert nico.get("/api/v1/me").status_code == 200
        admin = ldap3.Connection(f"{site.directory.url}", user=f"cn=admin,{BASE}", password="root secret", auto_bind=True)
        assert admin.modify(people("nico"), {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, ["000001010000Z"])]}), admin.result
        admin.unbind()
        result = site.services.directory.sync(site.scenario.db)
        assert result["error"] is None and result["disabled"] == 1 and result["checked"] >= 2
        assert nico.get("/api/v1/me").status_code == 401
    assert _user(site, "nico@example.org")["disabled"] == 1
    assert site.login("nico", PASSWORDS["nico"]).status_code == 401


def test_the_local_admin_signs_in_while_the_directory_is_down(site: Site, tmp_path: Path) -> None:
    settings = settings_in(
        tmp_path,
        **_env(
            site.directory, tmp_path, APPLIANCE_LDAP__URL="ldap://127.0.0.1:9", APPLIANCE_SECURITY__EGRESS_ALLOW="127.0.0.1:9"
        ),
    )
    scenario = Scenario(settings)
    scenario.person(ADMIN_EMAIL, "admin", "admin")
    try:
        with BackgroundServer(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            down = client.post("/api/v1/auth/login", json={"email": "lena", "password": PASSWORDS["lena"]})
            assert down.status_code == 503 and "cannot be reached" in down.json()["detail"]
            local = client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            assert local.status_code == 200 and local.json()["user"]["role"] == "admin"
    finally:
        scenario.close()


def test_directory_sign_in_needs_the_sso_feature(site: Site) -> None:
    connector = DirectConnector([Destination.parse(f"{site.directory.host}:{site.directory.port}")])
    unlicensed = DirectorySignIn(site.scenario.settings, connector, lambda: ["api", "diarization"])
    with pytest.raises(NotLicensed):
        unlicensed.sign_in(site.scenario.db, "lena", PASSWORDS["lena"], ip=None)
    assert {"via": "ldap", "reason": "not licensed"} in site.failures("lena")


def test_the_admin_page_shows_the_map_the_accounts_and_a_check(site: Site, browser: Any) -> None:
    assert site.login("lena", PASSWORDS["lena"]).status_code == 200
    with httpx.Client(base_url=site.url, timeout=30) as client:
        assert site.scenario.settings.ldap.url in client.get("/privacy").text  # listed as an egress exception
    page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    page.goto(f"{site.url}/login")
    assert page.get_attribute("input[name=email]", "type") == "text"  # directory user names are not e-mail addresses
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}/")
    page.goto(f"{site.url}/admin/users")
    page.click("a:has-text('Directory sign-in')")
    page.locator("#role-map td", has_text="cn=sotto-admins").wait_for()
    assert "Newsroom" in page.inner_text("#workspace-map") and "no such workspace" not in page.inner_text("#workspace-map")
    assert "lena@example.org" in page.inner_text("#directory-accounts")
    page.click("#sync-now")
    page.locator("#sync-status", has_text="checked").wait_for()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "directory-1366.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.screenshot(path=str(SHOTS / "directory-390.png"), full_page=True)
    page.context.close()


def test_a_directory_account_turns_private_transcripts_on_with_its_own_passphrase(site: Site) -> None:
    from appliance.private import crypto as pc

    with httpx.Client(base_url=site.url, timeout=60) as lena:
        signed = lena.post("/api/v1/auth/login", json={"email": "lena", "password": PASSWORDS["lena"]})
        lena.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
        uid = signed.json()["user"]["id"]
        # The step-up check asks for the directory password, checked by the directory (no local one exists).
        enrolment = pc.enrol("a passphrase only lena knows", uid)
        wrong = lena.put("/api/v1/me/private-keys", json={**enrolment.record, "current_password": "not her password"})
        assert wrong.status_code == 400 and "not right" in wrong.json()["detail"]
        same = pc.enrol(PASSWORDS["lena"], uid)  # the passphrase may not be the password the appliance sees
        refused = lena.put("/api/v1/me/private-keys", json={**same.record, "current_password": PASSWORDS["lena"]})
        assert refused.status_code == 400 and "not your sign-in password" in refused.json()["detail"]
        ok = lena.put("/api/v1/me/private-keys", json={**enrolment.record, "current_password": PASSWORDS["lena"]})
        assert ok.status_code == 201, ok.text
        # Unlocking is in the browser with the passphrase: the record opens with it.
        record = lena.get("/api/v1/me/private-keys").json()
        kek = pc.derive_keys("a passphrase only lena knows", pc.KdfParams.from_json(record["kdf"])).kek
        assert pc.unwrap_data_key(kek, record["wrapped_dk"], uid)
        changed = lena.post("/api/v1/me/password", json={"current_password": PASSWORDS["lena"], "new_password": "x" * 20})
        assert changed.status_code == 409 and "directory" in changed.json()["detail"]


def test_failed_directory_sign_ins_are_rate_limited_per_address(site: Site) -> None:
    # Last: the address's window (8 failures a minute here) stays full afterwards.
    statuses = [site.login("lena", f"wrong guess {i}").status_code for i in range(9)]
    assert statuses[-1] == 429 and set(statuses) == {401, 429}, statuses
