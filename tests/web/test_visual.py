"""Every page, at 1366x768 and 390x844, in the light and the dark theme, in headless Chromium:

- visual regression: each screenshot (the first one and a half screens, halved in size) is compared with
  the committed reference in tests/web/visual_refs/. A pixel counts as changed when no pixel within one
  step of it in the other picture is within CHANNEL_TOLERANCE on every colour channel (antialiasing
  noise and glyph edges rasterised a pixel aside stay below it); a page fails when more than
  PIXEL_TOLERANCE of its pixels changed, or its size did. On failure the current screenshot and a diff
  (changed pixels in red over a faded copy) go to test-artifacts/visual/.
  To accept a deliberate change: SOTTO_UPDATE_VISUAL_REFS=1 scripts/test tests/web/test_visual.py
  then look at the new PNGs (git diff shows them) and commit them.
- accessibility: axe-core (from npm, pinned with its integrity in tests/js/package-lock.json; scripts/test
  runs npm ci) finds no critical or serious violation on any of them.

The data is made deterministic so that nothing but the layout can change a picture: fixed timestamps, ids
the audit log shows replaced by fixed names, one sign-in before the clock is fixed (the visits reuse its
session), the browser's time zone and locale fixed, animations and the caret off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, REPO, Scenario, settings_in, wait_for_job
from tests.web.test_editor_api import _wav
from tests.web.test_editor_ui import SENTENCES, FourSegments

REFS = Path(__file__).parent / "visual_refs"
OUT = REPO / "test-artifacts" / "visual"
AXE = Path(__file__).parents[1] / "js" / "node_modules" / "axe-core" / "axe.min.js"
UPDATE = os.environ.get("SOTTO_UPDATE_VISUAL_REFS") == "1"
SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
THEMES = ("light", "dark")
CHANNEL_TOLERANCE = 48  # of 255, per channel, after halving (which averages antialiased edges)
PIXEL_TOLERANCE = 0.003  # share of a page's pixels
STAMP = "2026-01-05T09:30:00.000Z"
BOB = "bob@example.org"


@dataclass
class Visit:
    name: str
    png: Path  # the screenshot just taken (halved)
    violations: list[str] = field(default_factory=list)


@dataclass
class Site:
    url: str
    root: str  # the appliance's data and models live here
    pages: dict[str, str] = field(default_factory=dict)  # name -> path; signed in unless in SIGNED_OUT
    signed_out: set[str] = field(default_factory=set)
    visits: list[Visit] = field(default_factory=list)
    session: dict[str, Any] = field(default_factory=dict)  # a signed-in browser's storage state


def _sign_in(browser: Any, url: str) -> dict[str, Any]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "/login")
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


def _fix_times(db: Any) -> None:
    """Every timestamp a page shows, set to one instant (sessions and locks are left alone)."""
    columns = {
        "transcripts": ["created_at", "updated_at"],
        "jobs": ["created_at", "started_at", "finished_at"],
        "users": ["created_at"],
        "workspaces": ["created_at"],
        "audit_log": ["at"],
        "share_links": ["created_at"],
        "transcript_edits": ["at"],
        "api_keys": ["created_at", "last_used_at"],
    }
    for table, names in columns.items():
        present = {c.name for c in db[table].columns}
        for name in names:
            if name in present:
                db.execute(f"UPDATE {table} SET {name} = ? WHERE {name} IS NOT NULL", [STAMP])
    db.execute("UPDATE share_links SET expires_at = '2099-01-01T00:00:00.000Z' WHERE expires_at IS NOT NULL")
    # Random ids the audit log shows (a share link's id): a fixed name in their place.
    db.execute("UPDATE audit_log SET target = 'id-' || id WHERE length(target) = 32 AND target NOT GLOB '*[^0-9a-f]*'")
    db.conn.commit()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Site]:
    if not AXE.exists():
        pytest.fail(f"axe-core is missing: run `npm ci --prefix tests/js` (scripts/test does) to install {AXE.name}")
    root = tmp_path_factory.mktemp("visual")
    scenario = Scenario(settings_in(root))
    with scenario.serve(FourSegments()) as server:
        result = Site(server.url, str(root))
        # Before anyone exists: the first-run page.
        _visit_all(browser, result, {"setup": "/setup"}, signed_in=False)
        alice = scenario.person(ADMIN_EMAIL, role="admin", scope="admin")
        bob = scenario.person(BOB, role="member")
        team = scenario.workspace("Legal team", alice, {bob.id: "member"})
        with httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {alice.key}"}) as http:
            job = http.post("/api/v1/transcriptions", files={"file": ("standup.wav", _wav(8.0))}, data={"model": "tiny.en"})
            done = wait_for_job(http.get, job.json()["id"])
            assert done["state"] == "done", done  # the reason, if the job did not finish
            tid = done["transcript_id"]
            doc = http.get(f"/api/v1/transcripts/{tid}").json()
            ops: list[dict[str, Any]] = [
                {"op": "add_speaker", "key": "S1", "name": "Ada"},
                {"op": "add_speaker", "key": "S2", "name": "Bob"},
                {"op": "title", "text": "Weekly standup"},
                {"op": "note", "text": "Follow up on the snow peas."},
            ]
            ops += [
                {"op": "segment", "sid": s["sid"], "speaker": "S1" if i % 2 == 0 else "S2"} for i, s in enumerate(doc["segments"])
            ]
            assert http.post(f"/api/v1/transcripts/{tid}/edits", json={"base_revision": 1, "ops": ops}).status_code == 200
            share = http.post(f"/api/v1/transcripts/{tid}/shares", json={"formats": ["txt", "pdf"]}).json()
        scenario.transcript(alice, "An older note about the quarterly budget", filename="budget.wav")
        scenario.transcript(bob, "Contract review with the landlord", filename="lease.wav", workspace_id=team)
        result.session = _sign_in(browser, server.url)
        _fix_times(scenario.db)
        result.pages.update(
            {
                "library": "/",
                "new": "/new",
                "editor": f"/t/{tid}",
                "job": f"/jobs/{done['id']}",
                "search": "/search?q=snow",
                "account": "/account",
                "second-factor": "/account/second-factor",
                "workspaces": "/workspaces",
                "voices": "/voices",
                "integrations": "/integrations",
                "users": "/admin/users",
                "directory": "/admin/directory",
                "models": "/admin/models",
                "licence": "/admin/license",
                "audit": "/admin/audit",
                "not-found": "/t/no-such-transcript",
            }
        )
        _visit_all(browser, result, result.pages, signed_in=True)
        _visit_all(
            browser,
            result,
            {"login": "/login", "privacy": "/privacy", "invite": "/invite", "share": share["path"]},
            signed_in=False,
        )
        yield result
    scenario.close()


def _visit_all(browser: Any, site: Site, pages: dict[str, str], *, signed_in: bool) -> None:
    axe = AXE.read_text()
    for size, viewport in SIZES.items():
        for theme in THEMES:
            # bypass_csp only here: it lets the test inject axe-core; the app's own pages are CSP-tested elsewhere.
            context = browser.new_context(
                viewport=viewport,
                color_scheme=theme,
                timezone_id="UTC",
                locale="en-GB",
                bypass_csp=True,
                storage_state=site.session if signed_in else None,
            )
            page = context.new_page()
            for name, path in pages.items():
                page.goto(site.url + path, wait_until="networkidle")
                if name == "editor":
                    page.wait_for_function("() => window.SottoEditor && document.querySelector('#transcript .w[tabindex]')")
                page.evaluate("() => document.fonts.ready")
                # The test's data directory (a new temporary path each run) shows on the Models page: a fixed one instead.
                page.evaluate(
                    """root => { const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
                       for (let n = walk.nextNode(); n; n = walk.nextNode()) n.nodeValue = n.nodeValue.split(root).join('/srv/sotto'); }""",
                    site.root,
                )
                key = f"{name}-{size}-{theme}"
                shot = OUT / "current" / f"{key}.png"
                shot.parent.mkdir(parents=True, exist_ok=True)
                _shoot(page, viewport, shot)
                reference = REFS / shot.name
                if not UPDATE and reference.exists() and _compare(shot, reference):
                    # Once more after a pause: a page still settling on a slow machine (a late font, a script
                    # finishing) looks right a second later; a changed layout fails the same way twice.
                    page.wait_for_timeout(1500)
                    page.evaluate("() => document.fonts.ready")
                    _shoot(page, viewport, shot)
                visit = Visit(key, shot)
                page.add_script_tag(content=axe)
                found = page.evaluate(
                    "async () => (await axe.run(document, { resultTypes: ['violations'] })).violations"
                    ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
                    ".map(v => `${v.impact} ${v.id}: ${v.help} -- ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}`)"
                )
                visit.violations = list(found)
                site.visits.append(visit)
            context.close()


def _shoot(page: Any, viewport: dict[str, int], shot: Path) -> None:
    height = min(page.evaluate("() => document.documentElement.scrollHeight"), int(viewport["height"] * 1.5))
    raw = page.screenshot(
        full_page=True,
        clip={"x": 0, "y": 0, "width": viewport["width"], "height": height},
        animations="disabled",
        caret="hide",
    )
    _halve(raw, shot)


def _halve(png: bytes, path: Path) -> None:
    import io

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.reduce(2).save(path, optimize=True)


def _unmatched(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pixels of x with no pixel within one step (3x3) in y that matches it within CHANNEL_TOLERANCE.

    Text rasterised a fraction of a pixel to one side (another CPU's font hinting or rounding) moves a
    glyph's edge by one pixel after halving; a changed word, a moved block or a new colour has no match
    near it. This is why a neighbourhood, not the pixel itself, is the comparison."""
    height, width = x.shape[:2]
    padded = np.pad(y, ((1, 1), (1, 1), (0, 0)), mode="edge")
    best = np.full((height, width), 255, dtype=np.int16)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            near = padded[dy : dy + height, dx : dx + width]
            best = np.minimum(best, np.abs(x - near).max(axis=2))
    return best > CHANNEL_TOLERANCE


