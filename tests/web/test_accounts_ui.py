"""Accounts and workspaces in headless Chromium, against the real app: a shared workspace made and a
member invited on the Workspaces page, who accepts and then sees its transcript; an invitation link that
becomes an account; deleting one's own account (the canary nowhere in the database files after); the
audit log for administrators only; a password reset in a dialog, not window.prompt()."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, FakeRecognizer, Member, Scenario, settings_in

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CANARY = "Quetzalcoatl tangerine harmonica"


@dataclass
class World:
    url: str
    scenario: Scenario
    alice: Member
    bob: Member
    carol: Member
    data_dir: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required; scripts/test installs it")
    root = tmp_path_factory.mktemp("accounts-ui")
    scenario = Scenario(settings_in(root, APPLIANCE_SECURITY__ADDRESS_ATTEMPTS_PER_MINUTE="1000"))
    alice = scenario.person(ADMIN_EMAIL, role="admin", scope="admin")
    bob = scenario.person("bob@example.org")
    carol = scenario.person("carol@example.org")
    scenario.transcript(carol, CANARY, filename="carol.wav")
    with scenario.serve(FakeRecognizer()) as server:
        yield World(server.url, scenario, alice, bob, carol, scenario.settings.storage.data_dir)


def _signed_in(browser: Any, world: World, email: str, password: str = ADMIN_PASSWORD, width: int = 1366) -> Any:
    page = browser.new_context(viewport={"width": width, "height": 844 if width < 800 else 768}).new_page()
    page.goto(f"{world.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{world.url}/")
    return page


def test_a_shared_workspace_made_and_joined_in_the_ui_shows_its_transcript(world: World, browser: Any) -> None:
    alice = _signed_in(browser, world, ADMIN_EMAIL)
    alice.click("nav >> text=Workspaces")
    alice.fill("#workspace-form input[name=name]", "Newsroom")
    alice.keyboard.press("Enter")
    alice.wait_for_selector(".workspace h2 >> text=Newsroom")
    section = alice.locator(".workspace", has_text="Newsroom")
    section.locator("input[name=email]").fill("bob@example.org")
    section.locator("select[name=role]").select_option("member")
    section.locator(".invite-form button[type=submit]").click()
    section.locator(".form-status", has_text="Invited bob@example.org").wait_for()
    section.locator("td", has_text="invited, not answered yet").wait_for()
    SHOTS.mkdir(parents=True, exist_ok=True)
    alice.screenshot(path=str(SHOTS / "workspaces-1366.png"), full_page=True)
    workspace = section.get_attribute("data-workspace")
    assert workspace

    bob = _signed_in(browser, world, "bob@example.org", width=390)
    bob.goto(f"{world.url}/workspaces")
    bob.click("a:has-text('Account page')")
    bob.click("#workspace-invitations button:has-text('Join')")
    bob.wait_for_selector("dd >> text=Newsroom")
    world.scenario.transcript(world.alice, "The newsroom budget meeting notes", filename="newsroom.wav", workspace_id=workspace)
    bob.goto(f"{world.url}/")
    bob.wait_for_selector("text=newsroom.wav")
    bob.goto(f"{world.url}/workspaces")
    bob.wait_for_selector(".workspace >> text=Newsroom")
    bob.screenshot(path=str(SHOTS / "workspaces-390.png"), full_page=True)
    assert bob.locator(".workspace", has_text="Newsroom").locator(".invite-form").count() == 0  # a member manages nothing
    alice.reload()
    row = alice.locator(".workspace", has_text="Newsroom").locator("tr", has_text="bob@example.org")
    row.locator("select").select_option("viewer")
    alice.locator(".workspace", has_text="Newsroom").locator(".form-status", has_text="now viewer").wait_for()
    alice.context.close()
    bob.context.close()


def test_enter_pressed_before_the_page_script_arrives_is_sent_by_it_not_by_the_browser(world: World, browser: Any) -> None:
    """The page's script is held back while the person types and presses Enter: without the early guard
    the browser would send the form itself, as a GET to this page (the password in the address bar, no
    sign-in, no workspace). With it the submit waits and the page's script sends it once it is in."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    page.route("**/static/login-*.js", hold)
    page.goto(f"{world.url}/login", wait_until="commit")
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)  # time for a native submission to navigate, were it not held
    assert "?" not in page.url and ADMIN_PASSWORD not in page.url, "the browser sent the sign-in form itself"
    assert len(held) == 1, "the sign-in script was not held back, so this test checks nothing"
    held[0].continue_()
    page.wait_for_url(f"{world.url}/")  # signed in, by the page's script

    page.unroute("**/static/login-*.js", hold)
    page.route("**/static/workspaces-*.js", hold)
    page.goto(f"{world.url}/workspaces", wait_until="commit")
    page.fill("#workspace-form input[name=name]", "Early desk")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert len(held) == 2 and "name=" not in page.url
    held[1].continue_()
    page.wait_for_selector(".workspace h2 >> text=Early desk")
    assert page.locator(".workspace h2", has_text="Early desk").count() == 1  # sent once, not twice

    # A script that never arrives: the form is still not sent by the browser, and the page says why.
    page.unroute("**/static/workspaces-*.js", hold)
    page.route("**/static/workspaces-*.js", lambda route: route.abort())
    page.goto(f"{world.url}/workspaces")
    page.fill("#workspace-form input[name=name]", "Never sent")
    page.keyboard.press("Enter")
    page.get_by_role("alert").filter(has_text="did not finish loading").wait_for()
    assert "name=" not in page.url
    page.unroute("**/static/workspaces-*.js")
    page.reload()
    page.wait_for_selector(".workspace h2 >> text=Early desk")
    assert page.locator(".workspace h2", has_text="Never sent").count() == 0
    context.close()


