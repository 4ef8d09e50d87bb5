"""The UI's languages: complete catalogs, the choice of language (person, cookie, browser, operator),
and dates, numbers and sizes formatted for each language."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import httpx
import pytest
from babel import Locale

from appliance.core.config import UI_LANGUAGES
from appliance.web import i18n, i18n_catalogs
from tests.support import ADMIN_EMAIL, Scenario, settings_in, signed_in

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


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root: Path = tmp_path_factory.mktemp("i18n")
    scenario = Scenario(settings_in(root, APPLIANCE_UI__DEFAULT_LANGUAGE="fr"))
    scenario.person(ADMIN_EMAIL, "admin", "admin")
    with scenario.serve() as server:
        yield server.url
    scenario.close()


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