def _compare(current: Path, reference: Path) -> str | None:
    """None when the two match within the tolerance; otherwise why not (and a diff image is written)."""
    a, b = Image.open(current).convert("RGB"), Image.open(reference).convert("RGB")
    if a.size != b.size:
        return f"size {a.size} != reference {b.size}"
    x, y = np.asarray(a, dtype=np.int16), np.asarray(b, dtype=np.int16)
    # Both ways: what appeared (no match in the reference) and what went away (no match in the page now).
    changed = _unmatched(x, y) | _unmatched(y, x)
    share = float(changed.mean())
    if share <= PIXEL_TOLERANCE:
        return None
    faded = (y * 0.3 + 178).astype(np.uint8)
    faded[changed] = (220, 0, 0)
    diff = OUT / "diff" / current.name
    diff.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(faded).save(diff)
    return f"{share:.2%} of pixels changed (allowed {PIXEL_TOLERANCE:.2%}); diff: {diff.relative_to(REPO)}"


def test_every_page_matches_its_reference(site: Site) -> None:
    assert len(site.visits) == len(SIZES) * len(THEMES) * (len(site.pages) + 5)
    if UPDATE:
        REFS.mkdir(exist_ok=True)
        for visit in site.visits:
            (REFS / visit.png.name).write_bytes(visit.png.read_bytes())
    failures = []
    for visit in site.visits:
        reference = REFS / visit.png.name
        if not reference.exists():
            failures.append(f"{visit.name}: no reference (SOTTO_UPDATE_VISUAL_REFS=1 writes it)")
            continue
        why = _compare(visit.png, reference)
        if why:
            failures.append(f"{visit.name}: {why}; now: {visit.png.relative_to(REPO)}")
    stale = {p.name for p in REFS.glob("*.png")} - {v.png.name for v in site.visits}
    assert not stale, f"references of pages no longer visited: {sorted(stale)}"
    assert not failures, (
        "pages look different from their references. If the change is deliberate, regenerate with "
        "SOTTO_UPDATE_VISUAL_REFS=1 and commit the PNGs:\n" + "\n".join(failures)
    )


