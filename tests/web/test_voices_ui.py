"""Voice profiles in headless Chromium at phone width (390 px), against the real app with the real embedded
engine on synthesised voices: a suggestion on the transcript page is confirmed and names the speaker; a
profile is deleted from the voice profiles page through its dialog (Esc cancels, Enter confirms), by keyboard.

The recogniser is the editor tests' stand-in (fixed words spread over the clip); the speakers and their
voices come from the real diarization of a two-voice dialogue."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ADMIN_EMAIL, Scenario, settings_in, speak, wait_for_job
from tests.web.test_editor_ui import FourSegments
from tests.web.test_web_ui import PHONE, Page


@dataclass
class World:
    url: str
    alice: httpx.Client
    workspace: str
    transcript: str
    root: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, dialogue: tuple[Path, list]) -> Iterator[World]:  # type: ignore[type-arg]
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required; scripts/test installs it")
    root = tmp_path_factory.mktemp("voices-ui")
    scenario = Scenario(settings_in(root, APPLIANCE_DIARIZATION__VOICE_PROFILES="true"))
    alice = scenario.person(ADMIN_EMAIL, role="admin", scope="admin")
    scenario.close()
    agent = speak(root / "agent.wav", "Please hold the line while I look up your account and the delivery.", "en-us", pitch=30)
    with (
        scenario.serve(FourSegments()) as server,
        httpx.Client(base_url=server.url, timeout=300, headers={"Authorization": f"Bearer {alice.key}"}) as http,
    ):
        ws = str(alice.user.personal_workspace_id)
        made = http.post(
            f"/api/v1/workspaces/{ws}/voice-profiles",
            params={"name": "Agent", "consent_note": "Agent, 3 Dec 2026"},
            content=agent.read_bytes(),
        )
        assert made.status_code == 201, made.text
        job = http.post(
            "/api/v1/transcriptions", files={"file": ("call.wav", dialogue[0].read_bytes())}, data={"diarize": "true"}
        ).json()
        done = wait_for_job(http.get, job["job_id"], timeout=300)
        assert done["state"] == "done", done
        yield World(server.url, http, ws, str(done["transcript_id"]), root)


def test_a_suggestion_is_confirmed_on_the_transcript_page(world: World, browser: Any) -> None:
    voices = world.alice.get(f"/api/v1/transcripts/{world.transcript}/voices").json()
    suggested = [v for v in voices["speakers"] if v["profile_name"] == "Agent"]
    assert len(suggested) == 1, voices
    key = suggested[0]["speaker"]
    ui = Page(browser, world, viewport=PHONE)  # type: ignore[arg-type]
    page = ui.page
    page.goto(f"{world.url}/t/{world.transcript}")
    hint = page.locator(f"#voice-hint-list li[data-speaker={key}]")
    hint.wait_for()
    assert "Sounds like Agent (" in hint.inner_text()
    # Suggested only: the speaker list still has the engine's label.
    assert "Agent" not in page.inner_text("#speakers")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    ui.shot("voice-suggestion")
    hint.get_by_role("button", name="Confirm").click()
    page.wait_for_function(
        "key => document.querySelector(`#speakers li[data-speaker=${key}]`)?.textContent.includes('Agent')", arg=key
    )
    doc = world.alice.get(f"/api/v1/transcripts/{world.transcript}").json()
    assert {s["id"]: s["display_name"] for s in doc["speakers"]}[key] == "Agent"
    assert "known voice: Agent" in page.locator(f"#voice-hint-list li[data-speaker={key}]").inner_text()
    ui.csp_clean()
    ui.close()


def test_a_profile_is_deleted_through_its_dialog_by_keyboard(world: World, browser: Any) -> None:
    voices = world.alice.get(f"/api/v1/transcripts/{world.transcript}/voices").json()
    other = next(v["speaker"] for v in voices["speakers"] if v["state"] != "confirmed")
    enrolled = world.alice.post(
        f"/api/v1/transcripts/{world.transcript}/speakers/{other}/enrol",
        json={"name": "Caller", "consent_note": "Caller, on the call"},
    )
    assert enrolled.status_code == 200, enrolled.text
    ui = Page(browser, world, viewport=PHONE)  # type: ignore[arg-type]
    page = ui.page
    page.goto(f"{world.url}/voices")
    row = page.locator("#voice-profiles li[data-name=Caller]")
    row.wait_for()
    # Enrolment from a recording through the page's form: no consent, a clear message and the fields kept.
    dana = speak(world.root / "dana.wav", "Hello, my name is Dana and I am recording this for the team today.", "en+f2", pitch=56)
    page.fill("#voice-enrol input[name=name]", "Dana")
    page.set_input_files("#voice-enrol input[name=file]", str(dana))
    page.evaluate("() => document.querySelector('#voice-enrol input[name=consent_note]').removeAttribute('required')")
    page.click("#voice-enrol button[type=submit]")
    page.wait_for_function("() => /consent/.test(document.getElementById('voice-status').textContent)")
    assert page.input_value("#voice-enrol input[name=name]") == "Dana"
    page.fill("#voice-enrol input[name=consent_note]", "Dana, 3 Dec 2026")
    page.click("#voice-enrol button[type=submit]")
    page.locator("#voice-profiles li[data-name=Dana]").wait_for()
    row = page.locator("#voice-profiles li[data-name=Caller]")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    ui.shot("voice-profiles")
    delete = row.get_by_role("button", name="Delete")
    delete.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#voice-dialog[open]")
    assert "Delete Caller?" in page.inner_text("#voice-dialog")
    page.keyboard.press("Escape")  # cancels: nothing deleted
    page.wait_for_function("() => !document.getElementById('voice-dialog').open")
    names = {p["name"] for p in world.alice.get(f"/api/v1/workspaces/{world.workspace}/voice-profiles").json()["profiles"]}
    assert names == {"Agent", "Caller", "Dana"}
    delete.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#voice-dialog[open]")
    page.keyboard.press("Enter")  # confirms
    page.wait_for_function("() => !document.querySelector('#voice-profiles li[data-name=Caller]')")
    names = {p["name"] for p in world.alice.get(f"/api/v1/workspaces/{world.workspace}/voice-profiles").json()["profiles"]}
    assert names == {"Agent", "Dana"}
    ui.csp_clean()
    ui.close()
