"""Private transcripts in the browser, end to end: Debian's chromium driven by Playwright, the real app on a
loopback port (a secure context) with the real tiny Whisper model. The tests run in order and share one
appliance: turn private mode on, a private upload whose canary never reaches the disk or the logs, an edit
saved as a new envelope, encrypted links and a teammate, search in the browser, a passphrase change,
converting a standard transcript, and plain HTTP on a LAN name."""

from __future__ import annotations

from contextlib import closing

import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance import accounts, apikeys, private_crypto as pc, workspaces
from appliance.config import Settings, load
from appliance.db import connect
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer, bootstrap, speak, wait_for_job, signed_in
from tests.test_private_jobs import CANARY, CANARY_WORDS, LogCapture, Scanner, _needles

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
BOB, DAVE, MALLORY = "bob@example.org", "dave@example.org", "mallory@example.org"
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

    from appliance.web.app import create_app

    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required; scripts/test installs it")
    root = tmp_path_factory.mktemp("private-ui")
    (root / "models").mkdir()
    settings = load(None, {"APPLIANCE_DATA_DIR": str(root / "data"), "APPLIANCE_MODELS_DIR": str(root / "models")})
    key = bootstrap(settings)
    db = connect(settings.storage.database_path)
    users = {email: accounts.create(db, email, ADMIN_PASSWORD, "member") for email in (BOB, DAVE, MALLORY)}
    bob_key = apikeys.create(db, users[BOB].id, "t", "transcribe")[0]
    alice = accounts.by_email(db, ADMIN_EMAIL)
    assert alice is not None
    team = workspaces.create(db, "Newsroom", owner_id=alice.id)
    workspaces.set_member(db, team, users[BOB].id, "member")
    db.conn.close()
    canary = speak(root / "canary.wav", CANARY)
    standard = speak(root / "standard.wav", STANDARD_TEXT)
    logs = LogCapture()
    logs.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger()
    previous = logger.level
    logger.addHandler(logs)
    logger.setLevel(logging.DEBUG)
    try:
        with LiveServer(create_app(settings)) as server:
            with httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as http, \
                    httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {bob_key}"}) as bob:
                # Bob has private transcripts on; his passphrase is the password he signs in with.
                enrolment = pc.enrol(ADMIN_PASSWORD, users[BOB].id)
                with closing(signed_in(server.url, BOB)) as bob_session:  # as the account page does
                    assert bob_session.put("/api/v1/me/private-keys",
                                           json={**enrolment.record, "current_password": ADMIN_PASSWORD}).status_code == 201
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
    """A signed-in page (through the sign-in form, so a private account sends its derived auth key)."""

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

    def unlock(self, secret: str = ADMIN_PASSWORD, recovery: bool = False, then_reloads: bool = False) -> None:
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
    return Scanner(world.settings.storage.data_dir, _needles(words)).scan()


def test_1_turn_on_private_transcripts_and_see_the_recovery_key_once(world: World, browser: Any) -> None:
    ui = Page(browser, world)
    page = ui.page
    response = page.goto(world.url + "/account")
    assert response.headers["cache-control"] == "no-store"
    card = page.inner_text("#private")
    # The threat model and the consequence of an administrator's reset, before anything is turned on.
    assert "copy of its database" in card and "not protected" in card.lower()
    assert "account back but not your encrypted transcripts" in card.replace("\n", " ")
    page.check("#enrol-form input[name=understood]")
    page.fill("#enrol-form input[name=password]", ADMIN_PASSWORD)
    page.click("#enrol-form button[type=submit]")
    page.wait_for_selector("#recovery-shown:not(.hidden)", timeout=30000)
    recovery = page.inner_text("#recovery-key").strip()
    assert re.fullmatch(r"([A-Z2-7]{4}-){12}[A-Z2-7]{4}", recovery), recovery
    assert page.is_disabled("#recovery-done")
    with page.expect_download() as download:
        page.click("#recovery-download")
    assert recovery in Path(download.value.path()).read_text()
    page.check("#recovery-stored")
    page.click("#recovery-done")
    page.wait_for_selector("#private-password-form")
    assert world.alice.get("/api/v1/me/private-keys").status_code == 200
    world.state["recovery"] = recovery
    ui.clean()
    ui.close()


