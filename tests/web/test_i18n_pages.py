"""Every page in a real Chromium, in the pseudo-language en_XA (each translated string bracketed and
accented): any visible English left is text nobody marked for translation. Then the main pages in every
language at laptop and phone size: no horizontal overflow, no clipped button text, Arabic mirrored.
Screenshots go to test-artifacts/screenshots/i18n/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.core.config import UI_LANGUAGES
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, Scenario, settings_in

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots" / "i18n"
TEXT = "Quarterly planning with the regional team about budgets"
SIZES = {"1366": (1366, 768), "390": (390, 844)}

# What a page shows that is data, not UI text: people's names and addresses, the transcript, file and
# model names, product and format names, and dates and times formatted by Babel.
DATA = [
    ADMIN_EMAIL,
    *TEXT.split(),
    "planning.wav",
    "tiny.en",
    "Sotto",
    "Legal",
    "Speaker 1",
    "tests",
    "English",
    "embedded",
    "pyannote",
    "channel",
]
FORMATS = ["TXT", "SRT", "VTT", "DOCX", "JSON", "PDF", "CSV", "Markdown", "Word", "HTTPS", "API", "OpenAI", "UTC", "MB", "GB"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

# Visible text of the rendered DOM: text nodes of visible elements, and the attributes people meet
# (placeholder, title, aria-label, value of buttons); <code>, <kbd>, <time> and anything with its own
# lang (the language selector's names, the operator's paragraphs) are data.
COLLECT = """() => {
  const out = [];
  const skip = (el) => el.closest('code, kbd, time, script, style, [lang]:not(html), .w, #t-title, .seg-text, .spk-name, .seg-spk');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement, text = n.textContent.trim();
    if (!text || !el || skip(el) || !el.checkVisibility({ visibilityProperty: true })) continue;
    out.push(text);
  }
  for (const el of document.querySelectorAll('[placeholder], [title], [aria-label], input[type=submit], input[type=button]')) {
    if (skip(el)) continue;
    for (const a of ['placeholder', 'title', 'aria-label', 'value']) {
      const v = el.getAttribute(a);
      if (v && (a !== 'value' || el.matches('input[type=submit], input[type=button]'))) out.push(v.trim());
    }
  }
  out.push(document.title);
  return out;
}"""


def untranslated(texts: list[str]) -> list[str]:
    """Texts with a word of plain English in them. Word by word, because a translated sentence with
    markup in it is several text nodes (only the first has the opening bracket); every pseudo-translated
    word of three letters or more carries an accent, data is taken out first."""
    left = []
    data = sorted(DATA + FORMATS, key=len, reverse=True)
    for text in texts:
        rest = text
        for token in data:
            rest = rest.replace(token, " ")
        rest = re.sub(r"\b(" + "|".join(MONTHS) + r")\b", " ", rest)
        if any(re.fullmatch(r"[A-Za-z]{3,}", word) for word in re.findall(r"[^\W\d_]+", rest)):
            left.append(text)
    return left


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("pages")
    scenario = Scenario(settings_in(root, APPLIANCE_UI__PSEUDO_LOCALE="true"))
    alice = scenario.person(ADMIN_EMAIL, "admin", "admin")
    scenario.workspace("Legal", alice)
    transcript = scenario.transcript(alice, TEXT, filename="planning.wav", speaker="S1")
    with scenario.serve() as server:
        yield {"url": server.url, "transcript": transcript}
    scenario.close()


def signed_in_page(browser: Any, url: str, language: str, size: tuple[int, int]) -> Any:
    """A page of a context signed in as alice with `language` chosen on her account."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="en-GB")
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{url}/")
    csrf = page.get_attribute("meta[name=csrf-token]", "content")
    page.evaluate(
        """([lang, csrf]) => fetch('/api/v1/me/language', {method: 'PUT', headers: {'Content-Type': 'application/json',
        'X-CSRF-Token': csrf}, body: JSON.stringify({language: lang})})""",
        [language, csrf],
    )
    return page


SIGNED_OUT = ["/login", "/privacy", "/invite", "/s/no-such-link", "/no/such/page"]


def signed_in_paths(transcript: str) -> list[str]:
    return [
        "/",
        "/new",
        f"/t/{transcript}",
        "/search?q=budgets",
        "/account",
        "/account/second-factor",
        "/workspaces",
        "/voices",
        "/integrations",
        "/admin/users",
        "/admin/directory",
        "/admin/models",
        "/admin/license",
        "/admin/audit",
        "/no/such/page",
    ]


def test_every_page_in_the_pseudo_language_has_no_unmarked_english(site: dict[str, Any], browser: Any) -> None:
    url, found = site["url"], {}
    context = browser.new_context(locale="en-GB")
    context.add_cookies([{"name": "sotto_lang", "value": "en_XA", "url": url}])
    page = context.new_page()
    for path in SIGNED_OUT:
        page.goto(url + path, wait_until="networkidle")
        assert page.get_attribute("html", "lang") == "en-XA", path
        if left := untranslated(page.evaluate(COLLECT)):
            found[path] = left
    context.close()
    page = signed_in_page(browser, url, "en_XA", SIZES["1366"])
    for path in signed_in_paths(site["transcript"]):
        page.goto(url + path, wait_until="networkidle")
        if left := untranslated(page.evaluate(COLLECT)):
            found[path] = left
    page.context.close()
    # The whole list for whoever fixes it (pytest shortens long assertion messages).
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "untranslated.json").write_text(json.dumps(found, ensure_ascii=False, indent=1))
    assert found == {}, found