def test_a_workspace_admin_writes_restores_ai_instructions_by_keyboard_on_a_phone(world: World, browser: Any) -> None:
    from appliance.assist import workspace_settings

    team = world.scenario.workspace("Summaries team", world.alice, {world.bob.id: "member"})
    alice = _signed_in(browser, world, ADMIN_EMAIL, width=390)
    errors: list[str] = []
    alice.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # The settings' first load is held back until the person has typed: coming back late, it must not
    # overwrite what they typed (it did, on a slow CI run, and version 1 was saved empty).
    late: list[Any] = []

    def hold_load(route: Any) -> None:
        if route.request.method == "GET":
            late.append(route)
        else:
            route.continue_()

    alice.route(f"**/api/v1/workspaces/{team}/assist", hold_load)
    alice.goto(f"{world.url}/workspaces")
    form = alice.locator(f".workspace[data-workspace='{team}'] .assist-form")
    form.locator("textarea[name=instructions]").fill("Write for the newsroom editors.")
    assert len(late) == 1
    late[0].continue_()
    form.locator("textarea[name=instructions]").press("Tab")  # keyboard only: the checkbox, then Save
    alice.keyboard.press("Space")
    alice.keyboard.press("Tab")
    alice.keyboard.press("Enter")
    form.locator(".form-status", has_text="Saved as version 1.").wait_for()
    assert form.locator(".assist-history").is_hidden()  # nothing earlier yet
    form.locator("textarea[name=instructions]").fill("Three sentences at most.")
    form.locator("button[type=submit]").click()
    form.locator(".form-status", has_text="Saved as version 2.").wait_for()
    form.locator(".assist-history summary").click()
    form.locator("button", has_text="Restore version 1").click()
    form.locator(".form-status", has_text="Version 1 restored as version 3.").wait_for()
    assert form.locator("textarea[name=instructions]").input_value() == "Write for the newsroom editors."
    assert form.locator("input[name=auto_summarize]").is_checked()
    assert alice.evaluate("() => document.documentElement.scrollWidth") <= 390  # fits a phone
    SHOTS.mkdir(parents=True, exist_ok=True)
    alice.screenshot(path=str(SHOTS / "workspaces-ai-390.png"), full_page=True)
    current = workspace_settings.current(world.scenario.db, team)
    assert (current.version, current.restored_from, current.auto_summarize) == (3, 1, True)
    assert not [e for e in errors if "Content Security Policy" in e or "Uncaught" in e], errors
    alice.context.close()

    bob = _signed_in(browser, world, "bob@example.org")  # a member of the workspace: no AI settings to change
    bob.goto(f"{world.url}/workspaces")
    bob.locator(f".workspace[data-workspace='{team}']").wait_for()
    assert bob.locator(f".workspace[data-workspace='{team}'] .assist-form").count() == 0
    bob.context.close()


def test_an_invitation_link_becomes_an_account(world: World, browser: Any) -> None:
    """In the invitee's language, chosen by the inviter: the message to send, the invitation page (whatever
    the invitee's browser says), the sign-in after it, and the account it makes."""
    alice = _signed_in(browser, world, ADMIN_EMAIL)
    alice.goto(f"{world.url}/admin/users")
    assert alice.input_value("#invite-form select[name=language]") == "en"  # the appliance's default
    alice.select_option("#invite-form select[name=language]", "de")
    alice.fill("#invite-form input[name=email]", "dave@example.org")
    alice.keyboard.press("Enter")
    link = alice.locator("#invite-link")
    link.locator("text=/invite?lang=de#").wait_for()
    url = link.inner_text()
    message = alice.locator("#invite-message")
    assert message.get_attribute("lang") == "de" and message.is_visible()
    assert message.inner_text().startswith("Sie sind zu Sotto eingeladen") and url in message.inner_text()
    alice.context.close()
    stranger = browser.new_context(locale="en-GB").new_page()
    stranger.goto(url)
    assert stranger.get_attribute("html", "lang") == "de"
    stranger.fill("input[name=password]", "a long new password")
    stranger.fill("input[name=again]", "a different password")
    stranger.keyboard.press("Enter")
    stranger.wait_for_selector("#invite-status >> text=Die beiden Passwörter unterscheiden sich.")
    stranger.fill("input[name=again]", "a long new password")
    stranger.keyboard.press("Enter")
    stranger.wait_for_selector("text=Ihr Konto ist bereit")
    stranger.context.close()
    dave = _signed_in(browser, world, "dave@example.org", "a long new password")  # a fresh browser, English
    assert "dave@example.org" in dave.inner_text("header") and dave.get_attribute("html", "lang") == "de"
    dave.context.close()


