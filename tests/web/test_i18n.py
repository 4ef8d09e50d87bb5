"""The UI's languages: complete catalogs, the choice of language (person, cookie, browser, operator),
and dates, numbers and sizes formatted for each language."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from babel import Locale

from appliance.core.config import UI_LANGUAGES
from appliance.transcription import admission
from appliance.web import errors, i18n, i18n_catalogs
from tests.support import ADMIN_EMAIL, REPO, Member, Scenario, settings_in, signed_in

HTML = {"Accept": "text/html"}


def test_the_configured_languages_are_the_catalogs_languages() -> None:
    assert tuple(i18n.LANGUAGES) == UI_LANGUAGES
    for code in UI_LANGUAGES:
        Locale.parse(code)  # a locale Babel knows, so dates and numbers can be formatted for it


@pytest.mark.parametrize("code", [c for c in UI_LANGUAGES if c != "en"])
def test_every_catalog_is_complete(code: str) -> None:
    """No untranslated or fuzzy message, and every translation keeps its placeholders (a lost
    %(days)s would show a wrong page; an extra one would crash it)."""
    assert i18n_catalogs.missing(code) == []


def test_the_committed_templates_are_what_the_code_marks() -> None:
    """A string marked in a template, in Python or in a script but not extracted (scripts/i18n-update
    not run) would never reach a translator: the committed .pot must list exactly what the code marks."""
    for domain in i18n.DOMAINS:
        extracted = {m.id for m in i18n_catalogs.extract(domain) if m.id}
        committed = {m.id for m in i18n_catalogs.read(i18n.LOCALES_DIR / f"{domain}.pot") if m.id}
        assert extracted == committed, (sorted(map(str, extracted - committed))[:5], sorted(map(str, committed - extracted))[:5])


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("zh-CN,zh;q=0.9", "zh_Hans"),
        ("zh-TW", "zh_Hans"),  # closer to a Chinese reader than English
        ("pt-PT,pt;q=0.9", "pt_BR"),
        ("pt-BR", "pt_BR"),
        ("sv-SE,fr;q=0.5,de;q=0.7", "de"),  # by q-value, not by order
        ("ar-EG", "ar"),
        ("sv-SE", None),
        ("", None),
        ("de;q=0", None),
    ],
)
def test_accept_language(header: str, wanted: str | None) -> None:
    assert i18n.from_accept_language(header, i18n.LANGUAGES) == wanted


def test_formats_follow_the_locale() -> None:
    moment = "2026-12-03T14:05:00+00:00"
    assert i18n.when(moment, i18n.LANGUAGES["en"].locale) == "3 Dec 2026, 14:05"
    assert i18n.when(moment, Locale.parse("de")) == "03.12.2026, 14:05"
    assert "2026年12月3日" in i18n.when(moment, Locale.parse("zh_Hans"))
    assert i18n.number(1234567, Locale.parse("de")) == "1.234.567"
    assert i18n.number(1234567, Locale.parse("fr")).replace("\u202f", " ") == "1 234 567"
    assert i18n.filesize(2_147_483_648, i18n.LANGUAGES["en"].locale) == "2.1 GB"
    assert i18n.filesize(2_147_483_648, Locale.parse("de")).startswith("2,1")
    assert i18n.duration(3900, i18n.LANGUAGES["en"].locale) == "1 hr 5 mins"  # en_GB's CLDR units
    assert i18n.duration(42, Locale.parse("fr")).startswith("42")
    assert i18n.language_name("bn", Locale.parse("en")) == "Bangla" or i18n.language_name("bn", Locale.parse("en")) == "Bengali"
    assert i18n.language_name("de", Locale.parse("de")) == "Deutsch"


def test_pseudo_locale_marks_text_and_keeps_placeholders() -> None:
    assert i18n.pseudo("Page %(page)s of %(pages)s") == "⟦Pàgé %(page)s öf %(pages)s⟧"
    assert "<strong>" in i18n.pseudo("<strong>Note:</strong> {name}") and "{name}" in i18n.pseudo("{name}")


@dataclass(frozen=True)
class Appliance:
    url: str
    admin: Member
    transcript_id: str  # a two-speaker meeting of the admin's, with a note on the transcript


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    root: Path = tmp_path_factory.mktemp("i18n")
    scenario = Scenario(settings_in(root, APPLIANCE_UI__DEFAULT_LANGUAGE="fr"))
    admin = scenario.person(ADMIN_EMAIL, "admin", "admin")
    meeting = scenario.meeting(admin, [("S1", "Good morning everyone"), ("S2", "Thank you for coming today")])
    scenario.db["transcripts"].update(meeting, {"note": "Figures to check"})
    with scenario.serve() as server:
        yield Appliance(server.url, admin, meeting)
    scenario.close()


@pytest.fixture(scope="module")
def served(appliance: Appliance) -> str:
    return appliance.url


def test_the_browser_language_else_the_operator_default(served: str) -> None:
    german = httpx.get(f"{served}/login", headers={**HTML, "Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="de" dir="ltr">' in german.text and "Anmelden" in german.text
    unknown = httpx.get(f"{served}/login", headers={**HTML, "Accept-Language": "sv-SE"})
    assert '<html lang="fr"' in unknown.text and "Se connecter" in unknown.text  # ui.default_language
    arabic = httpx.get(f"{served}/privacy", headers={**HTML, "Accept-Language": "ar"})
    assert '<html lang="ar" dir="rtl">' in arabic.text and "الخصوصية" in arabic.text


def test_the_sign_in_page_selector_sets_a_cookie(served: str) -> None:
    with httpx.Client(base_url=served) as browser:
        login = browser.get("/login", headers={**HTML, "Accept-Language": "en"})
        assert 'action="/language"' in login.text and 'lang="bn"' in login.text  # every language, named in itself
        chosen = browser.get("/language", params={"to": "gu", "next": "/login?next=%2Fsearch"})
        assert chosen.status_code == 302 and chosen.headers["location"] == "/login?next=%2Fsearch"
        assert "sotto_lang=gu" in chosen.headers["set-cookie"] and "SameSite=lax" in chosen.headers["set-cookie"]
        assert '<html lang="gu"' in browser.get("/login", headers={**HTML, "Accept-Language": "en"}).text
        # Not a language, or a link that would leave the appliance: the cookie stays, the redirect stays home.
        odd = browser.get("/language", params={"to": "xx", "next": "//evil.example/"})
        assert odd.headers["location"] == "/" and "set-cookie" not in odd.headers


def test_a_persons_choice_wins_and_follows_them(served: str) -> None:
    with closing(signed_in(served)) as alice:
        assert alice.put("/api/v1/me/language", json={"language": "tlh"}).status_code == 400
        saved = alice.put("/api/v1/me/language", json={"language": "ja"})
        assert saved.status_code == 200 and "sotto_lang=ja" in saved.headers["set-cookie"]
        assert alice.get("/api/v1/me").json()["user"]["language"] == "ja"
        # An API error a person reads in the page comes in their language too.
        refused = alice.put("/api/v1/me/language", json={"language": "tlh"})
        assert refused.status_code == 400 and refused.json()["detail"] == "本アプライアンスで使える言語ではありません。"
        alice.cookies.delete("sotto_lang")  # the account's choice, not the cookie, decides
        page = alice.get("/account", headers={**HTML, "Accept-Language": "de"})
        assert '<html lang="ja"' in page.text and "アカウント" in page.text
        assert '<option value="ja" lang="ja" selected>日本語</option>' in page.text
        # The browser scripts get the same language: the catalog script the page names.
        script = page.text.split('<script src="/i18n/')[1].split('"')[0]
        assert script.startswith("ja-")
        served_script = alice.get(f"/i18n/{script}")
        assert served_script.status_code == 200 and "window.SOTTO_I18N" in served_script.text
        assert served_script.headers["content-type"].startswith("text/javascript")
        assert alice.put("/api/v1/me/language", json={"language": None}).status_code == 200
        assert '<html lang="de"' in alice.get("/account", headers={**HTML, "Accept-Language": "de"}).text


def test_error_pages_speak_the_persons_language(served: str) -> None:
    page = httpx.get(f"{served}/no/such/page", headers={**HTML, "Accept-Language": "es"})
    assert page.status_code == 404 and "Página no encontrada" in page.text and 'lang="es"' in page.text


def test_the_operators_notice_in_the_readers_language(tmp_path: Path) -> None:
    notice = tmp_path / "privacy.txt"
    notice.write_text("Recordings of calls are kept by the call centre, not here.\n\nComplaints: the works council.")
    (tmp_path / "privacy.de.txt").write_text("Gesprächsaufnahmen bewahrt das Callcenter auf, nicht diese Appliance.")
    scenario = Scenario(settings_in(tmp_path, APPLIANCE_PRIVACY__NOTICE_FILE=str(notice)))
    with scenario.serve() as server:
        german = httpx.get(f"{server.url}/privacy", headers={**HTML, "Accept-Language": "de"}).text
        assert "Gesprächsaufnahmen" in german and "call centre" not in german and '<div id="privacy-own" lang="de">' in german
        # No Japanese text: the file itself, marked as the default language's so the browser reads it right.
        japanese = httpx.get(f"{server.url}/privacy", headers={**HTML, "Accept-Language": "ja"}).text
        assert "Complaints: the works council." in japanese and '<div id="privacy-own" lang="en">' in japanese
        assert "sotto_lang" in japanese  # the cookie list names the language cookie, in every language
    scenario.close()


def _pdf_text(content: bytes, tmp_path: Path) -> str:
    path = tmp_path / "export.pdf"
    path.write_bytes(content)
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _docx_text(content: bytes) -> str:
    from docx import Document

    word = Document(io.BytesIO(content))
    cells = [cell.text for table in word.tables for row in table.rows for cell in row.cells]
    return "\n".join([p.text for p in word.paragraphs] + cells)


def test_exports_carry_labels_in_the_readers_language(appliance: Appliance, tmp_path: Path) -> None:
    """A person's export: headings, labels, dates and the language's name in their language (the
    transcript's own words untouched); the page's export links name the page's language; a program
    with an API key gets the English it always had unless it asks."""
    export = f"/api/v1/transcripts/{appliance.transcript_id}/export"
    with closing(signed_in(appliance.url)) as alice:
        assert alice.put("/api/v1/me/language", json={"language": "de"}).status_code == 200
        try:
            pdf = _pdf_text(alice.get(export, params={"format": "pdf"}).content, tmp_path)
            for label in ("Dauer: ", "Sprache: Englisch", "Modell: tiny.en", "Sprecher: Speaker 1, Speaker 2", "Notiz: Figures"):
                assert label in pdf, label
            assert "Beiträge" in pdf and "Unterbrechungen" in pdf and "Good morning everyone" in pdf
            assert "Duration" not in pdf and "Language" not in pdf and "turns" not in pdf
            created = alice.get(export, params={"format": "json"}).json()["created_at"]
            assert f"Erstellt: {i18n.when(created, Locale.parse('de'))}" in pdf  # 04.12.2026, 10:49
            docx = _docx_text(alice.get(export, params={"format": "docx"}).content)
            for label in ("Transkript", "Sprecher", "Redezeit", "Anteil", "Längster Beitrag", "Dauer", "Notiz"):
                assert label in docx, label
            assert "Transcript" not in docx and "Talk time" not in docx
            assert "**Dauer:**" in alice.get(export, params={"format": "md"}).text
            assert alice.get(export, params={"format": "txt"}).text.startswith("Notiz: Figures to check")
            assert alice.get(export, params={"format": "csv"}).text.startswith("Beginn,Ende,Sprecher,Text,Notiz\r\n")
            # The link's lang= wins over the account's language: a Chinese reader's copy.
            chinese = alice.get(export, params={"format": "pdf", "lang": "zh_Hans"})
            text = _pdf_text(chinese.content, tmp_path)
            assert "时长" in text and "语言" in text and "英语" in text and "备注" in text and "Dauer" not in text
            docx_zh = _docx_text(alice.get(export, params={"format": "docx", "lang": "zh-Hans"}).content)
            assert "转写稿" in docx_zh and "发言时长" in docx_zh and "说话人" in docx_zh
            # Bad input: a clear refusal, in the person's language of the page rather than a file.
            refused = alice.get(export, params={"format": "pdf", "lang": "tlh"})
            assert refused.status_code == 400 and "tlh" in refused.json()["detail"] and "zh_Hans" in refused.json()["detail"]
            # The transcript page's export links carry the page's language.
            page = alice.get(f"/t/{appliance.transcript_id}", headers=HTML).text
            assert f'href="{export}?format=pdf&amp;lang=de"' in page
        finally:
            alice.put("/api/v1/me/language", json={"language": None})
    with httpx.Client(base_url=appliance.url, headers={"Authorization": f"Bearer {appliance.admin.key}"}) as program:
        md = program.get(export, params={"format": "md"}).text
        assert "- **Duration:**" in md and "- **Language:** en" in md
        assert program.get(export, params={"format": "csv"}).text.startswith("start,end,speaker,text,note\r\n")
        assert "**Dauer:**" in program.get(export, params={"format": "md", "lang": "de"}).text
        link = program.post(f"/api/v1/transcripts/{appliance.transcript_id}/shares", json={"formats": ["txt", "md"]}).json()
    # A share link's visitor has no account: the page's language (here the browser's), on its export links too.
    with httpx.Client(base_url=appliance.url, headers={"Accept-Language": "ja"}) as visitor:
        page = visitor.get(link["path"], headers=HTML).text
        assert f'href="{link["path"]}/export?format=md&amp;lang=ja"' in page
        assert "- **長さ:**" in visitor.get(f"{link['path']}/export", params={"format": "md", "lang": "ja"}).text
        assert "- **Dauer:**" in visitor.get(f"{link['path']}/export", params={"format": "md", "lang": "de"}).text


# ---- the browser scripts' messages: a static check with Babel's JavaScript lexer ----

STATIC = REPO / "appliance" / "web" / "static"
# A document's data, not the page's text (file name without its version, then the literal as written):
# private-ops writes into a private transcript the same English speaker labels and default title that
# appliance/transcripts/editing.py writes into a standard one.
DATA = {("private-ops", "`Speaker ${key.slice(1)}`"), ("private-ops", '"Transcript"')}
# sotto-crypto's refusals are diagnostics with a `code` the pages decide on (a page says "Wrong passphrase",
# not the library's "wrong key, or the envelope was altered"); it is shared with the node tests as it is.
NOT_UI = ("sotto-crypto-",)

_LETTERS = r"[^\W\d_]"
_TWO_WORDS = re.compile(rf"{_LETTERS}{{2,}}\S*\s+\S*{_LETTERS}")  # "Send a test", "no expiry"
_CAPITALISED = re.compile(rf"^[A-Z]{_LETTERS}+[.…!?]*$")  # "Locked", "Delete" (only where it is shown)
# Code, not prose: a directive, CSS class lists, selectors, paths, URLs, media types.
_CODE = re.compile(
    r"^(use strict|[a-z0-9]+(-[a-z0-9]+)+( [a-z0-9-]+)*|[a-z0-9-]+( [a-z0-9]+(-[a-z0-9]+)+)+)$|^[/#.\[]|://|^[\w.+-]+/[\w.+;=-]+$"
)
# Where a single word is shown: assigned to these properties or given to these functions.
_SINKS = {"textContent", "innerText", "title", "placeholder", "alert", "confirm", "prompt", "say", "showState", "ask", "label"}
# Calls whose string arguments are never read by a person (selectors, events, URLs, storage keys...).
_NOT_TEXT_CALLS = {
    "console", "log", "warn", "error", "debug", "querySelector", "querySelectorAll", "getElementById", "closest", "matches",
    "addEventListener", "removeEventListener", "createElement", "add", "remove", "toggle", "contains", "getAttribute",
    "removeAttribute", "hasAttribute", "fetch", "api", "URL", "encode", "EventSource", "CustomEvent", "importKey", "get",
    "has", "delete", "set", "append", "startsWith", "endsWith", "includes", "split", "replace", "getItem", "setItem", "removeItem",
}  # fmt: skip
_NOT_TEXT_PROPERTIES = {
    "className",
    "href",
    "download",
    "type",
    "name",
    "id",
    "src",
    "hash",
    "method",
    "mode",
    "accept",
    "lang",
    "dir",
}
_COMPARISONS = {"==", "!=", "===", "!=="}


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def unmarked_messages(source: str, marked: set[str]) -> Iterator[tuple[int, str]]:
    """The string and template literals of a script that a person reads but that are not given to t():
    two or more words, or one capitalised word put on the page; `marked` are messages already in the
    catalog (a script may look a message up by a variable, as revisions-0.2.js does)."""
    from babel.messages.jslexer import tokenize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Babel's extractor's own lexer: stable, but called internal
        tokens = [t for t in tokenize(source, jsx=False, dotted=True) if "comment" not in t.type]
    in_t_call = False  # t("…" + "…"): every piece of the concatenation is the message
    for i, token in enumerate(tokens):
        if token.type not in ("string", "template_string"):
            if token.value != "+":
                in_t_call = False
            continue
        before = [""] * 4 + [t.value for t in tokens[max(0, i - 4) : i]]
        after = [t.value for t in tokens[i + 1 : i + 3]] + ["", ""]
        call = _last(before[-2]) if before[-1] == "(" else None
        if call == "t" or (in_t_call and before[-1] == "+"):
            in_t_call = True
            continue
        in_t_call = False
        text = re.sub(r"\$\{[^}]*\}", "x", token.value[1:-1])
        comparison = before[-1] in _COMPARISONS or "".join(before[-2:]) in _COMPARISONS or after[0] in _COMPARISONS
        if (
            call in _NOT_TEXT_CALLS
            or (call == "setAttribute" and after[0] == ",")
            or comparison
            or before[-1] == "case"
            or (after[0] == ":" and before[-1] in ("{", ","))  # an object's key
            or (before[-1] == "=" and _last(before[-2]) in _NOT_TEXT_PROPERTIES)
            or _CODE.search(text.strip())
            or token.value[1:-1] in marked
        ):
            continue
        shown = any(_last(v) in _SINKS for v in before) and before[-1] in ("=", "(", ",", "?", ":", "||")
        if _TWO_WORDS.search(text) or (shown and _CAPITALISED.match(text)):
            yield token.lineno, token.value


def _script_messages() -> dict[tuple[str, str], str]:
    marked = {str(m.id) for m in i18n_catalogs.read(i18n.LOCALES_DIR / "js.pot") if m.id and isinstance(m.id, str)}
    found: dict[tuple[str, str], str] = {}
    for path in sorted(STATIC.rglob("*.js")):
        if path.name.startswith(NOT_UI):
            continue
        stem = re.sub(r"-\d+\.\d+\.js$", "", str(path.relative_to(STATIC)))
        for line, literal in unmarked_messages(path.read_text(encoding="utf-8"), marked):
            found.setdefault((stem, literal), f"{path.relative_to(STATIC)}:{line}")
    return found


def test_the_checker_tells_a_message_from_code() -> None:
    source = """
    const { t } = window.SottoI18n;
    el.className = "form-status error"; if (e.key === "Escape Key") return; "use strict";
    document.querySelector("#export-menu a[data-export]"); fetch(`/api/v1/jobs/${id}`); x.setAttribute("aria-label", t("New name"));
    status.textContent = t("Saved {time}", { time }); alert(t("Two words " + "joined"));
    state.textContent = "Loading…"; b.title = "Delete"; say(`Shared with ${email}`); const o = { "Some key": 1 };
    """
    assert [literal for _line, literal in unmarked_messages(source, set())] == [
        '"Loading…"',
        '"Delete"',
        "`Shared with ${email}`",
    ]


def test_every_message_a_person_reads_in_the_scripts_is_marked() -> None:
    """A message in a browser script must go through t() (then scripts/i18n-update and its translations)."""
    found = _script_messages()
    new = [f"{where}: {key[1]}" for key, where in found.items() if key not in DATA]
    assert not new, "mark these with t() (static/i18n-0.1.js), then run scripts/i18n-update:\n" + "\n".join(new)
    assert found.keys() >= DATA, "no longer in the scripts: delete from DATA:\n" + "\n".join(map(str, DATA - found.keys()))


# ---- API error details: a walk over the handlers' code ----

WEB = REPO / "appliance" / "web"


def unmarked_details(source: str, marked: set[str]) -> Iterator[tuple[int, str]]:
    """`detail=` texts written in the code of an exception that are not marked: an f-string, or a literal
    that is in no catalog. A marked one is N_("…") (found by scripts/i18n-update) or, with values in it,
    Detail(N_("… %(name)s …"), name=…); a detail passed on from elsewhere (str(exc)) is that code's."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if not (called.endswith("Exception") or called == "_error"):
            continue
        values = [k.value for k in node.keywords if k.arg == "detail"]
        if called == "_error" and len(node.args) >= 3:
            values.append(node.args[2])
        for value in values:
            if isinstance(value, ast.JoinedStr) or (
                isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value not in marked
            ):
                yield node.lineno, ast.unparse(value)


def _api_details() -> dict[tuple[str, str], str]:
    marked = {str(m.id) for m in i18n_catalogs.read(i18n.LOCALES_DIR / "messages.pot") if m.id and isinstance(m.id, str)}
    found: dict[tuple[str, str], str] = {}
    for path in sorted(WEB.glob("*.py")):
        for line, text in unmarked_details(path.read_text(encoding="utf-8"), marked):
            found.setdefault((path.name, text), f"appliance/web/{path.name}:{line}")
    return found


def test_the_detail_walker_tells_marked_from_unmarked() -> None:
    source = """
raise HTTPException(status_code=400, detail="Plain English.")
raise NotFoundException(detail=f"No job {job_id!r}.")
raise HTTPException(status_code=400, detail=N_("Marked."))
raise HTTPException(status_code=400, detail=Detail(N_("No job %(id)s."), id=job_id))
raise HTTPException(status_code=503, detail=str(exc))
raise HTTPException(status_code=403, detail="Already in the catalog.")
"""
    found = [text for _line, text in unmarked_details(source, {"Already in the catalog."})]
    assert found == ["'Plain English.'", "f'No job {job_id!r}.'"]


def test_every_api_error_detail_is_marked() -> None:
    """A new error message of the API must be marked (N_, or Detail for one with values in it) so a person
    reads it in their language."""
    found = [f"{where}: {text}" for (_module, text), where in _api_details().items()]
    assert not found, "mark these with N_() or Detail(N_(...), ...), then run scripts/i18n-update:\n" + "\n".join(found)


def test_api_errors_in_the_requesters_language(appliance: Appliance) -> None:
    """A person's error in their language, values filled in; the same error to an API key in English; a
    browser that is not signed in (the sign-in form) by its Accept-Language."""
    missing = "/api/v1/transcripts/nope/export"
    with closing(signed_in(appliance.url)) as alice:
        assert alice.put("/api/v1/me/language", json={"language": "de"}).status_code == 200
        try:
            refused = alice.get(missing)
            assert refused.status_code == 404 and refused.json()["detail"] == "Kein Transkript mit der ID 'nope'."
            bad = alice.get(f"/api/v1/transcripts/{appliance.transcript_id}/export", params={"lang": "xx"}).json()["detail"]
            assert bad.startswith("lang muss einer von en, zh_Hans, ") and "'xx' gehört nicht dazu." in bad
            no_key = alice.delete("/api/v1/apikeys/nope")  # one of the details marked by issue #21
            assert no_key.status_code == 404 and no_key.json()["detail"] == "Diesen Schlüssel gibt es nicht."
        finally:
            alice.put("/api/v1/me/language", json={"language": None})
    with httpx.Client(base_url=appliance.url, headers={"Authorization": f"Bearer {appliance.admin.key}"}) as program:
        english = program.get(missing, headers={"Accept-Language": "de"})
        assert english.status_code == 404 and english.json()["detail"] == "No transcript with id 'nope'."
        assert program.delete("/api/v1/apikeys/nope", headers={"Accept-Language": "de"}).json()["detail"] == "No such key."
    signed_out = httpx.get(f"{appliance.url}/api/v1/me", headers={"Accept-Language": "ja"})
    assert signed_out.status_code == 401
    assert signed_out.json()["detail"] == "サインインするか、API キーを 'Authorization: Bearer <key>' として送ってください。"
    plain = httpx.get(f"{appliance.url}/api/v1/me").json()["detail"]  # no browser, no language: English
    assert plain == "Sign in, or send an API key as 'Authorization: Bearer <key>'."


def test_details_marked_away_from_the_handler_are_translated_whole() -> None:
    """`require_fresh(..., Detail(N_("Creating an API key")))`: the sentence is German, not half English; a
    queue refusal is marked where admission refuses and translated with its count. English for programs."""
    german = i18n.Catalogs().translations("de")
    refused = i18n.Detail(
        i18n.N_("%(what)s needs a signed-in session: this account has a second factor."),
        what=i18n.Detail(i18n.N_("Creating an API key")),
    )
    assert refused == "Creating an API key needs a signed-in session: this account has a second factor."
    assert (
        i18n.translate_detail(refused, german)
        == "Das Erstellen eines API-Schlüssels erfordert eine angemeldete Sitzung: Dieses Konto hat einen zweiten Faktor."
    )
    full = admission.Refused(
        429, admission.N_("You already have %(count)s jobs waiting or running. Please wait for one to finish."), count=2
    )
    detail = errors.as_http(full, retry_after=5).detail
    assert detail == "You already have 2 jobs waiting or running. Please wait for one to finish."
    assert (
        i18n.translate_detail(detail, german)
        == "Sie haben bereits 2 Aufträge, die warten oder laufen. Bitte warten Sie, bis einer fertig ist."
    )


def test_an_invitation_in_the_invitees_language(appliance: Appliance) -> None:
    """The inviter's choice, else the appliance's default (fr here); a language the appliance lacks is
    refused before anything is made; the link's language is the invitation page's and the new account's."""
    with httpx.Client(base_url=appliance.url, headers={"Authorization": f"Bearer {appliance.admin.key}"}) as admin:
        refused = admin.post("/api/v1/invites", json={"email": "erin@example.org", "language": "tlh"})
        assert refused.status_code == 400 and refused.json()["detail"] == "That is not one of the languages of this appliance."
        default = admin.post("/api/v1/invites", json={"email": "erin@example.org"}).json()
        assert default["language"] == "fr" and default["path"].startswith("/invite?lang=fr#")
        assert (
            default["message"].startswith("Vous êtes invité à rejoindre Sotto")
            and f"{appliance.url}{default['path']}" in default["message"]
        )
        chinese = admin.post("/api/v1/invites", json={"email": "frank@example.org", "language": "zh_Hans"}).json()
        assert chinese["message"].startswith("您受邀使用 Sotto") and "有效期 72 小时" in chinese["message"]
    with httpx.Client(base_url=appliance.url) as invitee:
        page = invitee.get(chinese["path"].split("#")[0], headers={**HTML, "Accept-Language": "de"})
        assert '<html lang="zh-Hans"' in page.text and "sotto_lang=zh_Hans" in page.headers["set-cookie"]
        token = chinese["path"].split("#")[1]
        made = invitee.post("/api/v1/invites/accept", json={"token": token, "password": "a long new password"})
        assert made.status_code == 201 and made.json()["language"] == "zh_Hans"
