"""The safe editor in headless Chromium, against the real app: a double-click never lands on a tool that
appeared under the pointer, merging two speakers' segments asks first, undo restores speakers and notes
(and saves them), and the keyboard reaches the 10th word of a transcript from the library in at most 15
presses with a visible focus.

The recogniser is a stand-in with a fixed text in four segments (the real model's segmentation of a clip
varies); the speakers are set through the API. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from appliance.transcription.asr import AsrOptions, AsrResult, CancelFn, ModelInfo, ProgressFn, Segment, Word
from tests.support import ADMIN_EMAIL, Scenario, settings_in, speak, wait_for_job
from tests.web.test_web_ui import PHONE, SHOTS, Page, _rev, _saved

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things.",
    "Six spoons of fresh snow peas and five thick slabs.",
    "Maybe a snack for her brother Bob as well.",
]


class FourSegments:
    """Answers every recording with SENTENCES, one segment each, evenly timed over the clip."""

    def transcribe(
        self, model: ModelInfo, audio: np.ndarray, options: AsrOptions, progress: ProgressFn, cancelled: CancelFn
    ) -> AsrResult:
        duration = len(audio) / 16000
        slot = duration / len(SENTENCES)
        segments = []
        for k, text in enumerate(SENTENCES):
            words = text.split()
            step = slot / len(words)
            timed = [
                Word(round(k * slot + i * step, 3), round(k * slot + (i + 0.8) * step, 3), " " + w, 0.9)
                for i, w in enumerate(words)
            ]
            segments.append(Segment(timed[0].start, timed[-1].end, " " + text, timed))
        progress(duration)
        return AsrResult(segments, "en", 1.0, duration, 0.0)


@dataclass
class World:
    url: str
    alice: httpx.Client
    clip: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required; scripts/test installs it")
    root = tmp_path_factory.mktemp("editor")
    scenario = Scenario(settings_in(root))
    key = scenario.person(ADMIN_EMAIL, role="admin", scope="admin").key
    scenario.close()
    clip = speak(root / "clip.wav", " ".join(SENTENCES))
    with (
        scenario.serve(FourSegments()) as server,
        httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as alice,
    ):
        yield World(server.url, alice, clip)


def _transcript(world: World, speakers: list[str | None]) -> str:
    """A new transcript of four segments, the n-th spoken by speakers[n] (Ada as S1, Bob as S2)."""
    job = world.alice.post(
        "/api/v1/transcriptions", files={"file": ("talk.wav", world.clip.read_bytes())}, data={"model": "tiny.en"}
    ).json()
    tid = str(wait_for_job(world.alice.get, job["id"])["transcript_id"])
    doc = world.alice.get(f"/api/v1/transcripts/{tid}").json()
    keys = {s["id"] for s in doc["speakers"]}
    ops: list[dict[str, Any]] = [
        {"op": "add_speaker", "key": key, "name": name} for key, name in (("S1", "Ada"), ("S2", "Bob")) if key not in keys
    ]
    ops += [{"op": "rename_speaker", "speaker": key, "name": name} for key, name in (("S1", "Ada"), ("S2", "Bob")) if key in keys]
    ops += [{"op": "segment", "sid": s["sid"], "speaker": who} for s, who in zip(doc["segments"], speakers, strict=True)]
    saved = world.alice.post(f"/api/v1/transcripts/{tid}/edits", json={"base_revision": doc["revision"], "ops": ops})
    assert saved.status_code == 200, saved.text
    return tid


def _doc(world: World, tid: str) -> dict[str, Any]:
    return dict(world.alice.get(f"/api/v1/transcripts/{tid}").json())


def _open(ui: Page, world: World, tid: str) -> Any:
    page = ui.page
    page.goto(f"{world.url}/t/{tid}")
    page.wait_for_function("() => window.SottoEditor && document.querySelector('#transcript .w[tabindex]')")
    return page


def _box(page: Any, selector: str) -> tuple[float, float, float, float]:
    b = page.locator(selector).bounding_box()
    return (round(b["x"], 1), round(b["y"], 1), round(b["width"], 1), round(b["height"], 1))


def test_double_click_edits_the_word_and_nothing_moves_between_the_clicks(world: World, browser: Any) -> None:
    tid = _transcript(world, ["S1", "S2", "S1", "S2"])
    segments = len(_doc(world, tid)["segments"])
    ui = Page(browser, world)
    page = _open(ui, world, tid)
    # A segment above is selected first: its tools once took a row that vanished on the next click.
    page.click("#transcript .seg >> nth=0 >> .w >> nth=1")
    target = "#transcript .seg >> nth=2 >> .w >> nth=3"
    x0, y0, w0, h0 = _box(page, target)
    page.mouse.click(x0 + w0 / 2, y0 + h0 / 2)
    time.sleep(0.3)  # anything the first click sets off (a re-render, a scroll) has happened by now
    assert _box(page, target) == (x0, y0, w0, h0), "the word moved between the two clicks of a double-click"
    page.mouse.down(click_count=2)
    page.mouse.up(click_count=2)
    page.wait_for_selector("#transcript .seg >> nth=2 >> .seg-text[contenteditable]")
    caret = page.evaluate("() => window.getSelection().anchorNode.parentElement.textContent")
    assert caret == SENTENCES[2].split()[3], caret
    assert page.locator("dialog[open]").count() == 0
    assert page.locator("#transcript .seg").count() == segments
    page.keyboard.press("Escape")
    assert page.locator(".seg-text[contenteditable]").count() == 0
    assert len(_doc(world, tid)["segments"]) == segments, "no merge happened"
    # The segment's tools are in the bar, which a click on the text never reaches.
    assert page.locator("#transcript [data-action]").count() == 0
    assert page.is_enabled("#seg-bar [data-action=merge-next]")
    ui.csp_clean()
    ui.close()


def test_merging_two_speakers_segments_asks_first(world: World, browser: Any) -> None:
    tid = _transcript(world, ["S1", "S2", "S2", "S2"])
    ui = Page(browser, world)
    page = _open(ui, world, tid)
    page.click("#transcript .seg >> nth=0 >> .w >> nth=0")
    # Esc and Cancel: nothing merged, Bob keeps his words.
    for close in ("Escape", "Cancel"):
        page.click("#seg-bar [data-action=merge-next]")
        page.wait_for_selector("#confirm-dialog[open]")
        assert "Bob" in page.inner_text("#confirm-dialog") and "Ada" in page.inner_text("#confirm-dialog")
        if close == "Escape":
            page.keyboard.press("Escape")
        else:
            page.click("#confirm-dialog .dialog-cancel")
        page.wait_for_function("() => !document.getElementById('confirm-dialog').open")
        assert page.locator("#transcript .seg").count() == 4
    assert [s["speaker"] for s in _doc(world, tid)["segments"]] == ["S1", "S2", "S2", "S2"]
    # Enter confirms.
    rev = _rev(page)
    page.click("#seg-bar [data-action=merge-next]")
    page.wait_for_selector("#confirm-dialog[open]")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#transcript .seg').length === 3")
    _saved(page, rev)
    doc = _doc(world, tid)
    assert [s["speaker"] for s in doc["segments"]] == ["S1", "S2", "S2"]
    assert doc["segments"][0]["text"].strip() == f"{SENTENCES[0]} {SENTENCES[1]}"
    # Two segments of the same speaker merge without a question (undo is there).
    rev = _rev(page)
    page.click("#transcript .seg >> nth=1 >> .w >> nth=0")
    page.click("#seg-bar [data-action=merge-next]")
    page.wait_for_function("() => document.querySelectorAll('#transcript .seg').length === 2")
    assert page.locator("#confirm-dialog[open]").count() == 0
    _saved(page, rev)
    ui.csp_clean()
    ui.close()


def test_undo_restores_speaker_and_notes_and_saves_them(world: World, browser: Any) -> None:
    tid = _transcript(world, ["S1", "S2", "S2", "S1"])
    ui = Page(browser, world)
    page = _open(ui, world, tid)
    # Bob's run of two segments becomes Ada's.
    page.click("#transcript .seg >> nth=1 >> .w >> nth=0")
    page.click("#seg-bar [data-action=speaker]")
    page.select_option("#speaker-dialog select", "S1")
    rev = _rev(page)
    page.click("#speaker-dialog-ok")
    _saved(page, rev)
    assert [s["speaker"] for s in _doc(world, tid)["segments"]] == ["S1", "S1", "S1", "S1"]
    # A note on the segment, a new transcript note, and a rename.
    page.click("#seg-bar [data-action=note]")
    page.fill("#speaker-dialog textarea", "Check the name.")
    rev = _rev(page)
    page.click("#speaker-dialog-ok")
    _saved(page, rev)
    rev = _rev(page)
    page.fill("#t-note", "Rewritten note")
    _saved(page, rev)
    page.click("#speakers .spk-rename >> nth=0")
    page.fill("#speaker-dialog input", "Ada Lovelace")
    rev = _rev(page)
    page.press("#speaker-dialog input", "Enter")
    _saved(page, rev)
    doc = _doc(world, tid)
    assert doc["segments"][1]["note"] == "Check the name." and doc["note"] == "Rewritten note"
    # Undo, step by step, back to the start: each restored state is saved.
    for check in (
        lambda d: d["speakers"][0]["display_name"] == "Ada",
        lambda d: d["note"] == "",
        lambda d: d["segments"][1]["note"] == "",
        lambda d: [s["speaker"] for s in d["segments"]] == ["S1", "S2", "S2", "S1"],
    ):
        rev = _rev(page)
        page.click("#undo")
        _saved(page, rev)
        assert check(_doc(world, tid)), _doc(world, tid)
    assert page.input_value("#t-note") == ""
    assert page.inner_text("#transcript .seg >> nth=1 >> .seg-spk") == "BOB"
    assert page.locator("#transcript .seg-note").count() == 0
    assert page.is_disabled("#undo")
    # Redo all of it.
    for _ in range(4):
        rev = _rev(page)
        page.click("#redo")
        _saved(page, rev)
    doc = _doc(world, tid)
    assert [s["speaker"] for s in doc["segments"]] == ["S1", "S1", "S1", "S1"]
    assert doc["segments"][1]["note"] == "Check the name." and doc["note"] == "Rewritten note"
    assert doc["speakers"][0]["display_name"] == "Ada Lovelace"
    assert page.input_value("#t-note") == "Rewritten note"
    ui.csp_clean()
    ui.close()


def _luminance(css: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_keyboard_from_the_library_to_editing_the_tenth_word(world: World, browser: Any) -> None:
    tid = _transcript(world, ["S1", "S2", "S1", "S2"])  # the newest: first in the library
    ui = Page(browser, world)
    page = ui.page
    presses = 0

    def press(key: str, times: int = 1) -> None:
        nonlocal presses
        for _ in range(times):
            page.keyboard.press(key)
            presses += 1

    page.goto(world.url + "/")
    press("Tab")  # "Skip to the transcripts"
    press("Enter")
    assert page.evaluate("() => document.activeElement.getAttribute('href')") == f"/t/{tid}"
    press("Enter")
    page.wait_for_url(f"{world.url}/t/{tid}")
    page.wait_for_function("() => window.SottoEditor && document.querySelector('#transcript .w[tabindex]')")
    press("Tab")  # "Skip to the transcript"
    press("Enter")
    assert page.evaluate("() => document.activeElement.textContent") == "The"
    # One Tab stop: the transcript's words are not in the Tab order one by one.
    assert page.locator("#transcript [tabindex='0']").count() == 1
    press("ArrowRight", 9)
    word = page.evaluate("() => document.activeElement.textContent")
    tenth = " ".join(SENTENCES).split()[9]
    assert word == tenth, word
    # The focus is visible, and its outline has at least 3:1 contrast with what is around it.
    style = page.evaluate(
        """() => { const w = document.activeElement, s = getComputedStyle(w);
        const bg = (el) => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor;
          if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
        return { visible: w.matches(':focus-visible'), style: s.outlineStyle, width: parseFloat(s.outlineWidth),
                 colour: s.outlineColor, behind: bg(w.closest('.seg')), page: bg(document.body) }; }"""
    )
    assert style["visible"] and style["style"] == "solid" and style["width"] >= 2, style
    assert _contrast(style["colour"], style["behind"]) >= 3 and _contrast(style["colour"], style["page"]) >= 3, style
    ui.shot("editor-focus")
    press("Enter")
    page.wait_for_selector(".seg-text[contenteditable]")
    caret = page.evaluate("() => window.getSelection().anchorNode.parentElement.textContent")
    assert caret == tenth, caret
    assert presses <= 15, presses
    # Esc leaves the edit box, back on the same word; Down goes to the next segment.
    press("Escape")
    assert page.locator(".seg-text[contenteditable]").count() == 0
    assert page.evaluate("() => document.activeElement.textContent") == tenth
    press("ArrowDown")
    assert page.evaluate("() => document.activeElement.textContent") == SENTENCES[2].split()[0]
    ui.csp_clean()
    ui.close()


def test_screenshots_of_the_editor_at_laptop_and_phone_width(world: World, browser: Any) -> None:
    tid = _transcript(world, ["S1", "S2", "S1", "S2"])
    for viewport, name in (({"width": 1366, "height": 768}, "1366"), (PHONE, "390")):
        ui = Page(browser, world, viewport=viewport)
        page = _open(ui, world, tid)
        shots = SHOTS / "editor"
        shots.mkdir(parents=True, exist_ok=True)
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.keyboard.press("ArrowRight")
        page.screenshot(path=str(shots / f"focus-{name}.png"))
        page.keyboard.press("Enter")
        page.wait_for_selector(".seg-text[contenteditable]")
        page.screenshot(path=str(shots / f"editing-{name}.png"))
        page.keyboard.press("Escape")
        page.click("#seg-bar [data-action=merge-next]")
        page.wait_for_selector("#confirm-dialog[open]")
        page.screenshot(path=str(shots / f"dialog-{name}.png"))
        page.keyboard.press("Escape")
        page.click("#seg-bar [data-action=timing]")
        page.wait_for_selector("#timing-dialog[open]")
        page.screenshot(path=str(shots / f"timing-{name}.png"))
        page.keyboard.press("Escape")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (viewport, overflow)
        ui.csp_clean()
        ui.close()


def test_who_spoke_how_much_follows_the_saved_transcript(world: World, browser: Any) -> None:
    tid = _transcript(world, ["S1", "S2", "S1", "S1"])
    stats = world.alice.get(f"/api/v1/transcripts/{tid}/speakers/analytics").json()
    assert [(s["name"], s["turns"]) for s in stats["speakers"]] == [("Ada", 2), ("Bob", 1)] and stats["turns"] == 3
    ui = Page(browser, world)
    page = _open(ui, world, tid)
    page.click("#speaker-stats summary")
    page.wait_for_selector("#speaker-stats tbody tr >> nth=1")
    rows = page.locator("#speaker-stats tbody tr").all_inner_texts()
    assert rows[0].startswith("Ada") and "\t2\t" in rows[0] and rows[1].startswith("Bob"), rows
    ui.close()


def test_a_share_link_made_in_the_ui_opens_in_a_fresh_browser_and_revokes(world: World, browser: Any) -> None:
    tid = _transcript(world, ["S1", "S2", "S1", "S2"])
    ui = Page(browser, world)
    page = _open(ui, world, tid)
    page.click("#links-new summary")
    page.fill("#links-form input[name=password]", "a link password")
    page.click("#links-form button[type=submit]")
    page.wait_for_selector("#links-made:not(.hidden)")
    url = page.inner_text("#links-url")
    page.wait_for_selector("#links-list >> text=0 views")
    stranger = browser.new_context().new_page()  # no session, no cookies
    stranger.goto(url)
    stranger.fill("input[name=password]", "a link password")
    stranger.keyboard.press("Enter")
    stranger.wait_for_selector(f"text={SENTENCES[1].split()[0]}")
    assert "talk.wav" not in stranger.content()  # the file name never reaches a public page
    page.reload()
    page.wait_for_selector("#links-list >> text=1 view")
    page.click("#links-list .danger")
    page.keyboard.press("Enter")  # Enter confirms the revocation
    page.wait_for_selector("#links-list >> text=No links yet.")
    assert stranger.goto(url).status == 404  # type: ignore[union-attr]
    stranger.context.close()
    ui.close()


def test_export_options_chosen_in_the_menu_shape_the_download(world: World, browser: Any) -> None:
    tid = _transcript(world, ["S1", "S2", "S1", "S2"])
    ui = Page(browser, world)
    page = _open(ui, world, tid)
    page.click("#export-menu summary")
    page.uncheck("#export-options input[name=timestamps]")
    page.uncheck("#export-options input[name=speakers]")
    with page.expect_download() as download:
        page.click("#export-menu a[data-export=txt]")
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[0] == SENTENCES[0] and "[00:" not in text and "Ada" not in text, text
    ui.close()


def test_history_survives_a_reload_and_an_earlier_version_is_viewed_and_restored(world: World, browser: Any) -> None:
    tid = _transcript(world, ["S1", "S2", "S1", "S2"])
    ui = Page(browser, world)
    page = _open(ui, world, tid)
    # A note and a merge across speakers (confirmed), saved; then the page is reloaded: undo's memory is gone.
    rev = _rev(page)
    page.fill("#t-note", "First pass")
    _saved(page, rev)
    page.click("#transcript .seg >> nth=0 >> .w >> nth=0")
    page.click("#seg-bar [data-action=merge-next]")
    rev = _rev(page)
    page.press("#confirm-dialog-ok", "Enter")
    _saved(page, rev)
    assert len(_doc(world, tid)["segments"]) == 3
    page.reload()
    page.wait_for_function("() => window.SottoEditor && document.querySelector('#transcript .w[tabindex]')")
    assert page.is_disabled("#undo")
    page.click("#revisions summary")
    items = page.locator("#revision-list .revision-item")
    page.wait_for_function("() => document.querySelectorAll('#revision-list .revision-item').length >= 4")
    texts = items.all_inner_texts()
    assert "Merged two segments" in texts[0] and "Current" in texts[0] and ADMIN_EMAIL in texts[0]
    assert "Changed the note" in texts[1] and "As transcribed" in texts[-1]
    ui.shot("revisions-panel")
    # The version before the merge, read only: four segments with Bob's words still Bob's.
    before_merge = re.search(r"Revision (\d+)", texts[1])
    assert before_merge
    page.click(f"#revision-list button[aria-label='View revision {before_merge.group(1)}']")
    page.wait_for_selector("#revision-dialog[open]")
    assert page.locator("#revision-preview .revision-seg").count() == 4
    assert "Bob:" in page.inner_text("#revision-preview .revision-seg >> nth=1")
    assert page.locator("#revision-preview [contenteditable], #revision-preview input").count() == 0
    ui.shot("revision-preview")
    page.keyboard.press("Escape")  # Esc closes and changes nothing
    page.wait_for_selector("#revision-dialog:not([open])", state="attached")
    assert len(_doc(world, tid)["segments"]) == 3
    # Enter restores it, as a new revision; the page reloads with four segments and the note kept.
    page.click(f"#revision-list button[aria-label='View revision {before_merge.group(1)}']")
    page.wait_for_selector("#revision-dialog[open]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_function("() => window.SottoEditor && document.querySelector('#transcript .w[tabindex]')")
    doc = _doc(world, tid)
    assert len(doc["segments"]) == 4 and doc["note"] == "First pass"
    assert [s["speaker"] for s in doc["segments"]] == ["S1", "S2", "S1", "S2"]
    assert page.locator("#transcript .seg").count() == 4
    page.click("#revisions summary")
    page.wait_for_function("() => /Restored revision/.test(document.getElementById('revision-list').textContent)")
    ui.csp_clean()
    ui.close()
    # On a phone the list and the preview fit the width (nothing scrolls sideways).
    phone = Page(browser, world, viewport=PHONE)
    page = _open(phone, world, tid)
    page.click("#revisions summary")
    page.wait_for_selector("#revision-list button[aria-label^='View revision']")
    page.locator("#revision-list button[aria-label^='View revision']").first.click()
    page.wait_for_selector("#revision-dialog[open]")
    box = page.locator("#revision-dialog").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(SHOTS / "revision-preview-phone.png"))
    phone.csp_clean()
    phone.close()