def test_2_private_upload_canary_never_on_disk_and_shown_after_unlock(world: World, browser: Any) -> None:
    ui = Page(browser, world)  # signs in with the derived auth key now
    page = ui.page
    page.goto(world.url + "/new")
    page.select_option("select[name=workspace_id]", world.team)
    assert page.is_enabled("input[name=private]")
    page.check("input[name=private]")
    with Scanner(world.settings.storage.data_dir, _needles()) as scanner:
        page.set_input_files("#file-input", str(world.canary))
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
    page.wait_for_function("""async (tid) => (await (await fetch(`/api/v1/transcripts/${tid}/envelope`)).json()).kind === 'tk'""",
                           arg=tid, timeout=15000)
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
    page.evaluate("""sid => { const el = document.querySelector(`#s-${sid} .seg-text`);
                             el.textContent = el.textContent.replace(/giraffes?/i, 'Zeppelin'); }""", sid)
    page.keyboard.press("Control+Enter")
    page.wait_for_function("since => window.SottoEditor.model.revision > since && /^Saved/.test(document.getElementById('save-state').textContent)",
                           arg=rev, timeout=20000)
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
    bob.unlock()
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
    page.fill("#private-password-form input[name=current_password]", ADMIN_PASSWORD)
    page.fill("#private-password-form input[name=new_password]", NEW_PASSPHRASE)
    page.click("#private-password-form button[type=submit]")
    page.wait_for_function("() => /Passphrase changed/.test(document.getElementById('private-password-state').textContent)", timeout=30000)
    ui.close()
    assert _envelopes(world) == before_envelopes  # byte-identical
    after_record = world.alice.get("/api/v1/me/private-keys").json()
    assert after_record["recovery_dk"] == before_record["recovery_dk"] and after_record["wrapped_dk"] != before_record["wrapped_dk"]

    # The old passphrase no longer signs in; the new one does, and the recovery key still unlocks.
    context = browser.new_context()
    old = context.new_page()
    old.goto(world.url + "/login")
    old.fill("input[name=email]", ADMIN_EMAIL)
    old.fill("input[name=password]", ADMIN_PASSWORD)
    old.click("#login-form button[type=submit]")
    old.wait_for_function("() => document.getElementById('login-result').textContent.length > 0", timeout=30000)
    context.close()
    ui = Page(browser, world, password=NEW_PASSPHRASE)
    ui.page.goto(f"{world.url}/t/{world.state['tid']}")
    ui.unlock(world.state["recovery"], recovery=True)
    ui.page.wait_for_selector("#transcript .w")
    assert "Zeppelin" in ui.page.inner_text("#transcript")
    ui.clean()
    ui.close()


def test_7_convert_a_standard_transcript_in_the_browser(world: World, browser: Any) -> None:
    job = world.alice.post("/api/v1/transcriptions", files={"file": ("std.wav", world.standard.read_bytes(), "audio/wav")})
    tid = wait_for_job(world.alice.get, job.json()["job_id"])["transcript_id"]
    heard = world.alice.get(f"/api/v1/transcripts/{tid}").json()["text"]
    words = tuple({w.strip(".,").lower() for w in heard.split() if len(w.strip(".,")) >= 6})
    assert words and _disk_hits(world, words), "positive control: the scan sees a standard transcript's words"
    ui = Page(browser, world, password=NEW_PASSPHRASE)
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
    # An account with private transcripts on cannot sign in there: the form says why.
    other = b.new_page()
    other.goto(lan + "/login")
    other.fill("input[name=email]", ADMIN_EMAIL)
    other.fill("input[name=password]", NEW_PASSPHRASE)
    other.click("#login-form button[type=submit]")
    other.wait_for_function("() => /need HTTPS/.test(document.getElementById('login-result').textContent)")
    b.close()


def test_9_forgotten_passphrase_recovered_from_the_sign_in_page(world: World, browser: Any) -> None:
    # Bob forgot his passphrase; an administrator sets a temporary password, which gives him his account back.
    assert world.alice.post(f"/api/v1/users/{world.bob_uid}/password", json={"password": "temporary password"}).status_code == 200
    context = browser.new_context()
    page = context.new_page()
    page.goto(world.url + "/login?next=/search")
    page.click("#forgot")
    assert "recovery key" in page.inner_text("#recover-help")
    page.fill("input[name=email]", BOB)
    page.fill("input[name=password]", "temporary password")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#recover-form:not(.hidden)")
    page.fill("#recover-form input[name=recovery_key]", world.bob_recovery.lower().replace("-", " "))
    page.fill("#recover-form input[name=new_password]", "bob's new passphrase")
    page.click("#recover-form button[type=submit]")
    page.wait_for_url(world.url + "/search", timeout=30000)
    context.close()
    with httpx.Client(base_url=world.url) as anonymous:
        assert anonymous.post("/api/v1/auth/kdf", json={"email": BOB}).json()["private"] is True
    # The new passphrase signs in and opens what was shared with him.
    bob = Page(browser, world, BOB, "bob's new passphrase")
    bob.page.goto(f"{world.url}/t/{world.state['tid']}")
    bob.unlock("bob's new passphrase")
    bob.page.wait_for_selector("#transcript .w")
    assert "Zeppelin" in bob.page.inner_text("#transcript")
    bob.clean()
    bob.close()
