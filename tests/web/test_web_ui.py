"""The web UI end to end in headless Chromium (Debian's chromium, driven by PyPI playwright), against the
real app on a loopback port with the real tiny Whisper model and the embedded speaker engine.

Screenshots of every main page at desktop and phone widths go to test-artifacts/screenshots/.
"""

from __future__ import annotations

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

from appliance.core.config import Settings, load
from appliance.transcription.asr import embedded_model_path
from tests.browser import ARGS as BROWSER_ARGS
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, REPO, LiveServer, bootstrap, signed_in, speak, wait_for_job

SHOTS = REPO / "test-artifacts" / "screenshots"
ARGS = [*BROWSER_ARGS, "--autoplay-policy=no-user-gesture-required"]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
BOB, VIC = "bob@example.org", "vic@example.org"
CLIP_TEXT = "The quick brown fox jumps over the lazy dog. Please call Stella and bring these things with her."


@dataclass
class World:
    url: str
    settings: Settings
    alice: httpx.Client
    vic_key: str
    bob_key: str
    team: str
    clip: Path
    state: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from appliance.web.app import create_app

    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required; scripts/test installs it")
    root = tmp_path_factory.mktemp("ui")
    (root / "models").mkdir()
    embedded = embedded_model_path()
    assert embedded is not None
    (root / "models" / "tiny-copy").symlink_to(embedded, target_is_directory=True)  # a second model to compare
    settings = load(None, {"APPLIANCE_DATA_DIR": str(root / "data"), "APPLIANCE_MODELS_DIR": str(root / "models")})
    key = bootstrap(settings)
    vic_key = bootstrap(settings, VIC, role="viewer", scope="read")
    bob_key = bootstrap(settings, BOB, role="member", scope="transcribe")
    clip = speak(root / "clip.wav", CLIP_TEXT)
    with (
        LiveServer(create_app(settings)) as server,
        httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as alice,
    ):
        team = alice.post("/api/v1/workspaces", json={"name": "Newsroom"}).json()["id"]
        assert alice.put(f"/api/v1/workspaces/{team}/members", json={"email": VIC, "role": "viewer"}).status_code == 200
        assert alice.put(f"/api/v1/workspaces/{team}/members", json={"email": BOB, "role": "admin"}).status_code == 200
        for person in (VIC, BOB):  # each accepts the invitation, signed in
            with closing(signed_in(server.url, person)) as session:
                assert session.post(f"/api/v1/me/workspace-invitations/{team}", json={"accept": True}).status_code == 200
        yield World(server.url, settings, alice, vic_key, bob_key, team, clip)


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
    """A signed-in page that records console errors (a CSP violation shows up there)."""

    def __init__(self, browser: Any, world: World, email: str = ADMIN_EMAIL, viewport: dict[str, int] = DESKTOP) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(world.url + "/login?next=/")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", ADMIN_PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(world.url + "/")
        assert self.page.locator("h1", has_text="Library").count() == 1

    def csp_clean(self) -> None:
        bad = [e for e in self.errors if "Content Security Policy" in e or "Refused" in e or "Uncaught" in e or "TypeError" in e]
        assert not bad, bad

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        width = self.page.viewport_size["width"]
        self.page.screenshot(path=str(SHOTS / f"{name}-{'phone' if width < 600 else 'desktop'}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


def _rev(page: Any) -> int:
    return int(page.evaluate("() => window.SottoEditor.model.revision"))


def _saved(page: Any, since: int) -> None:
    """Wait until the server confirmed a save after revision `since` and the page says so."""
    page.wait_for_function(
        "since => window.SottoEditor.model.revision > since && /^Saved/.test(document.getElementById('save-state').textContent)",
        arg=since,
        timeout=15000,
    )


def test_1_sign_in_upload_progress_done_words_and_6_playback(world: World, browser: Any) -> None:
    ui = Page(browser, world)
    page = ui.page
    page.goto(world.url + "/new")
    page.select_option("select[name=workspace_id]", world.team)
    page.check("input[name=diarize]")
    assert page.is_disabled("input[name=private]")  # greyed out, with the reason beside it
    assert "Turn on private transcripts in your account first" in page.inner_text("#private-why")
    page.set_input_files("#file-input", str(world.clip))
    page.click("#transcribe")
    page.wait_for_selector("#queue li .f-stages:not(.hidden)", timeout=60000)
    ui.shot("progress")
    page.wait_for_selector("#queue li .f-open:not(.hidden)", timeout=120000)
    assert "Done" in page.inner_text("#queue li .f-state")
    ui.shot("upload")
    # Open in place: the page keeps the uploaded file in memory and plays it without a new upload.
    page.click("#queue li .f-open")
    page.wait_for_selector("#transcript .w")
    text = page.text_content("#transcript").lower()
    for word in ("quick", "brown", "fox", "lazy", "dog"):
        assert word in text, text
    world.state["transcript_url"] = page.url
    world.state["tid"] = page.url.rsplit("/", 1)[1]
    page.wait_for_function("() => document.getElementById('audio').readyState >= 1", timeout=15000)
    fox = page.locator("#transcript .w", has_text=re.compile(r"^fox", re.I)).first
    start_ms = int(fox.get_attribute("data-s"))
    fox.click()
    current = page.evaluate("() => document.getElementById('audio').currentTime")
    assert abs(current - start_ms / 1000) < 0.05, (current, start_ms)
    assert "fox" in page.inner_text(".w.is-cur").lower()
    # The transcript is in the team workspace, with the embedded engine's speaker.
    doc = world.alice.get(f"/api/v1/transcripts/{world.state['tid']}").json()
    assert doc["workspace_id"] == world.team and doc["speakers"]
    ui.csp_clean()
    ui.close()


def test_2_edit_word_rename_speaker_note_persist(world: World, browser: Any) -> None:
    ui = Page(browser, world)
    page = ui.page
    page.goto(world.state["transcript_url"])
    fox = page.locator("#transcript .w", has_text=re.compile(r"^fox", re.I)).first
    sid = fox.evaluate("w => w.closest('.seg').dataset.sid")
    rev = _rev(page)
    fox.dblclick()
    page.wait_for_selector(f"#s-{sid} .seg-text[contenteditable]")
    # Replace the text of the segment in place, keeping everything but "fox".
    page.evaluate(
        """sid => {
        const el = document.querySelector(`#s-${sid} .seg-text`);
        el.textContent = el.textContent.replace(/\\bfox\\b/i, 'Vixen');
    }""",
        sid,
    )
    page.keyboard.press("Control+Enter")
    _saved(page, rev)
    assert "Vixen" in page.inner_text(f"#s-{sid}")
    # Rename the speaker everywhere: Enter in the dialog means OK (Cancel was its first submit button once).
    rev = _rev(page)
    page.click("#speakers .spk-rename")
    page.fill("#speaker-dialog input", "Ada Lovelace")
    page.press("#speaker-dialog input", "Enter")
    _saved(page, rev)
    # Esc and Cancel leave everything as it was.
    for close in ("Escape", "Cancel"):
        page.click("#speakers .spk-rename")
        page.fill("#speaker-dialog input", "Nobody at all")
        if close == "Escape":
            page.keyboard.press("Escape")
        else:
            page.click("#speaker-dialog .dialog-cancel")
        page.wait_for_function("() => !document.getElementById('speaker-dialog').open")
        names = page.evaluate("() => window.SottoEditor.model.speakers.map((s) => s.name)")
        assert "Nobody at all" not in names and "Ada Lovelace" in names, names
    # A note on the transcript.
    rev = _rev(page)
    page.fill("#t-note", "Check the spelling of Stella.")
    _saved(page, rev)
    ui.shot("editor")
    page.reload()
    page.wait_for_selector("#transcript .w")
    assert "Vixen" in page.inner_text("#transcript")
    assert "Ada Lovelace" in page.inner_text("#speakers")
    assert "Ada Lovelace" in page.text_content("#transcript .seg-spk")
    doc = world.alice.get(f"/api/v1/transcripts/{world.state['tid']}").json()
    assert page.input_value("#t-note") == "Check the spelling of Stella.", doc["note"]
    assert "Vixen" in doc["text"] and doc["note"] == "Check the spelling of Stella."
    assert next(s["display_name"] for s in doc["speakers"]) == "Ada Lovelace"
    vixen = [w for s in doc["segments"] for w in s["words"] if w["word"].strip().startswith("Vixen")]
    assert vixen and vixen[0]["edited"] is True
    world.state["vixen_sid"] = int(sid)
    ui.csp_clean()
    ui.close()


def test_3_two_contexts_same_segment_second_save_gets_conflict(world: World, browser: Any) -> None:
    first, second = Page(browser, world), Page(browser, world, BOB)
    for ui in (first, second):
        ui.page.goto(world.state["transcript_url"])
        ui.page.wait_for_selector("#transcript .w")
    sid = world.state["vixen_sid"]

    def retype(page: Any, new: str) -> None:
        page.dblclick(f"#s-{sid} .w >> nth=0")
        page.wait_for_selector(f"#s-{sid} .seg-text[contenteditable]")
        page.evaluate(
            "([sid, text]) => { const el = document.querySelector(`#s-${sid} .seg-text`); el.textContent = el.textContent.replace(/^\\S+/, text); }",
            [sid, new],
        )
        page.keyboard.press("Control+Enter")

    rev = _rev(first.page)
    retype(first.page, "Yesterday")
    _saved(first.page, rev)
    retype(second.page, "Tomorrow")
    second.page.wait_for_selector("#conflict:not(.hidden)", timeout=15000)
    assert "changed elsewhere" in second.page.inner_text("#conflict-text")
    assert second.page.inner_text("#save-state") == "Conflict"
    doc = world.alice.get(f"/api/v1/transcripts/{world.state['tid']}").json()
    assert "Yesterday" in doc["text"] and "Tomorrow" not in doc["text"]
    # "Keep mine" saves over the other change, on purpose.
    rev = _rev(second.page)
    second.page.click("#conflict-keep")
    _saved(second.page, rev)
    assert "Tomorrow" in world.alice.get(f"/api/v1/transcripts/{world.state['tid']}").json()["text"]
    first.close()
    second.close()


def test_4_record_from_fake_microphone(world: World, playwright: Any) -> None:
    args = [
        *ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={world.clip}",
    ]
    b = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=args)
    ui = Page(b, world)
    page = ui.page
    page.goto(world.url + "/new")
    page.click("#rec-start")
    page.wait_for_function("() => document.getElementById('rec-stop').disabled === false")
    levels = []
    for _ in range(13):  # the clip is about six seconds long
        time.sleep(0.5)
        levels.append(page.evaluate("() => document.getElementById('rec-level').value"))
    assert max(levels) > 0.01, levels  # the level meter moves with the voice
    assert page.inner_text("#rec-timer") in ("00:06", "00:07")
    page.click("#rec-stop")
    page.wait_for_selector("#pending li .p-name")  # the recording waits with the picked files
    page.click("#transcribe")
    page.wait_for_selector("#queue li .f-open:not(.hidden)", timeout=120000)
    name = page.inner_text("#queue li .f-name")
    assert name.startswith("Recording ")
    href = page.get_attribute("#queue li .f-open", "href")
    doc = world.alice.get(f"/api/v1/transcripts/{href.rsplit('/', 1)[1]}").json()
    # Chromium's fake microphone plays the clip in a loop from wherever it is when the recording starts, so
    # on a busy machine the first word or two can fall before the start: most of the sentence is enough.
    heard = [word for word in ("quick", "brown", "fox", "lazy", "dog", "stella") if word in doc["text"].lower()]
    assert len(heard) >= 4, doc["text"]
    ui.csp_clean()
    b.close()


def test_5_search_finds_the_edited_word_and_links_to_it(world: World, browser: Any) -> None:
    ui = Page(browser, world)
    page = ui.page
    page.goto(world.url + "/search?q=Vixen")
    assert page.locator("#results li").count() == 1
    assert page.inner_text("#results mark").lower() == "vixen"
    ui.shot("search")
    page.click("#results li .snippet a")
    page.wait_for_selector("#transcript .w")
    sid = world.state["vixen_sid"]
    assert page.url.endswith(f"#s-{sid}") and "?t=" in page.url
    # The words are in the page before the editor's module has mounted: wait for it to mark the segment.
    page.wait_for_selector(f"#s-{sid}.is-flash")
    assert "Attach the recording to play from" in page.inner_text("#audio-warning")
    ui.csp_clean()
    ui.close()


def test_7_viewer_sees_workspace_transcript_without_edit_controls(world: World, browser: Any) -> None:
    ui = Page(browser, world, VIC)
    page = ui.page
    page.goto(world.url + "/")
    assert page.locator(f"a[href='/t/{world.state['tid']}']").count() == 1
    assert page.locator("a[href='/new']").count() == 0
    page.goto(world.state["transcript_url"])
    page.wait_for_selector("#transcript .w")
    assert page.inner_text("#save-state") == "Read only"
    for selector in ("#undo", "#delete", ".seg-tools", ".spk-rename", "#speaker-add", "#replace-all"):
        assert page.locator(selector).count() == 0, selector
    assert page.get_attribute("#t-title", "contenteditable") is None
    page.dblclick("#transcript .w >> nth=0")
    assert page.locator(".seg-text[contenteditable]").count() == 0
    with httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {world.vic_key}"}) as vic:
        doc = vic.get(f"/api/v1/transcripts/{world.state['tid']}").json()
        refused = vic.post(
            f"/api/v1/transcripts/{world.state['tid']}/edits",
            json={"base_revision": doc["revision"], "ops": [{"op": "note", "text": "viewer was here"}]},
        )
        assert refused.status_code == 403
    assert world.alice.get(f"/api/v1/transcripts/{world.state['tid']}").json()["note"] != "viewer was here"
    ui.csp_clean()
    ui.close()


def test_8_screenshots_of_every_page_at_desktop_and_phone_width(world: World, browser: Any) -> None:
    job = world.alice.post(
        "/api/v1/transcriptions", files={"file": ("clip.wav", world.clip.read_bytes())}, data={"model": "tiny.en"}
    ).json()
    done = wait_for_job(world.alice.get, job["id"])
    both = world.alice.post(
        "/api/v1/transcriptions", files={"file": ("compare.wav", world.clip.read_bytes())}, data={"model": "tiny.en,tiny-copy"}
    ).json()
    both = wait_for_job(world.alice.get, both["id"])
    assert len(both["transcript_ids"]) == 2
    for viewport in (DESKTOP, PHONE):
        ui = Page(browser, world, viewport=viewport)
        page = ui.page
        for name, path in [
            ("library", "/"),
            ("upload", "/new"),
            ("progress", f"/jobs/{job['id']}"),
            ("editor", f"/t/{done['transcript_id']}"),
            ("search", "/search?q=lazy+dog"),
            ("account", "/account"),
            ("users", "/admin/users"),
            ("models", "/admin/models"),
            ("compare", f"/compare/{both['id']}"),
        ]:
            page.goto(world.url + path)
            page.wait_for_load_state("networkidle")
            # Nothing wider than the screen: the layout fits a phone.
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (name, viewport, overflow)
            ui.shot(name)
        ui.csp_clean()
        ui.close()
    assert len(list(SHOTS.glob("*-phone.png"))) >= 9 and len(list(SHOTS.glob("*-desktop.png"))) >= 9
    # Compare: two columns, then "keep this one" deletes the other model's transcript.
    ui = Page(browser, world)
    ui.page.goto(f"{world.url}/compare/{both['id']}")
    assert ui.page.locator("#compare .col").count() == 2
    keep, other = both["transcript_ids"]
    ui.page.once("dialog", lambda d: d.accept())
    ui.page.click(f"button.keep[data-transcript='{keep}']")
    ui.page.wait_for_url(f"{world.url}/t/{keep}")
    assert world.alice.get(f"/api/v1/transcripts/{other}").status_code == 404
    ui.csp_clean()
    ui.close()


def test_9_editor_tools_split_merge_undo_find_replace_timing_speakers(world: World, browser: Any) -> None:
    job = world.alice.post(
        "/api/v1/transcriptions",
        files={"file": ("tools.wav", world.clip.read_bytes())},
        data={"model": "tiny.en", "diarize": "true", "num_speakers": "2"},
    ).json()
    tid = wait_for_job(world.alice.get, job["id"])["transcript_id"]
    api = lambda: world.alice.get(f"/api/v1/transcripts/{tid}").json()  # noqa: E731
    ui = Page(browser, world)
    page = ui.page
    page.goto(f"{world.url}/t/{tid}")
    page.wait_for_selector("#transcript .w")
    segments = len(api()["segments"])
    # Split: Enter with the caret before the third word of the first segment.
    rev = _rev(page)
    page.dblclick("#transcript .seg >> nth=0 >> .w >> nth=2")
    page.wait_for_selector(".seg-text[contenteditable]")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelectorAll('#transcript .seg').length === {segments + 1}")
    _saved(page, rev)
    doc = api()
    assert len(doc["segments"]) == segments + 1 and len(doc["segments"][0]["words"]) == 2
    # Undo merges them back; redo splits again; undo once more.
    page.click("#undo")
    page.wait_for_function(f"() => document.querySelectorAll('#transcript .seg').length === {segments}")
    assert len(api()["segments"]) == segments
    page.click("#redo")
    page.wait_for_function(f"() => document.querySelectorAll('#transcript .seg').length === {segments + 1}")
    page.keyboard.press("Control+z")
    page.wait_for_function(f"() => document.querySelectorAll('#transcript .seg').length === {segments}")
    page.wait_for_function("() => /^Saved/.test(document.getElementById('save-state').textContent)")
    assert len(api()["segments"]) == segments
    # Find and replace all: one undo step.
    page.keyboard.press("Control+f")
    page.fill("#find-text", "lazy")
    assert page.inner_text("#find-count") == "1 of 1"
    page.fill("#replace-text", "sleepy")
    rev = _rev(page)
    page.click("#replace-all")
    _saved(page, rev)
    assert "sleepy" in api()["text"] and "lazy" not in api()["text"]
    rev = _rev(page)
    page.click("#undo")
    page.wait_for_function("() => /lazy/.test(document.getElementById('transcript').textContent)")
    _saved(page, rev)
    assert "lazy" in api()["text"]
    # Timing: the first segment now starts at 0.3 s.
    rev = _rev(page)
    page.click("#transcript .seg >> nth=0 >> .seg-time", modifiers=["Alt"])
    page.fill("#timing-start", "0.3")
    page.click("#timing-ok")
    _saved(page, rev)
    assert api()["segments"][0]["start"] == 0.3
    # Merge the two speakers into one.
    if len(api()["speakers"]) == 2:
        page.click("#speaker-merge")
        page.click("#speaker-dialog-ok")
        page.wait_for_function("() => document.querySelectorAll('#speakers li').length === 1")
        assert len(api()["speakers"]) == 1 and len({s["speaker"] for s in api()["segments"]}) == 1
    # A note on a segment.
    page.click("#transcript .seg >> nth=0 >> .seg-text")
    page.click("#seg-bar [data-action=note]")  # the selected segment's tools are in one bar that never moves
    page.fill("#speaker-dialog textarea", "Ask about the dog.")
    rev = _rev(page)
    page.click("#speaker-dialog-ok")
    _saved(page, rev)
    assert api()["segments"][0]["note"] == "Ask about the dog."
    assert "Ask about the dog." in page.inner_text("#transcript .seg >> nth=0")
    ui.csp_clean()
    ui.close()
