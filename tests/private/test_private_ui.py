"""Private transcripts in the browser, end to end: Debian's chromium driven by Playwright, the real app on a
loopback port (a secure context) with the real tiny Whisper model. The tests run in order and share one
appliance: turn private mode on, a private upload whose canary never reaches the disk or the logs, an edit
saved as a new envelope, encrypted links and a teammate, search in the browser, a passphrase change,
converting a standard transcript, and plain HTTP on a LAN name."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.accounts import apikeys, workspaces
from appliance.accounts import users as accounts
from appliance.core.config import Settings
from appliance.core.db import connect
from appliance.private import crypto as pc
from tests.browser import ARGS
from tests.private_support import CANARY, CANARY_WORDS, LogCapture, Scanner, needles
from tests.support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Scenario,
    settings_in,
    signed_in,
    speak,
    wait_for_job,
)

BOB, DAVE, MALLORY = "bob@example.org", "dave@example.org", "mallory@example.org"
PASSPHRASE = "alice's private passphrase"
BOB_PASSPHRASE = "bob's private passphrase"
NEW_PASSPHRASE = "a brand new passphrase"
STANDARD_TEXT = "Seventeen violet umbrellas drifted across Amsterdam canals this morning."


@dataclass
class World:
    url: str
    settings: Settings
    alice: httpx.Client  # by API key: unaffected by passphrase changes
    bob_uid: str
    team: str
    canary: Path
    standard: Path
    logs: LogCapture
    bob_recovery: str
    state: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import logging

    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required; scripts/test installs it")
    root = tmp_path_factory.mktemp("private-ui")
    scenario = Scenario(settings_in(root))
    settings = scenario.settings
    alice = scenario.person(ADMIN_EMAIL, role="admin", scope="admin")
    key = alice.key
    users = {email: scenario.person(email).user for email in (BOB, DAVE, MALLORY)}
    team = scenario.workspace("Newsroom", alice, {users[BOB].id: "member"})
    scenario.close()
    canary = speak(root / "canary.wav", CANARY)
    standard = speak(root / "standard.wav", STANDARD_TEXT)
    logs = LogCapture()
    logs.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger()
    previous = logger.level
    logger.addHandler(logs)
    logger.setLevel(logging.DEBUG)
    try:
        with (
            scenario.serve() as server,
            httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as http,
        ):
            # Bob has private transcripts on, with a passphrase of their own.
            enrolment = pc.enrol(BOB_PASSPHRASE, users[BOB].id)
            with closing(signed_in(server.url, BOB)) as bob_session:  # as the account page does
                assert (
                    bob_session.put(
                        "/api/v1/me/private-keys", json={**enrolment.record, "current_password": ADMIN_PASSWORD}
                    ).status_code
                    == 201
                )
            yield World(server.url, settings, http, users[BOB].id, team, canary, standard, logs, enrolment.recovery_key)
    finally:
        logger.removeHandler(logs)
        logger.setLevel(previous)


@pytest.fixture(scope="module")
def playwright(world: World) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    b = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
    yield b
    b.close()


class Page:
    """A signed-in page, through the sign-in form."""

    def __init__(self, browser: Any, world: World, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(world.url + "/login?next=/")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", password)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_url(world.url + "/", timeout=30000)

    def unlock(self, secret: str = PASSPHRASE, recovery: bool = False, then_reloads: bool = False) -> None:
        """Answer the unlock dialog; `then_reloads` when what asked for the keys reloads the page once it has them
        (the reloaded page may open its own dialog at once, so waiting for this one to close would race it)."""
        self.page.wait_for_selector("#unlock-dialog[open]")
        if recovery:
            self.page.click("#unlock-use-recovery")
            self.page.fill("#unlock-recovery", secret)
        else:
            self.page.fill("#unlock-password", secret)
        if then_reloads:
            with self.page.expect_navigation(timeout=60000):
                self.page.click("#unlock-ok")
            return
        self.page.click("#unlock-ok")
        self.page.wait_for_selector("#unlock-dialog[open]", state="detached", timeout=30000)

    def clean(self) -> None:
        bad = [e for e in self.errors if "Content Security Policy" in e or "Refused" in e or "Uncaught" in e or "TypeError" in e]
        assert not bad, bad

    def close(self) -> None:
        self.context.close()


def _envelopes(world: World) -> dict[str, Any]:
    ids = [t["id"] for t in world.alice.get("/api/v1/private/transcripts").json()]
    return {t: world.alice.get(f"/api/v1/transcripts/{t}/envelope").json() for t in ids}


def _disk_hits(world: World, words: tuple[str, ...]) -> set[str]:
    return Scanner(world.settings.storage.data_dir, needles(words)).scan()


def test_1_turn_on_private_transcripts_and_see_the_recovery_key_once(world: World, browser: Any) -> None:
    ui = Page(browser, world)
    page = ui.page
    response = page.goto(world.url + "/account")
    assert response.headers["cache-control"] == "no-store"
    card = page.inner_text("#private")
    # The threat model and the consequence of an administrator's reset, before anything is turned on.
    assert "copy of its database" in card and "not protected" in card.lower()
    assert "nobody can reset it, not even an administrator" in card.replace("\n", " ")
    assert "not your password" in card
    page.check("#enrol-form input[name=understood]")
    page.fill("#enrol-form input[name=current_password]", ADMIN_PASSWORD)
    # The sign-in password as the passphrase is refused before any key is made; so is a typo in the repeat.
    for passphrase, repeat, why in (
        (ADMIN_PASSWORD, ADMIN_PASSWORD, "not your sign-in password"),
        (PASSPHRASE, PASSPHRASE + "x", "not the same"),
    ):
        page.fill("#enrol-form input[name=new_passphrase]", passphrase)
        page.fill("#enrol-form input[name=repeat_passphrase]", repeat)
        page.click("#enrol-form button[type=submit]")
        page.wait_for_function("why => document.getElementById('enrol-state').textContent.includes(why)", arg=why)
        assert world.alice.get("/api/v1/me/private-keys").status_code == 404
    page.fill("#enrol-form input[name=new_passphrase]", PASSPHRASE)
    page.fill("#enrol-form input[name=repeat_passphrase]", PASSPHRASE)
    page.press("#enrol-form input[name=repeat_passphrase]", "Enter")
    page.wait_for_selector("#recovery-shown:not(.hidden)", timeout=30000)
    recovery = page.inner_text("#recovery-key").strip()
    assert re.fullmatch(r"([A-Z2-7]{4}-){12}[A-Z2-7]{4}", recovery), recovery
    assert page.is_disabled("#recovery-done")
    with page.expect_download() as download:
        page.click("#recovery-download")
    assert recovery in Path(download.value.path()).read_text()
    page.check("#recovery-stored")
    page.click("#recovery-done")
    page.wait_for_selector("#private-passphrase-form")
    assert world.alice.get("/api/v1/me/private-keys").status_code == 200
    world.state["recovery"] = recovery
    ui.clean()
    ui.close()


def test_2_private_upload_canary_never_on_disk_and_shown_after_unlock(world: World, browser: Any) -> None:
    ui = Page(browser, world)  # the password still signs in: the passphrase is asked for only to unlock
    page = ui.page
    page.goto(world.url + "/new")
    page.select_option("select[name=workspace_id]", world.team)
    assert page.is_enabled("input[name=private]")
    page.check("input[name=private]")
    with Scanner(world.settings.storage.data_dir, needles()) as scanner:
        page.set_input_files("#file-input", str(world.canary))
        page.click("#transcribe")
        page.wait_for_selector("#queue li .f-open:not(.hidden)", timeout=180000)
        time.sleep(0.3)
    assert scanner.samples > 20 and {"appliance.db", "appliance.db-wal"} <= scanner.files_seen
    assert scanner.hits == set(), f"canary words on disk in {scanner.hits}"
    assert not any(w in "\n".join(world.logs.lines).lower() for w in CANARY_WORDS)

    page.click("#queue li .f-open")
    page.wait_for_url(re.compile(r"/t/[0-9a-f]+$"))
    tid = page.url.rsplit("/", 1)[1]
    assert world.alice.get(f"/api/v1/transcripts/{tid}").json()["segments"] == []
    assert page.locator("#transcript .w").count() == 0  # the server sent no text
    ui.unlock()
    page.wait_for_selector("#transcript .w", timeout=30000)
    text = page.inner_text("#transcript").lower()
    assert "giraffe" in text and "marseille" in text, text
    # The worker's sealed key was re-wrapped under the data key by this browser.
    page.wait_for_function(
        """async (tid) => (await (await fetch(`/api/v1/transcripts/${tid}/envelope`)).json()).kind === 'tk'""",
        arg=tid,
        timeout=15000,
    )
    response = page.reload()
    assert response.headers["cache-control"] == "no-store"
    world.state["tid"] = tid
    assert _disk_hits(world, CANARY_WORDS) == set()
    ui.clean()
    ui.close()


def _rev(page: Any) -> int:
    return int(page.evaluate("() => window.SottoEditor.model.revision"))


def test_3_edit_in_the_browser_is_saved_encrypted(world: World, browser: Any) -> None:
    tid = world.state["tid"]
    before = world.alice.get(f"/api/v1/transcripts/{tid}/envelope").json()
    ui = Page(browser, world)
    page = ui.page
    page.goto(f"{world.url}/t/{tid}")
    ui.unlock()
    page.wait_for_selector("#transcript .w")
    word = page.locator("#transcript .w", has_text=re.compile(r"^giraffe", re.I)).first
    sid = word.evaluate("w => w.closest('.seg').dataset.sid")
    rev = _rev(page)
    word.dblclick()
    page.wait_for_selector(f"#s-{sid} .seg-text[contenteditable]")
    page.evaluate(
        """sid => { const el = document.querySelector(`#s-${sid} .seg-text`);
                             el.textContent = el.textContent.replace(/giraffes?/i, 'Zeppelin'); }""",
        sid,
    )
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "since => window.SottoEditor.model.revision > since && /^Saved/.test(document.getElementById('save-state').textContent)",
        arg=rev,
        timeout=20000,
    )
    after = world.alice.get(f"/api/v1/transcripts/{tid}/envelope").json()
    assert after["body"] != before["body"] and after["revision"] == before["revision"] + 1
    assert _disk_hits(world, ("Zeppelin",)) == set()  # the edit went out encrypted
    # Export in the browser: TXT has the edit; DOCX is greyed out with the reason.
    page.click("#export-menu summary")
    with page.expect_download() as download:
        page.click("#export-menu a[data-export=txt]")
    assert "Zeppelin" in Path(download.value.path()).read_text()
    assert "cannot read a private transcript" in page.text_content("#export-menu")
    assert world.alice.get(f"/api/v1/transcripts/{tid}/export", params={"format": "txt"}).status_code == 409
    # No history on the server for a private transcript, and the editor says so.
    page.click("#revisions summary")
    assert "not kept for private transcripts" in page.inner_text("#revisions-panel")
    history = world.alice.get(f"/api/v1/transcripts/{tid}/revisions").json()
    assert history["private"] and history["current"] == after["revision"]
    assert not any(i["viewable"] for i in history["items"])
    assert world.alice.get(f"/api/v1/transcripts/{tid}/revisions/1").status_code == 404
    # Reload: locked again (keys lived only in the page); unlock, and the edit is there.
    page.reload()
    assert page.locator("#transcript .w").count() == 0
    ui.unlock()
    page.wait_for_selector("#transcript .w")
    assert "Zeppelin" in page.inner_text("#transcript")
    # Lock now forgets the keys and the text.
    page.click("#private-bar .lock-now")
    page.wait_for_selector("#unlock-dialog[open]")
    assert "Zeppelin" not in page.inner_text("#transcript")
    ui.clean()
    ui.close()


def test_4_encrypted_link_and_a_teammate(world: World, browser: Any) -> None:
    tid = world.state["tid"]
    ui = Page(browser, world)
    page = ui.page
    page.goto(f"{world.url}/t/{tid}")
    ui.unlock()
    page.wait_for_selector("#share-panel:not(.hidden)")
    assert page.is_disabled("#unavailable button:has-text('Plain public link')")
    page.click("#share-link-form button[type=submit]")
    page.wait_for_selector("#share-made:not(.hidden)")
    link = page.input_value("#share-url")
    assert "/s/" in link and "#k=" in link
    key = link.split("#k=", 1)[1]

    # A stranger's fresh browser: decrypted there, the key gone from the address bar.
    stranger = browser.new_context()
    view = stranger.new_page()
    view.goto(link)
    view.wait_for_selector("#transcript .turn", timeout=20000)
    assert "Zeppelin" in view.inner_text("#transcript")
    assert "#k=" not in view.url and view.evaluate("() => location.hash") == ""
    stranger.close()
    db = connect(world.settings.storage.database_path)
    try:
        logged = json.dumps([list(r) for r in db.execute("SELECT * FROM request_log").fetchall()])
        stored = db.execute("SELECT envelope FROM share_links WHERE sealed = 1").fetchone()[0]
    finally:
        db.conn.close()
    assert key not in logged and "/s/{token}/snapshot" in logged
    assert key not in "\n".join(world.logs.lines) and key not in stored
    # Revoke: the server copy is deleted, the link opens nothing.
    page.click("#share-links button:has-text('Revoke')")
    page.wait_for_function("() => !document.querySelector('#share-links li')")
    again = browser.new_context()
    view = again.new_page()
    assert view.goto(link).status == 404 and "revoked" in view.inner_text("#share-error")
    again.close()

    # Bob, a member of the workspace with private transcripts on: share with him in the browser.
    page.wait_for_function("() => document.querySelector('#teammate option')")
    page.select_option("#teammate", world.bob_uid)
    page.click("#teammate-share")
    page.wait_for_selector("#teammates li:has-text('bob@example.org')")
    ui.clean()
    ui.close()
    bob = Page(browser, world, BOB)
    bob.page.goto(f"{world.url}/t/{tid}")
    bob.unlock(BOB_PASSPHRASE)
    bob.page.wait_for_selector("#transcript .w")
    assert "Zeppelin" in bob.page.inner_text("#transcript")
    assert bob.page.locator("#undo").count() == 0 and "read only" in bob.page.inner_text("#private-state")
    bob.clean()
    bob.close()
    # Mallory is in no shared workspace: the transcript does not exist for her.
    mallory = Page(browser, world, MALLORY)
    assert mallory.page.goto(f"{world.url}/t/{tid}").status == 404
    mallory.close()


def test_5_search_in_the_browser_never_on_the_server(world: World, browser: Any) -> None:
    assert world.alice.get("/api/v1/search", params={"q": "Zeppelin"}).json()["total"] == 0
    assert world.alice.get("/api/v1/search", params={"q": "Marseille"}).json()["total"] == 0
    ui = Page(browser, world)
    page = ui.page
    page.goto(f"{world.url}/search")
    page.fill("#private-q", "zeppelin")
    page.click("#private-search-form button[type=submit]")
    ui.unlock()
    page.wait_for_selector("#private-results li", timeout=20000)
    assert "1 match" in page.inner_text("#private-search-state")
    assert f"/t/{world.state['tid']}" in page.get_attribute("#private-results li a", "href")
    ui.clean()
    ui.close()


def test_6_passphrase_change_keeps_every_envelope(world: World, browser: Any) -> None:
    before_envelopes = _envelopes(world)
    before_record = world.alice.get("/api/v1/me/private-keys").json()
    ui = Page(browser, world)
    page = ui.page
    page.goto(f"{world.url}/account")
    form = "#private-passphrase-form"
    page.fill(f"{form} input[name=current_password]", ADMIN_PASSWORD)
    page.fill(f"{form} input[name=current_passphrase]", PASSPHRASE)
    page.fill(f"{form} input[name=new_passphrase]", NEW_PASSPHRASE)
    page.fill(f"{form} input[name=repeat_passphrase]", NEW_PASSPHRASE)
    page.click(f"{form} button[type=submit]")
    page.wait_for_function(
        "() => /Passphrase changed/.test(document.getElementById('private-passphrase-state').textContent)", timeout=30000
    )
    ui.close()
    assert _envelopes(world) == before_envelopes  # byte-identical
    after_record = world.alice.get("/api/v1/me/private-keys").json()
    assert (
        after_record["recovery_dk"] == before_record["recovery_dk"] and after_record["wrapped_dk"] != before_record["wrapped_dk"]
    )

    # The sign-in password is unchanged; the old passphrase no longer unlocks; the new one and the recovery key do.
    ui = Page(browser, world)
    ui.page.goto(f"{world.url}/t/{world.state['tid']}")
    ui.page.wait_for_selector("#unlock-dialog[open]")
    ui.page.fill("#unlock-password", PASSPHRASE)
    ui.page.press("#unlock-password", "Enter")
    ui.page.wait_for_function("() => document.getElementById('unlock-state').textContent === 'Wrong passphrase'", timeout=30000)
    ui.page.click("#unlock-use-recovery")
    ui.page.fill("#unlock-recovery", world.state["recovery"])
    ui.page.click("#unlock-ok")
    ui.page.wait_for_selector("#transcript .w")
    assert "Zeppelin" in ui.page.inner_text("#transcript")
    ui.clean()
    ui.close()
    ui = Page(browser, world)
    ui.page.goto(f"{world.url}/t/{world.state['tid']}")
    ui.unlock(NEW_PASSPHRASE)
    ui.page.wait_for_selector("#transcript .w")
    ui.close()


def test_7_convert_a_standard_transcript_in_the_browser(world: World, browser: Any) -> None:
    job = world.alice.post("/api/v1/transcriptions", files={"file": ("std.wav", world.standard.read_bytes(), "audio/wav")})
    tid = wait_for_job(world.alice.get, job.json()["job_id"])["transcript_id"]
    heard = world.alice.get(f"/api/v1/transcripts/{tid}").json()["text"]
    words = tuple({w.strip(".,").lower() for w in heard.split() if len(w.strip(".,")) >= 6})
    assert words and _disk_hits(world, words), "positive control: the scan sees a standard transcript's words"
    ui = Page(browser, world)
    page = ui.page
    page.goto(f"{world.url}/t/{tid}")
    page.once("dialog", lambda d: d.accept())
    page.click("#make-private")
    ui.unlock(NEW_PASSPHRASE, then_reloads=True)
    page.wait_for_selector("#private-bar", timeout=30000)
    assert world.alice.get(f"/api/v1/transcripts/{tid}").json()["private"] is True
    hits = _disk_hits(world, words)
    assert hits == set(), f"old plaintext still on disk: {hits}"
    ui.unlock(NEW_PASSPHRASE)
    page.wait_for_selector("#transcript .w")
    assert heard.split()[0].strip(".,") in page.inner_text("#transcript")
    ui.clean()
    ui.close()


def test_8_plain_http_on_a_lan_name_says_https_is_needed(world: World, playwright: Any) -> None:
    port = world.url.rsplit(":", 1)[1]
    lan = f"http://sotto.test:{port}"
    # A made-up LAN name that resolves to this machine: plain HTTP there is not a secure context.
    args = [*ARGS, "--host-resolver-rules=MAP sotto.test 127.0.0.1"]
    b = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=args)
    page = b.new_page()
    page.goto(lan + "/login")
    assert page.evaluate("() => window.isSecureContext") is False
    page.fill("input[name=email]", DAVE)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(lan + "/")
    page.goto(lan + "/new")
    assert page.is_disabled("input[name=private]")
    assert "need HTTPS" in page.inner_text("#private-why")
    page.goto(lan + "/account")
    assert page.is_visible("#private-https") and "need HTTPS" in page.inner_text("#private-https")
    # An account with private transcripts on signs in there too (signing in needs no key work), and is told
    # why its private transcripts cannot be opened.
    other = b.new_page()
    other.goto(lan + "/login")
    other.fill("input[name=email]", ADMIN_EMAIL)
    other.fill("input[name=password]", ADMIN_PASSWORD)
    other.click("#login-form button[type=submit]")
    other.wait_for_url(lan + "/")
    other.goto(lan + "/account")
    assert other.is_visible("#private-https") and other.is_disabled("#private-passphrase-form button[type=submit]")
    b.close()


def test_9_a_reset_password_and_a_forgotten_passphrase_are_separate(world: World, browser: Any) -> None:
    # Bob forgot his password; an administrator sets a temporary one. His passphrase still opens what was shared.
    assert world.alice.post(f"/api/v1/users/{world.bob_uid}/password", json={"password": "temporary password"}).status_code == 200
    context = browser.new_context()
    page = context.new_page()
    page.goto(world.url + "/login")
    page.click("#forgot")
    help_text = page.inner_text("#forgot-help")
    assert "recovery key" in help_text and "administrator" in help_text
    context.close()
    bob = Page(browser, world, BOB, "temporary password")
    bob.page.goto(f"{world.url}/t/{world.state['tid']}")
    bob.unlock(BOB_PASSPHRASE)
    bob.page.wait_for_selector("#transcript .w")
    # Then he forgets the passphrase too: the recovery key sets a new one on the account page.
    page = bob.page
    page.goto(f"{world.url}/account")
    page.click("#private-forgot summary")
    form = "#private-recover-form"
    page.fill(f"{form} input[name=current_password]", "temporary password")
    page.fill(f"{form} input[name=recovery_key]", world.bob_recovery.lower().replace("-", " "))
    page.fill(f"{form} input[name=new_passphrase]", "bob's new passphrase")
    page.fill(f"{form} input[name=repeat_passphrase]", "bob's new passphrase")
    page.click(f"{form} button[type=submit]")
    page.wait_for_function(
        "() => /new passphrase opens/.test(document.getElementById('private-recover-state').textContent)", timeout=30000
    )
    bob.page.goto(f"{world.url}/t/{world.state['tid']}")
    bob.unlock("bob's new passphrase")
    bob.page.wait_for_selector("#transcript .w")
    assert "Zeppelin" in bob.page.inner_text("#transcript")
    bob.clean()
    bob.close()


def test_10_an_account_enrolled_the_old_way_moves_to_a_passphrase_in_the_browser(world: World, browser: Any) -> None:
    """Carol turned private transcripts on before they had a passphrase of their own: her key record is
    wrapped under her sign-in password and her password hash is of the old derived auth key, as migration
    0014 leaves such accounts (tests/private/test_private_migration.py upgrades a real old database)."""
    from argon2 import PasswordHasher

    carol_password = "carol's sign-in password"
    db = connect(world.settings.storage.database_path)
    carol = accounts.create(db, "carol@example.org", carol_password, "member")
    workspaces.set_member(db, world.team, carol.id, "member")
    old = pc.enrol(carol_password, carol.id)
    auth_key = pc.derive_keys(carol_password, pc.KdfParams.from_json(old.record["kdf"])).auth_key_text
    db.execute(
        "INSERT INTO user_keys (user_id, kdf, wrapped_dk, recovery_dk, public_key, wrapped_private_key, "
        "signs_in_with_auth_key, scheme, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, 'sign-in-password', '2026-01-05T10:00:00.000Z', '2026-01-05T10:00:00.000Z')",
        [
            carol.id,
            json.dumps(old.record["kdf"]),
            old.record["wrapped_dk"],
            old.record["recovery_dk"],
            old.record["public_key"],
            old.record["wrapped_private_key"],
        ],
    )
    db.execute("UPDATE users SET password_hash = ? WHERE id = ?", [PasswordHasher().hash(auth_key), carol.id])
    db.conn.commit()
    carol_key = apikeys.create(db, carol.id, "t", "transcribe")[0]
    db.conn.close()
    with httpx.Client(base_url=world.url, timeout=120, headers={"Authorization": f"Bearer {carol_key}"}) as api:
        job = api.post(
            "/api/v1/transcriptions",
            params={"workspace_id": world.team},
            files={"file": ("s.wav", world.standard.read_bytes(), "audio/wav")},
            data={"private": "true"},
        )
        tid = wait_for_job(api.get, job.json()["job_id"])["transcript_id"]

    ui = Page(browser, world, "carol@example.org", carol_password)  # her password signs in as it is
    page = ui.page
    page.goto(f"{world.url}/t/{tid}")
    page.wait_for_selector("#unlock-dialog[open]")
    assert page.is_visible("#unlock-legacy") and not page.is_visible("#unlock-password")
    assert "One step first" in page.inner_text("#unlock-legacy")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # Enter goes on to choose a passphrase
    assert page.url.endswith("/account#private")
    assert page.get_attribute("#private", "data-state") == "legacy"
    form = "#rekey-form"
    page.fill(f"{form} input[name=current_password]", carol_password)
    page.fill(f"{form} input[name=new_passphrase]", "carol's passphrase now")
    page.fill(f"{form} input[name=repeat_passphrase]", "carol's passphrase now")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector("#recovery-shown:not(.hidden)", timeout=60000)
    recovery = page.inner_text("#recovery-key").strip()
    assert recovery != old.recovery_key
    page.check("#recovery-stored")
    page.click("#recovery-done")
    page.wait_for_selector("#private-passphrase-form")
    db = connect(world.settings.storage.database_path)
    try:  # the worker's sealed key was re-wrapped under the new data key, and the record replaced
        assert db.execute("SELECT kind FROM transcript_envelopes WHERE transcript_id = ?", [tid]).fetchone()[0] == "tk"
        assert db.execute("SELECT scheme, public_key FROM user_keys WHERE user_id = ?", [carol.id]).fetchone()[0] == "passphrase"
    finally:
        db.conn.close()
    page.goto(f"{world.url}/t/{tid}")
    ui.unlock("carol's passphrase now")
    page.wait_for_selector("#transcript .w", timeout=30000)
    assert "umbrellas" in page.inner_text("#transcript").lower()
    ui.clean()
    ui.close()
