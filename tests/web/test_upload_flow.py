"""The new-transcription flow in headless Chromium against the real app: recordings are chosen, the options
reviewed, and nothing is uploaded before Transcribe; options the chosen model cannot do are not offered;
the progress comes into view; a failure says what happened and offers Retry only where it can help;
a page that is not there is a page inside the app.

Screenshots at 1366x768 and 390x844 go to test-artifacts/screenshots/ (new-*, error-404-*).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.core.config import Settings, load
from appliance.transcription.asr import MULTILINGUAL_VOCAB, embedded_model_path
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, REPO, LiveServer, bootstrap, speak, wait_for_job

SHOTS = REPO / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
MULTI = "multi-test"  # a multilingual model as the registry sees one (never run: only its options are offered)


@dataclass
class World:
    url: str
    settings: Settings
    alice: httpx.Client
    clip: Path
    other: Path
    notes: Path


def _multilingual_model(path: Path) -> None:
    """A directory the registry takes for a multilingual Whisper (the vocabulary size says so)."""
    path.mkdir()
    for name in ("model.bin", "tokenizer.json"):
        (path / name).write_bytes(b"{}")
    (path / "config.json").write_text("{}")
    (path / "vocabulary.txt").write_text("".join(f"t{i}\n" for i in range(MULTILINGUAL_VOCAB)))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from appliance.web.app import create_app

    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required; scripts/test installs it")
    root = tmp_path_factory.mktemp("flow")
    (root / "models").mkdir()
    embedded = embedded_model_path()
    assert embedded is not None
    (root / "models" / "tiny-copy").symlink_to(embedded, target_is_directory=True)
    _multilingual_model(root / "models" / MULTI)
    settings = load(None, {"APPLIANCE_DATA_DIR": str(root / "data"), "APPLIANCE_MODELS_DIR": str(root / "models")})
    key = bootstrap(settings)
    clip = speak(root / "clip.wav", "Please call Stella and bring these things with her.")
    other = speak(root / "second take.wav", "The quick brown fox jumps over the lazy dog.")
    notes = root / "meeting notes.wav"  # named like audio, but text: the server refuses its format
    notes.write_text("Agenda: budget, hiring, the new office.\n" * 40)
    with (
        LiveServer(create_app(settings)) as server,
        httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as alice,
    ):
        yield World(server.url, settings, alice, clip, other, notes)


class Session:
    """A signed-in page; records console errors (a CSP violation shows up there) and every upload."""

    def __init__(self, browser: Any, world: World, viewport: dict[str, int] = DESKTOP) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.width = viewport["width"]
        self.errors: list[str] = []
        self.uploads: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "request", lambda r: self.uploads.append(r.url) if r.method == "POST" and "/transcriptions" in r.url else None
        )
        self.page.goto(world.url + "/login?next=/new")
        self.page.fill("input[name=email]", ADMIN_EMAIL)
        self.page.fill("input[name=password]", ADMIN_PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(world.url + "/new")

    def shot(self, name: str, *, at: str | None = None) -> None:
        """The screen as a person sees it (a full-page capture would paint the sticky Transcribe bar
        over the middle of the page), scrolled to `at` if given."""
        if at is not None:
            self.page.eval_on_selector(at, "e => e.scrollIntoView({ block: 'start' })")
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}-{self.width}.png"))

    def in_view(self, selector: str) -> bool:
        """The element's top is on screen, below the top edge and above the bottom one."""
        return bool(
            self.page.eval_on_selector(
                selector, "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight - 40; }"
            )
        )

    def jobs(self) -> list[str]:
        """The job ids this tab started, as the page keeps them."""
        return [r["jobId"] for r in json.loads(self.page.evaluate("() => sessionStorage.getItem('sotto.uploads') || '[]'"))]

    def close(self) -> None:
        bad = [e for e in self.errors if "Content Security Policy" in e or "Refused" in e or "Uncaught" in e or "TypeError" in e]
        self.context.close()
        assert not bad, bad


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366", "390"])
def test_nothing_uploads_before_transcribe_and_options_chosen_after_picking_are_honoured(
    world: World, browser: Any, viewport: dict[str, int]
) -> None:
    ui = Session(browser, world, viewport)
    page = ui.page
    page.set_input_files("#file-input", [str(world.clip), str(world.other)])
    page.wait_for_timeout(500)
    assert ui.uploads == [], "picking a file must not upload it"
    page.wait_for_selector("#pending li >> nth=1")
    assert page.locator("#pending li .p-name").all_inner_texts() == ["clip.wav", "second take.wav"]
    ui.shot("new-picked")  # what is on screen: the chosen files and the primary action
    assert ui.in_view("#transcribe") and ui.in_view("#pending li")
    # Removed before starting: it is never sent.
    page.click("#pending li:has-text('second take.wav') .p-remove")
    assert page.locator("#pending li").count() == 1
    # The options, chosen after the files: the model and a comparison, the language, vocabulary, speakers.
    page.select_option("select[name=model]", "tiny-copy")
    page.select_option("select[name=compare]", "tiny.en")
    page.select_option("select[name=language]", "en")
    page.fill("input[name=hotwords]", "Stella")
    page.uncheck("input[name=diarize]")
    assert ui.uploads == []  # nothing has left the browser yet
    ui.shot("new-options", at="#options")
    page.click("#transcribe")
    page.wait_for_selector("#queue > li")
    assert ui.in_view("#queue > li"), "the progress must be on screen after Transcribe"
    page.wait_for_selector("#queue li .f-stages:not(.hidden)", timeout=60000)
    ui.shot("new-progress")
    page.wait_for_selector("#queue li .f-open:not(.hidden)", timeout=120000)
    assert len(ui.uploads) == 1 and page.locator("#pending li").count() == 0
    (job_id,) = ui.jobs()
    job = world.alice.get(f"/api/v1/jobs/{job_id}").json()
    assert job["models"] == ["tiny-copy", "tiny.en"] and job["filename"] == "clip.wav"
    assert job["options"]["language"] == "en" and job["options"]["hotwords"] == "Stella"
    assert job["options"]["diarize"] is False and job["options"]["task"] == "transcribe"
    assert page.locator("#queue li .f-compare:not(.hidden)").count() == 1
    ui.shot("new-done")
    page.evaluate("() => sessionStorage.clear()")
    ui.close()


