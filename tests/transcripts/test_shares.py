"""Share links over real HTTP, and in headless Chromium without a session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from appliance.core.config import Settings
from appliance.core.db import connect
from tests.browser import ARGS
from tests.support import FakeRecognizer, Scenario

SECRET_LINE = "The merger closes on Friday."


class World:
    def __init__(self, settings: Settings) -> None:
        self.scenario = Scenario(settings)
        alice = self.scenario.person("alice@example.org")
        self.alice, self.key = alice.user, alice.key
        self.transcript = self.scenario.transcript(alice, SECRET_LINE, filename="board.wav", speaker="S1")
        self.other = self.scenario.transcript(alice, "other private words", filename="other.wav")
        self.scenario.close()


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[World, httpx.Client, str]]:
    w = World(settings)
    with (
        w.scenario.serve(FakeRecognizer()) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {w.key}"}) as owner,
    ):
        yield w, owner, server.url


def _share(owner: httpx.Client, transcript: str, **body: Any) -> dict[str, Any]:
    response = owner.post(f"/api/v1/transcripts/{transcript}/shares", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_public_page_shows_only_this_transcript(world) -> None:  # type: ignore[no-untyped-def]
    w, owner, url = world
    link = _share(owner, w.transcript, formats=["txt", "pdf"])
    with httpx.Client(base_url=url) as stranger:
        page = stranger.get(link["path"])
        assert page.status_code == 200 and SECRET_LINE in page.text and "Speaker 1" in page.text
        assert "alice@example.org" not in page.text and w.other not in page.text and "other private words" not in page.text
        assert stranger.get(f"{link['path']}/export", params={"format": "txt"}).text.startswith("[00:00.5] Speaker 1:")
        pdf = stranger.get(f"{link['path']}/export", params={"format": "pdf"})
        assert pdf.content.startswith(b"%PDF")
        assert stranger.get(f"{link['path']}/export", params={"format": "docx"}).status_code == 403
        # The file name often says what a recording is about: never on a public page or in its exports.
        txt = stranger.get(f"{link['path']}/export", params={"format": "txt"})
        assert "board" not in page.text and "board" not in txt.text and "board" not in txt.headers["content-disposition"]
        assert "board" not in pdf.headers["content-disposition"] and "Shared transcript" in page.text
    # A title its owner gave is shown instead.
    revision = owner.get(f"/api/v1/transcripts/{w.transcript}").json()["revision"]
    titled = owner.post(
        f"/api/v1/transcripts/{w.transcript}/edits",
        json={"base_revision": revision, "ops": [{"op": "title", "text": "Quarterly board meeting"}]},
    )
    assert titled.status_code == 200, titled.text
    with httpx.Client(base_url=url) as stranger:
        assert "Quarterly board meeting" in stranger.get(link["path"]).text
        assert stranger.get("/api/v1/transcripts").status_code == 401  # the link is no session
    assert owner.get(f"/api/v1/transcripts/{w.transcript}/shares").json()[0]["views"] == 2


def test_options_hide_speakers_and_timestamps(world) -> None:  # type: ignore[no-untyped-def]
    w, owner, url = world
    link = _share(owner, w.transcript, include_speakers=False, include_timestamps=False, formats=["txt"])
    with httpx.Client(base_url=url) as stranger:
        page = stranger.get(link["path"]).text
        assert "Speaker 1" not in page and "[00:00" not in page and SECRET_LINE in page
        assert stranger.get(f"{link['path']}/export", params={"format": "txt"}).text == SECRET_LINE + "\n"


def test_password_is_required_refused_and_rate_limited(world) -> None:  # type: ignore[no-untyped-def]
    w, owner, url = world
    link = _share(owner, w.transcript, password="open sesame")
    assert link["password"] is True
    with httpx.Client(base_url=url) as stranger:
        gate = stranger.get(link["path"])
        assert gate.status_code == 200 and SECRET_LINE not in gate.text and 'type="password"' in gate.text
        assert stranger.get(f"{link['path']}/export", params={"format": "txt"}).status_code == 401
        wrong = stranger.post(link["path"], data={"password": "guess"})
        assert wrong.status_code == 401 and "not right" in wrong.text and SECRET_LINE not in wrong.text
        for _ in range(3):
            assert stranger.post(link["path"], data={"password": "guess"}).status_code == 401
        locked = stranger.post(link["path"], data={"password": "guess"})  # the fifth wrong one locks the link
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    with httpx.Client(base_url=url) as friend:
        # The lock holds for everyone, even with the right password, until it runs out.
        assert friend.post(link["path"], data={"password": "open sesame"}).status_code == 429


def test_right_password_opens_the_page_and_exports(world) -> None:  # type: ignore[no-untyped-def]
    w, owner, url = world
    link = _share(owner, w.transcript, password="open sesame")
    with httpx.Client(base_url=url) as friend:
        opened = friend.post(link["path"], data={"password": "open sesame"}, follow_redirects=True)
        assert opened.status_code == 200 and SECRET_LINE in opened.text
        assert friend.get(f"{link['path']}/export", params={"format": "srt"}).status_code == 200


def test_expired_is_410_revoked_and_deleted_are_404(world, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    w, owner, url = world
    expiring = _share(owner, w.transcript, expires_in_days=1)
    revoked = _share(owner, w.transcript)
    db = connect(settings.storage.database_path)
    db.execute("UPDATE share_links SET expires_at = '2000-01-01T00:00:00.000Z' WHERE id = ?", [expiring["id"]])
    assert owner.delete(f"/api/v1/shares/{revoked['id']}").status_code == 204
    with httpx.Client(base_url=url) as stranger:
        assert stranger.get(expiring["path"]).status_code == 410
        assert stranger.get(revoked["path"]).status_code == 404
        assert stranger.get("/s/made-up-token").status_code == 404
        live = _share(owner, w.transcript)
        assert stranger.get(live["path"]).status_code == 200
        assert owner.delete(f"/api/v1/transcripts/{w.transcript}").status_code == 204
        assert stranger.get(live["path"]).status_code == 404  # deleting the transcript kills its links at once
    assert next(iter(db.query("SELECT count(*) AS n FROM share_links")))["n"] == 0


def test_workspace_policy_forbids_public_links(world) -> None:  # type: ignore[no-untyped-def]
    w, owner, url = world
    existing = _share(owner, w.transcript)
    assert (
        owner.put(f"/api/v1/workspaces/{w.alice.personal_workspace_id}/policy", json={"allow_public_links": False}).status_code
        == 200
    )
    refused = owner.post(f"/api/v1/transcripts/{w.transcript}/shares", json={})
    assert refused.status_code == 403 and "do not allow public links" in refused.json()["detail"]
    with httpx.Client(base_url=url) as stranger:
        assert stranger.get(existing["path"]).status_code == 404


def test_bad_share_requests(world) -> None:  # type: ignore[no-untyped-def]
    w, owner, _url = world
    for body, message in (
        ({"formats": ["exe"]}, "formats"),
        ({"password": "123"}, "6 to 200"),
        ({"expires_in_days": -1}, "expires_in_days"),
    ):
        response = owner.post(f"/api/v1/transcripts/{w.transcript}/shares", json=body)
        assert response.status_code == 400 and message in response.json()["detail"]
    assert owner.post("/api/v1/transcripts/nope/shares", json={}).status_code == 404


def test_share_link_in_headless_chromium_without_a_session(world) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required; scripts/test installs it")

    w, owner, url = world
    link = _share(owner, w.transcript, password="open sesame", formats=["txt"])
    args = list(ARGS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=args)
        page = browser.new_context().new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url + link["path"])
        assert page.locator("input[type=password]").is_visible()
        page.fill("input[name=password]", "wrong one")
        page.click("button[type=submit]")
        assert "not right" in page.locator("#share-error").inner_text()
        page.fill("input[name=password]", "open sesame")
        page.click("button[type=submit]")
        page.wait_for_selector("#transcript")
        assert SECRET_LINE in page.locator("#transcript").inner_text()
        assert page.locator("a.download").count() == 1
        # The CSP blocked nothing the page needed (the wrong password's 401 is expected).
        assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
        browser.close()
