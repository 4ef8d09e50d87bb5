"""Sessions, CSRF, fixation, lockout, enumeration, invites, setup, quotas: over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from appliance.accounts import users as accounts
from appliance.core import migrations
from appliance.core.config import Settings, load
from appliance.core.db import connect
from tests.support import ADMIN_PASSWORD, FakeRecognizer, LiveServer


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    from appliance.web.app import create_app

    db = connect(settings.storage.database_path)
    migrations.apply(db)
    accounts.create(db, "alice@example.org", ADMIN_PASSWORD, "admin")
    accounts.create(db, "bob@example.org", ADMIN_PASSWORD, "member")
    db.conn.close()
    with LiveServer(create_app(settings, recognizer=FakeRecognizer())) as running_server:
        yield running_server


def _login(client: httpx.Client, email: str = "bob@example.org", password: str = ADMIN_PASSWORD) -> httpx.Response:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def test_login_sets_a_safe_cookie_and_csrf_guards_changes(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        response = _login(client)
        assert response.status_code == 200
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        csrf = response.json()["csrf_token"]
        assert client.get("/api/v1/me").json()["user"]["email"] == "bob@example.org"
        # A cookie-authenticated change without the CSRF token is refused, with it allowed.
        refused = client.post("/api/v1/workspaces", json={"name": "Team"})
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        wrong = client.post("/api/v1/workspaces", json={"name": "Team"}, headers={"X-CSRF-Token": "guess"})
        assert wrong.status_code == 403
        assert client.post("/api/v1/workspaces", json={"name": "Team"}, headers={"X-CSRF-Token": csrf}).status_code == 201


def test_session_fixation_a_planted_cookie_is_not_adopted(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        client.cookies.set("sotto_session", "attacker-chosen-value", domain="127.0.0.1")
        _login(client)
        assert client.cookies.get("sotto_session") != "attacker-chosen-value"
        assert client.get("/api/v1/me").status_code == 200
    with httpx.Client(base_url=server.url, cookies={"sotto_session": "attacker-chosen-value"}) as attacker:
        assert attacker.get("/api/v1/me").status_code == 401
    # Signing in again rotates the id: the old cookie stops working.
    with httpx.Client(base_url=server.url) as client:
        _login(client)
        first = client.cookies.get("sotto_session")
        _login(client)
        assert client.cookies.get("sotto_session") != first
        with httpx.Client(base_url=server.url, cookies={"sotto_session": first}) as old:
            assert old.get("/api/v1/me").status_code == 401


def test_logout_and_logout_everywhere(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as laptop, httpx.Client(base_url=server.url) as phone:
        csrf = _login(laptop).json()["csrf_token"]
        _login(phone)
        assert laptop.post("/api/v1/auth/logout-all", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert phone.get("/api/v1/me").status_code == 401
        assert laptop.get("/api/v1/me").status_code == 401


def test_lockout_after_repeated_failures(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        for _ in range(5):
            assert _login(client, password="wrong password!").status_code == 401
        # Locked now: even the right password is refused, with the same message.
        locked = _login(client)
        assert locked.status_code == 401
        assert locked.json()["detail"] == _login(client, password="nope nope nope").json()["detail"]


def test_no_user_enumeration(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        unknown = _login(client, email="nobody@example.org", password="wrong password!")
        known = _login(client, email="alice@example.org", password="wrong password!")
        assert unknown.status_code == known.status_code == 401
        assert unknown.json() == known.json()

        # Timing: an unknown address still costs an Argon2 verification (within a generous factor).
        def timed(email: str) -> float:
            started = time.perf_counter()
            _login(client, email=email, password="wrong password!")
            return time.perf_counter() - started

        unknown_t = min(timed("nobody@example.org") for _ in range(3))
        known_t = min(timed("alice@example.org") for _ in range(3))
        assert unknown_t > known_t / 4


def test_disabled_user_and_revoked_session(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as admin, httpx.Client(base_url=server.url) as bob:
        csrf = _login(admin, "alice@example.org").json()["csrf_token"]
        _login(bob)
        bob_id = bob.get("/api/v1/me").json()["user"]["id"]
        assert admin.post(f"/api/v1/users/{bob_id}/disable", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert bob.get("/api/v1/me").status_code == 401
        assert _login(bob).status_code == 401


def test_invite_flow_and_one_time_use(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as admin:
        csrf = _login(admin, "alice@example.org").json()["csrf_token"]
        token = admin.post(
            "/api/v1/invites", json={"email": "carol@example.org", "role": "viewer"}, headers={"X-CSRF-Token": csrf}
        ).json()["token"]
    with httpx.Client(base_url=server.url) as anyone:
        accepted = anyone.post("/api/v1/invites/accept", json={"token": token, "password": "carol's long pass"})
        assert accepted.status_code == 201 and accepted.json()["role"] == "viewer"
        again = anyone.post("/api/v1/invites/accept", json={"token": token, "password": "another long pass"})
        assert again.status_code == 400 and "not valid" in again.json()["detail"]
        assert _login(anyone, "carol@example.org", "carol's long pass").status_code == 200


def test_password_change_ends_other_sessions(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as one, httpx.Client(base_url=server.url) as two:
        csrf = _login(one).json()["csrf_token"]
        _login(two)
        changed = one.post(
            "/api/v1/me/password",
            json={"current_password": ADMIN_PASSWORD, "new_password": "a brand new secret"},
            headers={"X-CSRF-Token": csrf},
        )
        assert changed.status_code == 200
        assert one.get("/api/v1/me").status_code == 200
        assert two.get("/api/v1/me").status_code == 401
        assert _login(two, password="a brand new secret").status_code == 200


def test_setup_page_only_while_no_user_exists(settings: Settings) -> None:
    from appliance.web.app import create_app

    app = create_app(settings)
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as client:
        # First run: the front door and the sign-in page lead to setup (nobody could sign in yet).
        first = client.get("/", follow_redirects=True)
        assert first.url.path == "/setup" and "setup code" in first.text.lower()
        assert client.get("/login", follow_redirects=False).headers["location"] == "/setup"
        page = client.get("/setup")
        assert page.status_code == 200 and "setup code" in page.text.lower()
        code = app.state.services.setup_code
        wrong = client.post("/setup", data={"setup_code": "00000000", "email": "root@example.org", "password": "long enough pw"})
        assert "not right" in wrong.text
        done = client.post("/setup", data={"setup_code": code, "email": "root@example.org", "password": "long enough pw"})
        assert done.status_code == 200 and "was created" in done.text
        assert 'href="/login"' in done.text  # and on from there: sign in
        later = client.get("/setup", follow_redirects=False)
        assert later.status_code in (301, 302, 303, 307) and later.headers["location"] == "/login"
        assert client.get("/", follow_redirects=True).url.path == "/login"  # the front door now asks to sign in
        again = client.post(
            "/setup", data={"setup_code": code, "email": "evil@example.org", "password": "long enough pw"}, follow_redirects=False
        )
        assert again.status_code in (301, 302, 303, 307)
        assert _login(client, "root@example.org", "long enough pw").json()["user"]["role"] == "admin"
        assert _login(client, "evil@example.org", "long enough pw").status_code == 401


def test_first_run_in_a_browser_from_the_front_door_to_the_library(settings: Settings, browser: Any) -> None:
    """What a new operator does: open the address, create the administrator, follow the link on, sign in."""
    from appliance.web.app import create_app

    app = create_app(settings)
    with LiveServer(app) as server:
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.goto(server.url + "/")
        assert page.url == server.url + "/setup"
        page.fill("input[name=setup_code]", app.state.services.setup_code)
        page.fill("input[name=email]", "root@example.org")
        page.fill("input[name=password]", "long enough pw")
        page.press("input[name=password]", "Enter")
        onward = page.locator("#setup-sign-in")
        assert "root@example.org" in onward.inner_text()
        onward.click()
        page.wait_for_url(server.url + "/login")
        assert page.input_value("input[name=email]") in ("", "root@example.org")
        page.fill("input[name=email]", "root@example.org")
        page.fill("input[name=password]", "long enough pw")
        page.press("input[name=password]", "Enter")
        page.wait_for_url(server.url + "/")
        assert page.locator("h1").inner_text() == "Library"
        page.goto(server.url + "/setup")  # after the first run, setup is gone for good
        assert page.url == server.url + "/login" or page.url == server.url + "/"
        context.close()


def test_rate_limit_and_concurrent_job_quota(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from appliance.web.app import create_app
    from tests.support import bootstrap

    settings = load(
        None,
        {
            "APPLIANCE_DATA_DIR": str(tmp_path),
            "APPLIANCE_QUOTAS__REQUESTS_PER_MINUTE": "5",
            "APPLIANCE_QUOTAS__CONCURRENT_JOBS": "1",
        },
    )
    key = bootstrap(settings)
    with (
        LiveServer(create_app(settings, recognizer=FakeRecognizer(delay=3))) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        import io
        import wave

        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\x00\x01" * 16000)
        assert client.post("/api/v1/transcriptions", files={"file": ("a.wav", buffer.getvalue())}).status_code == 202
        second = client.post("/api/v1/transcriptions", files={"file": ("a.wav", buffer.getvalue())})
        assert second.status_code == 429 and "jobs waiting or running" in second.json()["detail"]
        statuses = [client.get("/api/v1/models").status_code for _ in range(5)]
        assert statuses[-1] == 429
        limited = client.get("/api/v1/models")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert client.get("/healthz").status_code in (200, 503)  # health is never rate limited