def test_the_checker_finds_unmarked_text() -> None:
    """The pseudo-language check is only worth something if it fails on English."""
    assert untranslated(["⟦Sàvé⟧", "Quarterly", "3 Dec 2026, 14:05", "tiny.en · Saved"]) == ["tiny.en · Saved"]
    assert untranslated(["⟦Pàgé 1 öf 2⟧ · 25 transcripts"]) == ["⟦Pàgé 1 öf 2⟧ · 25 transcripts"]
    assert untranslated(["Thé àpplîàñçé⟧", "öñ thîš"]) == []  # the rest of a sentence split by markup


LAYOUT = """() => {
  const wide = document.documentElement.scrollWidth > window.innerWidth + 1;
  const clipped = [...document.querySelectorAll('button, a.button, summary')].filter((b) =>
    b.checkVisibility() && (b.scrollWidth > b.clientWidth + 1 || b.scrollHeight > b.clientHeight + 2) &&
    getComputedStyle(b).overflow !== 'visible').map((b) => b.textContent.trim());
  const nav = document.querySelector('header.top nav'), brand = document.querySelector('header.top .brand');
  // The header and its menu: every link, button and control inside the window (a long word in German or
  // Bengali must wrap to a new line, not run off the edge where the document's own width cannot show it).
  const outside = [...document.querySelectorAll('header.top a, header.top button, header.top select, header.top summary')]
    .filter((el) => el.checkVisibility()).filter((el) => {
      const r = el.getBoundingClientRect();
      return r.left < -1 || r.right > window.innerWidth + 1 || el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflow !== 'visible';
    }).map((el) => el.textContent.trim());
  return { wide, clipped, outside, dir: document.documentElement.dir,
           brandRight: brand ? brand.getBoundingClientRect().right : 0,
           navLeft: nav ? nav.getBoundingClientRect().left : 0, width: window.innerWidth };
}"""


@pytest.mark.parametrize("language", UI_LANGUAGES)
def test_main_pages_in_every_language_fit_and_mirror(site: dict[str, Any], browser: Any, language: str) -> None:
    url, problems = site["url"], []
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size_name, size in SIZES.items():
        page = signed_in_page(browser, url, language, size)
        for name, path in [
            ("library", "/"),
            ("new", "/new"),
            ("editor", f"/t/{site['transcript']}"),
            ("account", "/account"),
            ("privacy", "/privacy"),
        ]:
            page.goto(url + path, wait_until="load")
            if name == "editor":
                page.wait_for_function("() => window.SottoEditor")  # the editor's module has mounted
            page.evaluate("document.fonts.ready.then(() => true)")
            page.screenshot(path=str(SHOTS / f"{name}-{language}-{size_name}.png"), full_page=False)
            got = page.evaluate(LAYOUT)
            if got["wide"]:
                problems.append(f"{name} {size_name}: wider than the window")
            if got["clipped"]:
                problems.append(f"{name} {size_name}: clipped {got['clipped']}")
            if got["outside"]:
                problems.append(f"{name} {size_name}: header items outside the window {got['outside']}")
            if language == "ar":
                # Mirrored: right to left, the brand at the right edge and the nav to its left.
                assert got["dir"] == "rtl" and got["brandRight"] > got["width"] * 0.8, (name, size_name, got)
            else:
                assert got["dir"] == "ltr" and got["brandRight"] < got["width"] * 0.5, (name, size_name, got)
        page.context.close()
    assert problems == [], problems


@pytest.mark.parametrize(("language", "family"), [("zh_Hans", "Noto Sans CJK SC"), ("ja", "Noto Sans CJK JP")])
def test_chinese_and_japanese_pages_draw_han_with_their_own_cjk_font(
    site: dict[str, Any], browser: Any, language: str, family: str
) -> None:
    """No tofu, and the right Han forms: the fonts Chromium actually drew the page's heading with (DevTools'
    CSS.getPlatformFontsForNode) are the language's CJK face from the stylesheet's stack, not a box font
    and not the other language's face."""
    page = signed_in_page(browser, site["url"], language, SIZES["390"])
    try:
        page.goto(site["url"] + "/account", wait_until="load")
        page.evaluate("document.fonts.ready.then(() => true)")
        heading = page.inner_text("h1")
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", heading), heading  # the heading is in Han (or kana)
        cdp = page.context.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "h1"})["nodeId"]
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        drawn = {f["familyName"]: f["glyphCount"] for f in fonts}
        assert max(drawn, key=drawn.__getitem__) == family, drawn
    finally:
        page.context.close()


def test_signed_out_catalog_script_is_the_language_of_the_cookie(site: dict[str, Any]) -> None:
    page = httpx.get(f"{site['url']}/login", cookies={"sotto_lang": "en_XA"}).text
    script = page.split('<script src="/i18n/')[1].split('"')[0]
    body = httpx.get(f"{site['url']}/i18n/{script}").text
    assert script.startswith("en_XA-") and "⟦Šîgñîñg îñ…⟧" in body