def test_deleting_my_account_in_the_ui_leaves_nothing_of_it(world: World, browser: Any) -> None:
    carol = _signed_in(browser, world, "carol@example.org")
    carol.goto(f"{world.url}/account")
    carol.click("#delete-account")
    carol.keyboard.press("Escape")  # Esc cancels
    assert carol.locator("#delete-account-dialog[open]").count() == 0
    carol.click("#delete-account")
    carol.fill("#delete-account-dialog input[name=password]", "not my password")
    carol.keyboard.press("Enter")
    carol.wait_for_selector("#delete-account-dialog .form-status >> text=not right")
    carol.fill("#delete-account-dialog input[name=password]", ADMIN_PASSWORD)
    carol.keyboard.press("Enter")  # Enter confirms
    carol.wait_for_selector("text=Your account and everything it owned were deleted.")
    carol.context.close()
    files = [p for p in world.data_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if CANARY.split(maxsplit=1)[0].encode() in p.read_bytes()]
    with httpx.Client(base_url=world.url) as anyone:
        assert (
            anyone.post("/api/v1/auth/login", json={"email": "carol@example.org", "password": ADMIN_PASSWORD}).status_code == 401
        )


def test_audit_log_for_admins_and_a_reset_in_a_dialog(world: World, browser: Any) -> None:
    alice = _signed_in(browser, world, ADMIN_EMAIL)
    alice.click("nav >> text=Audit log")
    alice.wait_for_selector('table.audit code:text-is("sign_in")')
    assert "kept until someone deletes them" in alice.inner_text("#retention-title + dl")
    alice.goto(f"{world.url}/admin/users")
    row = alice.locator("tr", has_text="bob@example.org")
    row.locator(".user-reset").click()
    alice.keyboard.press("Escape")
    row.locator(".user-reset").click()
    alice.fill("#reset-dialog input[name=password]", "bob's brand new password")
    alice.keyboard.press("Enter")
    alice.wait_for_selector("#user-status >> text=Password reset")
    alice.context.close()
    bob = _signed_in(browser, world, "bob@example.org", "bob's brand new password")
    response = bob.goto(f"{world.url}/admin/audit")
    assert response is not None and response.status == 403
    bob.context.close()


def test_an_admin_deletes_a_user_and_keeps_their_transcripts(world: World, browser: Any) -> None:
    erin = world.scenario.person("erin@example.org")
    world.scenario.transcript(erin, "Erin's quarterly handover notes", filename="handover.wav")
    alice = _signed_in(browser, world, ADMIN_EMAIL)
    alice.goto(f"{world.url}/admin/users")
    alice.locator("tr", has_text="erin@example.org").locator(".user-delete").click()
    alice.keyboard.press("Escape")  # Esc cancels
    assert alice.locator("tr", has_text="erin@example.org").count() == 1
    alice.locator("tr", has_text="erin@example.org").locator(".user-delete").click()
    alice.keyboard.press("Enter")  # the default: give the transcripts to the admin doing it
    alice.wait_for_selector("#user-status >> text=Transcripts given to the new owner: 1.")
    assert alice.locator("tr", has_text="erin@example.org").count() == 0
    alice.goto(f"{world.url}/")
    alice.wait_for_selector("text=handover.wav")
    alice.context.close()
    with httpx.Client(base_url=world.url) as anyone:
        assert (
            anyone.post("/api/v1/auth/login", json={"email": "erin@example.org", "password": ADMIN_PASSWORD}).status_code == 401
        )


def test_a_phone_shows_at_least_twelve_lines_of_transcript_on_its_first_screen(world: World, browser: Any) -> None:
    """At 390x844 the header is one line (the rest of the links fold into "More") and the player is compact."""
    long_text = " ".join(["The committee agreed to review the budget again next week."] * 30)
    tid = world.scenario.transcript(world.alice, long_text, filename="long.wav")
    page = _signed_in(browser, world, ADMIN_EMAIL, width=390)
    page.goto(f"{world.url}/t/{tid}")
    page.wait_for_selector("#transcript .w")
    header = page.evaluate("() => document.querySelector('header.top').getBoundingClientRect().height")
    text_top = page.evaluate("() => document.querySelector('#transcript .seg-text').getBoundingClientRect().top")
    player_top = page.evaluate("() => document.querySelector('#player').getBoundingClientRect().top")
    line = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#transcript .seg-text')).lineHeight)")
    assert header < 60, header
    assert (player_top - text_top) / line >= 12, (text_top, player_top, line)
    page.click("summary:has-text('More')")  # every other page is one tap away
    page.click(".nav-more-list >> text=Workspaces")
    page.wait_for_url(f"{world.url}/workspaces")
    page.context.close()