def test_axe_finds_no_serious_or_critical_issue_on_any_page(site: Site) -> None:
    problems = [f"{v.name}: {issue}" for v in site.visits for issue in v.violations]
    assert not problems, "\n".join(problems)


def test_the_comparison_catches_a_moved_block(tmp_path: Path) -> None:
    """The tolerance lets antialiasing and one-pixel rasterisation shifts through, not a layout change."""
    base = np.full((300, 200, 3), 255, dtype=np.uint8)
    base[40:60, 20:180] = (31, 95, 191)
    moved = base.copy()
    moved[40:60], moved[50:70] = 255, (31, 95, 191)
    recoloured = base.copy()
    recoloured[40:60, 20:180] = (191, 31, 31)
    nudged = np.roll(base, 1, axis=1)  # one pixel to the right: how another CPU's hinting looks after halving
    noisy = np.clip(base.astype(int) + np.random.default_rng(1).integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
    paths = {}
    for name, array in (("base", base), ("moved", moved), ("recoloured", recoloured), ("nudged", nudged), ("noisy", noisy)):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(array).save(paths[name])
    assert _compare(paths["noisy"], paths["base"]) is None
    assert _compare(paths["nudged"], paths["base"]) is None
    for changed in ("moved", "recoloured"):
        why = _compare(paths[changed], paths["base"])
        assert why and "pixels changed" in why, changed
    assert SENTENCES  # the editor page shows the four fixed sentences


def test_the_footer_theme_choice_overrides_the_system_and_is_remembered(site: Site, browser: Any) -> None:
    context = browser.new_context(viewport=SIZES["phone"], color_scheme="light")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    background = "() => getComputedStyle(document.body).backgroundColor"
    page.goto(site.url + "/privacy")
    assert page.evaluate(background) == "rgb(255, 255, 255)" and page.input_value("#theme-pick") == "system"
    page.select_option("#theme-pick", "dark")
    assert page.evaluate(background) == "rgb(22, 24, 28)"
    page.goto(site.url + "/login")  # another page, same browser: still dark, before any script of the page ran
    assert page.get_attribute("html", "data-theme") == "dark" and page.evaluate(background) == "rgb(22, 24, 28)"
    assert page.input_value("#theme-pick") == "dark"
    page.select_option("#theme-pick", "system")
    assert page.get_attribute("html", "data-theme") is None and page.evaluate(background) == "rgb(255, 255, 255)"
    assert page.evaluate("() => localStorage.getItem('sotto-theme')") is None
    assert not errors, errors  # the strict CSP allowed the theme script (this context does not bypass it)
    context.close()