def test_options_the_model_cannot_do_are_disabled_with_the_reason(world: World, browser: Any) -> None:
    ui = Session(browser, world)
    page = ui.page
    page.select_option("select[name=model]", "tiny.en")
    assert page.is_disabled("input[name=translate]")
    assert "English only (tiny.en)" in page.inner_text("#translate-why")
    assert page.is_visible("#language-why") and "English only (tiny.en)" in page.inner_text("#language-why")
    assert page.eval_on_selector("select[name=language] option[value=de]", "o => o.disabled")
    assert not page.eval_on_selector("select[name=language] option[value=en]", "o => o.disabled")
    # "Compare with" cannot pick the model that is already chosen.
    assert page.eval_on_selector("select[name=compare] option[value='tiny.en']", "o => o.disabled")
    assert "(the model above)" in page.inner_text("select[name=compare] option[value='tiny.en']")
    # A multilingual model offers everything, with no reasons shown.
    page.select_option("select[name=model]", MULTI)
    assert page.is_enabled("input[name=translate]") and not page.is_visible("#translate-why")
    assert not page.eval_on_selector("select[name=language] option[value=de]", "o => o.disabled")
    page.select_option("select[name=language]", "de")
    page.check("input[name=translate]")
    # Compared with an English-only model, both run with the same options: the choices go, with the reason.
    page.select_option("select[name=compare]", "tiny.en")
    assert page.is_disabled("input[name=translate]") and not page.is_checked("input[name=translate]")
    assert page.input_value("select[name=language]") == ""
    assert "English only (tiny.en)" in page.inner_text("#translate-why")
    # Speakers' number only with speaker identification.
    page.uncheck("input[name=diarize]")
    assert page.is_disabled("input[name=num_speakers]") and page.is_visible("#speakers-why")
    ui.shot("new-options-english-only", at="#options")
    # The server refuses the same combinations, in words a person understands.
    refused = world.alice.post(
        "/api/v1/transcriptions",
        files={"file": ("clip.wav", world.clip.read_bytes())},
        data={"model": "tiny.en", "language": "de"},
    )
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("The model tiny.en understands English only, so it cannot transcribe German.")
    ui.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366", "390"])
