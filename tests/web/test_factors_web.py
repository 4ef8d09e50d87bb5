"""Second factors over real HTTP: the two-step sign-in, replays, the address rate limit, audit entries,
the fresh factor before an API key, and the per-role requirement."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from appliance.accounts import audit, factors
from appliance.core.clock import ago
from tests.support import ADMIN_PASSWORD, Scenario, settings_in


class Site:
    def __init__(self, scenario: Scenario, url: str) -> None:
        self.scenario, self.db, self.url = scenario, scenario.db, url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, follow_redirects=False)

    def enrol(self, email: str, role: str = "member") -> str:
        """A user with an authenticator app; its secret."""
        user = self.scenario.person(email, role).user
        enrolment = factors.start_totp(self.db, user)
        factors.confirm_totp(self.db, user.id, pyotp.TOTP(enrolment.secret).now())
        # The enrolment used the current code: step the record back so the test can use it again.
        self.db.execute("UPDATE user_totp SET last_step = last_step - 2 WHERE user_id = ?", [user.id])
        return enrolment.secret

    def password_step(self, client: httpx.Client, email: str) -> dict[str, Any]:
        response = client.post("/api/v1/auth/login", json={"email": email, "password": ADMIN_PASSWORD})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def actions(self, email: str) -> list[tuple[str, Any]]:
        return [(e["action"], e["detail"]) for e in audit.entries(self.db, limit=1000) if e["actor"] == email]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root: Path = tmp_path_factory.mktemp("factors")
    scenario = Scenario(settings_in(root, APPLIANCE_SECURITY__ADDRESS_ATTEMPTS_PER_MINUTE="6"))
    with scenario.serve() as server:
        yield Site(scenario, server.url)
    scenario.close()


def test_password_then_code_then_session_and_a_replayed_code_is_refused(site: Site) -> None:
    secret = site.enrol("tina@example.org")
    with site.client() as client:
        step = site.password_step(client, "tina@example.org")
        assert "csrf_token" not in step and not client.cookies  # no session yet
        assert step["second_factor"]["methods"] == ["totp", "recovery"]
        token = step["second_factor"]["token"]
        assert client.get("/api/v1/me").status_code == 401
        code = pyotp.TOTP(secret).now()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        refused = client.post("/api/v1/auth/login/second-factor", json={"token": token, "code": wrong})
        assert refused.status_code == 401
        signed = client.post("/api/v1/auth/login/second-factor", json={"token": token, "code": code})
        assert signed.status_code == 200, signed.text
        assert client.get("/api/v1/me").json()["user"]["email"] == "tina@example.org"
        # The token was used up with the sign-in.
        again = client.post("/api/v1/auth/login/second-factor", json={"token": token, "code": code})
        assert again.status_code == 401
    with site.client() as other:  # someone who saw the code over the shoulder, with the password
        token = site.password_step(other, "tina@example.org")["second_factor"]["token"]
        replay = other.post("/api/v1/auth/login/second-factor", json={"token": token, "code": code})
        assert replay.status_code == 401 and not other.cookies
    actions = site.actions("tina@example.org")
    assert ("sign_in", {"via": "password", "second_factor": "totp"}) in actions
    assert [a for a, _ in actions].count("sign_in.second_factor_failed") == 2
    assert [a for a, _ in actions].count("sign_in.password_ok") == 2


def test_a_recovery_code_signs_in_once(site: Site) -> None:
    site.enrol("rita@example.org")
    user = site.scenario.person("rita@example.org").user
    codes = factors.new_recovery_codes(site.db, user.id)
    with site.client() as client:
        token = site.password_step(client, "rita@example.org")["second_factor"]["token"]
        ok = client.post("/api/v1/auth/login/second-factor", json={"token": token, "code": codes[0]})
        assert ok.status_code == 200
    with site.client() as client:
        token = site.password_step(client, "rita@example.org")["second_factor"]["token"]
        assert client.post("/api/v1/auth/login/second-factor", json={"token": token, "code": codes[0]}).status_code == 401
    assert ("sign_in", {"via": "password", "second_factor": "recovery"}) in site.actions("rita@example.org")


def _fresh_code(site: Site, email: str, secret: str) -> str:
    """A code the appliance has not seen: the step after the last one it accepted (within the drift window)."""
    last = next(
        iter(site.db.query("SELECT last_step FROM user_totp WHERE user_id = (SELECT id FROM users WHERE email = ?)", [email]))
    )["last_step"]
    return pyotp.TOTP(secret).generate_otp(max(int(time.time()) // 30 - 1, last + 1))


def _signed_in(site: Site, email: str, secret: str) -> httpx.Client:
    client = site.client()
    token = site.password_step(client, email)["second_factor"]["token"]
    response = client.post("/api/v1/auth/login/second-factor", json={"token": token, "code": _fresh_code(site, email, secret)})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def test_an_api_key_needs_a_recent_second_factor(site: Site) -> None:
    secret = site.enrol("kim@example.org")
    client = _signed_in(site, "kim@example.org", secret)
    try:
        assert client.post("/api/v1/apikeys", json={"name": "fresh", "scope": "read"}).status_code == 201
        site.db.execute(
            "UPDATE sessions SET second_factor_at = ? WHERE user_id = (SELECT id FROM users WHERE email = ?)",
            [ago(11), "kim@example.org"],
        )
        stale = client.post("/api/v1/apikeys", json={"name": "stale", "scope": "read"})
        assert stale.status_code == 403 and stale.json()["extra"]["code"] == "second_factor_required"
        proof = client.post("/api/v1/me/second-factor/verify", json={"code": _fresh_code(site, "kim@example.org", secret)})
        assert proof.json() == {"fresh": True, "method": "totp"}
        assert client.post("/api/v1/apikeys", json={"name": "again", "scope": "read"}).status_code == 201
    finally:
        client.close()
    # An admin-scoped key of such an account cannot mint keys at all: it cannot show a second factor.
    admin = site.scenario.person("kim-admin@example.org", "admin", "admin")
    enrolment = factors.start_totp(site.db, admin.user)
    factors.confirm_totp(site.db, admin.id, pyotp.TOTP(enrolment.secret).now())
    with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {admin.key}"}) as keyed:
        refused = keyed.post("/api/v1/apikeys", json={"name": "minted", "scope": "read"})
        assert refused.status_code == 403 and "signed-in session" in refused.json()["detail"]
        assert keyed.get("/api/v1/transcripts").status_code == 200  # keys themselves are unaffected


def test_a_role_that_requires_a_factor_goes_to_enrolment_first(site: Site) -> None:
    site.scenario.person("vera@example.org", "viewer")
    factors.set_required_roles(site.db, {"viewer"})
    try:
        with site.client() as client:
            body = site.password_step(client, "vera@example.org")
            assert body["enrol_second_factor"] is True
            client.headers["X-CSRF-Token"] = body["csrf_token"]
            blocked = client.get("/api/v1/transcripts")
            assert blocked.status_code == 403 and blocked.json()["code"] == "second_factor_enrolment_required"
            page = client.get("/", headers={"Accept": "text/html"})
            assert page.status_code in (302, 303) and page.headers["location"] == "/account/second-factor"
            assert client.get("/account/second-factor").status_code == 200
            assert client.get("/api/v1/me").status_code == 200
            enrolment = client.post("/api/v1/me/totp").json()
            assert "<svg" in enrolment["qr_svg"]
            confirmed = client.post("/api/v1/me/totp/confirm", json={"code": pyotp.TOTP(enrolment["secret"]).now()})
            assert confirmed.status_code == 200 and len(confirmed.json()["recovery_codes"]) == 10
            assert client.get("/api/v1/transcripts").status_code == 200
            # Removing it needs the password and a code; a wrong password is refused whatever the code.
            codes = confirmed.json()["recovery_codes"]
            wrong = client.post("/api/v1/me/totp/remove", json={"password": "not it at all", "code": codes[0]})
            assert wrong.status_code == 400
            assert client.post("/api/v1/me/totp/remove", json={"password": ADMIN_PASSWORD, "code": codes[0]}).status_code == 200
            assert client.get("/api/v1/transcripts").status_code == 403  # the role still requires one
        assert ("second_factor.totp_added", None) in site.actions("vera@example.org")
        assert ("second_factor.totp_removed", None) in site.actions("vera@example.org")
    finally:
        factors.set_required_roles(site.db, set())


def test_wrong_codes_are_rate_limited_per_address(site: Site) -> None:
    # Last in this module: the address's window (6 failures a minute here, counted with wrong passwords)
    # then stays full for a minute.
    site.enrol("gus@example.org")
    with site.client() as client:
        token = site.password_step(client, "gus@example.org")["second_factor"]["token"]
        statuses = [
            client.post("/api/v1/auth/login/second-factor", json={"token": token, "code": "000000"}).status_code for _ in range(7)
        ]
        assert 429 in statuses, statuses
        limited = statuses.index(429)
        assert set(statuses[:limited]) == {401} and set(statuses[limited:]) == {429}
        # The whole sign-in is closed to this address for now, the password step too.
        blocked = client.post("/api/v1/auth/login", json={"email": "gus@example.org", "password": ADMIN_PASSWORD})
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
