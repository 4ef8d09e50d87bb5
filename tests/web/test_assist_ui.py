"""The Summary panel in headless Chromium against the real app and the real SmolLM2-135M model: open a
transcript, Summarize, watch the text stream in, click a cited moment and the player jumps there; ask a
question and get a cited answer; edit (Esc cancels, Ctrl+Enter saves); a private transcript has no panel.
Screenshots at 1366x768 and 390x844."""

from __future__ import annotations

import shutil
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.assist.meeting import LINES
from tests.support import ADMIN_EMAIL, FakeRecognizer, Scenario, settings_in
from tests.web.test_web_ui import PHONE, Page

LAPTOP = {"width": 1366, "height": 768}


@dataclass
class World:
    url: str
    http: httpx.Client
    transcript: str
    recording: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, llm_dir: Path) -> Iterator[World]:
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required; scripts/test installs it")
    root = tmp_path_factory.mktemp("assist-ui")
    scenario = Scenario(settings_in(root, APPLIANCE_ASSIST__MODEL=str(llm_dir), APPLIANCE_ASSIST__MAX_NEW_TOKENS="200"))
    alice = scenario.person(ADMIN_EMAIL, role="admin", scope="admin")
    transcript = scenario.meeting(alice, LINES)
    recording = root / "meeting.wav"  # the "recording" attached in the browser: silence as long as the meeting
    with wave.open(str(recording), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\x00\x00" * 16000 * 40)
    with (
        scenario.serve(FakeRecognizer()) as server,
        httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {alice.key}"}) as http,
    ):
        yield World(server.url, http, transcript, recording)


def test_summarize_streams_and_a_citation_plays_its_moment(world: World, browser: Any) -> None:
    ui = Page(browser, world, viewport=LAPTOP)  # type: ignore[arg-type]
    page = ui.page
    page.goto(f"{world.url}/t/{world.transcript}")
    page.set_input_files("#audio-file", str(world.recording))
    page.wait_for_function("() => document.getElementById('audio').duration > 30")
    start = page.locator("#summary-start")
    start.wait_for(state="visible")
    assert start.inner_text() == "Summarize"
    start.click()
    # The words appear while the model writes them, before the stored summary replaces them.
    page.wait_for_function("() => document.getElementById('summary-stream').textContent.length > 20", timeout=60000)
    assert page.locator("#summary-cancel").is_visible()
    ui.shot("summary-streaming")
    page.wait_for_function("() => document.querySelectorAll('#summary-body p').length > 0", timeout=120000)
    assert page.locator("#summary-start").inner_text() == "Regenerate"
    stored = world.http.get(f"/api/v1/transcripts/{world.transcript}/summaries").json()["latest"]["summary"]
    cites = page.locator("#summary-body button.cite")
    if cites.count() == 0:  # the model cited nothing that exists and nothing matched: the page must say it plainly
        pytest.fail(f"no cited moment to click: {stored}")
    target = cites.last
    segment = int(target.get_attribute("data-segment") or -1)
    starts = world.http.get(f"/api/v1/transcripts/{world.transcript}").json()["segments"]
    target.click()
    page.wait_for_function(
        "t => Math.abs(document.getElementById('audio').currentTime - t) < 0.05", arg=starts[segment]["start"], timeout=5000
    )
    ui.shot("summary-done")

    # A question, answered with a moment that plays.
    page.fill("#ask-question", "Who will write the release notes?")
    page.keyboard.press("Enter")
    answer = page.locator("#ask-answer button.cite").first
    answer.wait_for(timeout=60000)
    segment = int(answer.get_attribute("data-segment") or -1)
    answer.click()
    page.wait_for_function(
        "t => Math.abs(document.getElementById('audio').currentTime - t) < 0.05", arg=starts[segment]["start"], timeout=5000
    )
    ui.shot("summary-ask")

    # Edit: Esc leaves it as it was, Ctrl+Enter saves a new version.
    page.click("#summary-edit")
    page.locator("#summary-text").fill("Changed my mind")
    page.keyboard.press("Escape")
    assert page.locator("#summary-editor").is_hidden() and "Changed my mind" not in page.inner_text("#summary-body")
    page.click("#summary-edit")
    page.locator("#summary-text").fill("The release ships on Friday.")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("() => document.getElementById('summary-body').textContent.includes('ships on Friday')")
    assert world.http.get(f"/api/v1/transcripts/{world.transcript}/summaries").json()["latest"]["origin"] == "edited"
    ui.csp_clean()
    ui.close()


def test_the_panel_fits_a_phone(world: World, browser: Any) -> None:
    ui = Page(browser, world, viewport=PHONE)  # type: ignore[arg-type]
    page = ui.page
    page.goto(f"{world.url}/t/{world.transcript}")
    page.locator("#summary-body p").first.wait_for()
    page.locator("#summary-panel").scroll_into_view_if_needed()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    ui.shot("summary-panel")
    ui.csp_clean()
    ui.close()