def test_a_failed_upload_has_no_full_bar_says_what_to_do_and_retries_only_where_it_helps(
    world: World, browser: Any, viewport: dict[str, int]
) -> None:
    ui = Session(browser, world, viewport)
    page = ui.page
    # A format the appliance refuses: sending it again cannot help.
    page.set_input_files("#file-input", str(world.notes))
    page.click("#transcribe")
    row = page.locator("#queue > li").first
    row.locator(".f-state", has_text="Failed").wait_for()
    assert not row.locator(".f-progress").is_visible()
    assert "neither audio nor video" in row.locator(".f-error").inner_text()
    assert "Convert it to a common format" in row.locator(".f-help").inner_text()
    assert not row.locator(".f-retry").is_visible() and not row.locator(".f-cancel").is_visible()
    assert ui.in_view("#queue > li")
    ui.shot("new-failed-format")
    # The connection drops during the upload: Retry can help, and does.
    page.route("**/api/v1/transcriptions", lambda route: route.abort("connectionreset"))
    page.set_input_files("#file-input", str(world.clip))
    page.click("#transcribe")
    second = page.locator("#queue > li").nth(1)
    second.locator(".f-state", has_text="Failed").wait_for()
    assert not second.locator(".f-progress").is_visible()
    assert "connection was lost" in second.locator(".f-error").inner_text()
    assert second.locator(".f-retry").is_visible()
    ui.shot("new-failed-network")
    page.unroute("**/api/v1/transcriptions")
    second.locator(".f-retry").click()
    second.locator(".f-open:not(.hidden)").wait_for(timeout=120000)
    assert second.locator(".f-progress").is_visible() and "is-failed" not in (second.get_attribute("class") or "")
    wait_for_job(world.alice.get, ui.jobs()[-1])
    # Options the server refuses: the file goes back to the list, to be sent with other options.
    refusal = {"status_code": 400, "detail": "The model tiny.en understands English only, so it cannot translate."}
    page.route("**/api/v1/transcriptions", lambda route: route.fulfill(status=400, json=refusal))
    page.set_input_files("#file-input", str(world.other))
    page.click("#transcribe")
    third = page.locator("#queue > li").nth(2)
    third.locator(".f-state", has_text="Failed").wait_for()
    assert third.locator(".f-error").inner_text() == refusal["detail"]
    assert "back in the list above" in third.locator(".f-help").inner_text() and not third.locator(".f-retry").is_visible()
    assert page.locator("#pending li .p-name").all_inner_texts() == ["second take.wav"]
    ui.shot("new-failed-options")
    page.unroute("**/api/v1/transcriptions")
    page.click("#pending li .p-remove")
    page.evaluate("() => sessionStorage.clear()")
    ui.close()


def test_enter_starts_and_every_control_is_reachable_by_keyboard(world: World, browser: Any) -> None:
    ui = Session(browser, world)
    page = ui.page
    page.set_input_files("#file-input", str(world.clip))
    page.select_option("select[name=model]", MULTI)  # every option on offer (a disabled one takes no focus)
    reached = set()
    page.focus("#file-input")
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("() => { const e = document.activeElement; return e.name || e.id || e.className; }"))
    for control in ("rec-start", "p-remove", "model", "compare", "language", "translate", "diarize", "hotwords", "transcribe"):
        assert control in reached, (control, reached)
    page.select_option("select[name=model]", "tiny.en")
    page.check("input[name=diarize]")
    page.focus("input[name=num_speakers]")
    page.keyboard.type("1")
    page.keyboard.press("Enter")  # Enter in the form starts transcription, like the button
    page.wait_for_selector("#queue li .f-open:not(.hidden)", timeout=120000)
    assert len(ui.uploads) == 1
    job = world.alice.get(f"/api/v1/jobs/{ui.jobs()[-1]}").json()
    assert job["options"]["diarize"] is True and job["options"]["num_speakers"] == 1
    page.evaluate("() => sessionStorage.clear()")
    ui.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366", "390"])
def test_a_missing_page_is_a_page_inside_the_app_and_the_api_stays_json(
    world: World, browser: Any, viewport: dict[str, int]
) -> None:
    ui = Session(browser, world, viewport)
    page = ui.page
    response = page.goto(world.url + "/transcripts/that-never-was")
    assert response.status == 404 and response.headers["content-type"].startswith("text/html")
    assert page.inner_text("h1") == "Page not found"
    # The signed-in header (on a phone the address sits in the "More" menu, so read the markup, not the view).
    assert ADMIN_EMAIL in (page.text_content("header") or "") and page.locator("header a[href='/new']").count() == 1
    ui.shot("error-404")
    page.click("text=Go to the library")
    page.wait_for_url(world.url + "/")
    api = page.goto(world.url + "/api/v1/transcripts/that-never-was")
    assert api.status == 404 and api.headers["content-type"].startswith("application/json")
    assert api.json()["status_code"] == 404
    ui.close()
