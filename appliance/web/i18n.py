"""The UI's languages: gettext catalogs (appliance/web/locales), which language a request gets, and
formatting of dates, numbers, durations and sizes for it.

Catalogs are `.po` files compiled in memory when the app is built (no `.mo` files in the repository or
on disk: a clean clone, a read-only container and the tests all read the same source). Two domains:
`messages` for templates and Python, `js` for the browser scripts' messages, served to the page as a
small script (`/i18n/<language>-<version>.js`) so no inline script is needed under the CSP.

How a request's language is chosen: the signed-in person's preference (users.language), else the
`sotto_lang` cookie (set by the selector on the sign-in page or the account page), else the browser's
Accept-Language, else the operator's `ui.default_language`.
"""

from __future__ import annotations

import gettext
import hashlib
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_time
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.units import format_unit
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from litestar import Request
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException

from appliance.transcripts.exports import ENGLISH, Reader

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAINS = ("messages", "js")
COOKIE = "sotto_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
PSEUDO = "en_XA"


@dataclass(frozen=True)
class Language:
    code: str  # the catalog's directory name, and what users.language and the cookie hold
    tag: str  # BCP 47, for <html lang> and the browser's Intl
    name: str  # in its own language, for the selector

    @property
    def rtl(self) -> bool:
        return self.code != PSEUDO and Locale.parse(self.code).character_order == "right-to-left"

    @property
    def locale(self) -> Locale:
        """The locale dates and numbers are formatted in. English pages use British conventions
        (3 Dec 2026, 14:05), as the UI's English text does ("licence")."""
        return Locale.parse("en_GB" if self.code in ("en", PSEUDO) else self.code)


# The order of the selector. Simplified Chinese is zh_Hans (CLDR's name for it; zh-CN maps to it).
LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "en", "English"),
        Language("zh_Hans", "zh-Hans", "简体中文"),
        Language("bn", "bn", "বাংলা"),
        Language("gu", "gu", "ગુજરાતી"),
        Language("hi", "hi", "हिन्दी"),
        Language("es", "es", "Español"),
        Language("fr", "fr", "Français"),
        Language("de", "de", "Deutsch"),
        Language("pt_BR", "pt-BR", "Português (Brasil)"),
        Language("ja", "ja", "日本語"),
        Language("ar", "ar", "العربية"),
    )
}
_PSEUDO_LANGUAGE = Language(PSEUDO, "en-XA", "[Ƥšéûðö]")


def _compile(catalog: Catalog) -> gettext.GNUTranslations:
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)  # a fuzzy entry is a guess: it shows the English instead
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


_PSEUDO_MAP = str.maketrans("aceinosuyACEINOSUY", "àçéîñöšûýÀÇÉÎÑÖŠÛÝ")
_PLACEHOLDER = re.compile(r"(%\([a-z_]+\)s|%s|%d|\{[a-z_0-9]*\}|<[^>]*>|&[a-z]+;)")


def pseudo(text: str) -> str:
    """⟦Ŝîĝñ îñ⟧: every translated string visibly marked, placeholders and markup kept as they are."""
    parts = _PLACEHOLDER.split(text)
    return "⟦" + "".join(p if _PLACEHOLDER.fullmatch(p) else p.translate(_PSEUDO_MAP) for p in parts) + "⟧"


def _pseudo_catalog(template: Catalog) -> Catalog:
    catalog = Catalog(locale="en", domain=template.domain)
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, tuple | list):
            catalog.add(message.id, tuple(pseudo(str(i)) for i in message.id))
        else:
            catalog.add(message.id, pseudo(message.id))
    return catalog


class Catalogs:
    """Every language's compiled catalogs, read once; `pseudo` adds the en_XA test language."""

    def __init__(self, *, pseudo_locale: bool = False, directory: Path = LOCALES_DIR) -> None:
        self.languages = dict(LANGUAGES)
        if pseudo_locale:
            self.languages[PSEUDO] = _PSEUDO_LANGUAGE
        self._gettext: dict[str, gettext.NullTranslations] = {}
        self._js: dict[str, dict[str, str]] = {}
        for code in self.languages:
            self._gettext[code] = gettext.NullTranslations()  # English: the msgid is the text
            self._js[code] = {}
            if code == "en":
                continue
            for domain in DOMAINS:
                if code == PSEUDO:
                    with (directory / f"{domain}.pot").open("rb") as f:
                        catalog = _pseudo_catalog(read_po(f))
                else:
                    path = directory / code / "LC_MESSAGES" / f"{domain}.po"
                    if not path.exists():
                        continue
                    with path.open("rb") as f:
                        catalog = read_po(f, locale=code)
                if domain == "js":
                    self._js[code] = {
                        str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy and isinstance(m.id, str)
                    }
                else:
                    self._gettext[code] = _compile(catalog)
        self._scripts = {code: self._script(code) for code in self.languages}

    def translations(self, code: str) -> gettext.NullTranslations:
        return self._gettext.get(code) or self._gettext["en"]

    def _script(self, code: str) -> str:
        lang = self.languages[code]
        data = {"lang": lang.tag, "dir": "rtl" if lang.rtl else "ltr", "messages": self._js.get(code, {})}
        # JSON in a script: '<' escaped so no text in a message can end the script element.
        payload = json.dumps(data, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")
        return f"window.SOTTO_I18N = {payload};\n"

    def script(self, code: str) -> str:
        return self._scripts.get(code) or self._scripts["en"]

    def script_version(self, code: str) -> str:
        """Part of the script's URL, so a browser cache never serves an older catalog."""
        return hashlib.sha256(self.script(code).encode()).hexdigest()[:12]

    def accept(self, code: str | None) -> str | None:
        """`code` if it names one of the UI's languages (user input: a cookie, a form field)."""
        return code if code in self.languages else None


def from_accept_language(header: str, available: dict[str, Language]) -> str | None:
    """The best of the UI's languages for an Accept-Language header, by its q-values: an exact
    region first (pt-BR), then the language alone (zh-TW and zh-CN both read Simplified Chinese better
    than English; pt-PT reads Brazilian Portuguese)."""
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            wanted.append((-q, index, tag.strip().replace("_", "-").lower()))
    by_tag = {lang.tag.lower(): code for code, lang in available.items() if code != PSEUDO}
    by_primary = {lang.tag.split("-")[0].lower(): code for code, lang in available.items() if code != PSEUDO}
    for _q, _i, asked in sorted(wanted):
        tag = "zh-hans" if asked in ("zh-cn", "zh-sg", "zh-hans-cn") else asked
        if tag in by_tag:
            return by_tag[tag]
        if tag.split("-")[0] in by_primary:
            return by_primary[tag.split("-")[0]]
    return None


def N_(message: str) -> str:
    """Marks a message for the catalogs where it is defined; it is translated where it is shown."""
    return message


class Detail(str):
    """An API error's message with values in it: the English text as a plain string (what a program, a log
    and an API key's caller get), and its marked template and values, so the error handler can give a
    person the translated template with the same values (`auth._error`).

        raise HTTPException(status_code=400, detail=Detail(N_("No job with id %(id)s."), id=repr(job_id)))
    """

    template: str
    values: dict[str, object]

    def __new__(cls, template: str, **values: object) -> Detail:
        made = super().__new__(cls, template % values if values else template)
        made.template, made.values = template, values
        return made


def translate_detail(detail: str, translations: gettext.NullTranslations) -> str:
    """An error's message in a language: a `Detail` by its template, any other text by itself (a message
    that is not in the catalogs stays as it is)."""
    if isinstance(detail, Detail):
        if not detail.values:
            return translations.gettext(detail.template)
        # A value that is itself a Detail is a marked phrase ("Creating an API key"): it is translated too,
        # so the sentence is not half English.
        values = {k: translate_detail(v, translations) if isinstance(v, Detail) else v for k, v in detail.values.items()}
        return translations.gettext(detail.template) % values
    return translations.gettext(detail)


# What the UI shows for the values the appliance stores in English (roles, key scopes, job states and
# stages, licence states, model tasks).
NAMES = {
    "admin": N_("admin"),
    "member": N_("member"),
    "viewer": N_("viewer"),
    "read": N_("read"),
    "transcribe": N_("transcribe"),
    "translate": N_("translate"),
    "queued": N_("queued"),
    "running": N_("running"),
    "done": N_("done"),
    "failed": N_("failed"),
    "cancelled": N_("cancelled"),
    "decoding": N_("converting"),
    "transcribing": N_("transcribing"),
    "diarizing": N_("identifying speakers"),
    "valid": N_("valid"),
    "expiring_soon": N_("expiring soon"),
    "grace": N_("grace period"),
    "evaluation": N_("evaluation"),
    "expired": N_("expired"),
    "not_yet_valid": N_("not yet valid"),
    "clock_tampered": N_("clock turned back"),
    "none": N_("no licence"),
    "invalid": N_("invalid"),
    "wrong_machine": N_("another machine's licence"),
    "missing": N_("missing"),
    # Cluster mode: a worker node's state (appliance/cluster/dispatcher.py).
    "ready": N_("ready"),
    "starting": N_("starting"),
    "draining": N_("draining"),
    "drained": N_("drained"),
    "down": N_("not connected"),
    "not issued": N_("no keys issued"),
    "unlicensed": N_("over the licence's GPU limit"),
}


# The licence states' messages as people read them, from the state and its days (the licensing package's
# own messages, with dates in them, stay the English the API and the logs report).
LICENCE_MESSAGES = {
    "valid": N_("The licence is valid."),
    "evaluation": N_("Evaluation copy: %(days)s days left. Activate a licence from the admin licence page."),
    "expiring_soon": N_("The licence expires in %(days)s days. Ask Sotto for a renewal."),
    "grace": N_("The licence has expired; new transcriptions stop in %(days)s days. Install a renewal."),
    "expired": N_(
        "The licence has expired. New transcriptions are paused; transcripts can still be read, edited, "
        "exported and deleted. Install a renewal."
    ),
    "clock_tampered": N_(
        "The system clock is behind the last time this appliance saw. New transcriptions are paused until "
        "the clock is corrected; everything else works."
    ),
    "none": N_(
        "No licence is installed and the evaluation has ended. Transcripts can still be read, edited, "
        "exported and deleted; activate a licence to transcribe again."
    ),
}


def licence_message(state: Any, translations: gettext.NullTranslations) -> str:
    template = LICENCE_MESSAGES.get(state.state)
    if template is None:
        return translations.gettext(state.message)
    return translations.gettext(template) % {"days": state.days_left if state.days_left is not None else 0}


# ---- formatting for a locale: one format per kind, everywhere ----


def when(iso: str | None, locale: Locale) -> str:
    """A moment: the locale's medium date and short time (4 Dec 2026, 14:05 / 2026年12月4日 14:05), UTC."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    pattern = str(locale.datetime_formats.get("medium", "{1}, {0}"))
    return pattern.replace("{1}", format_date(moment, "medium", locale=locale)).replace(
        "{0}", format_time(moment, "short", tzinfo=UTC, locale=locale)
    )


def day(iso: str | None, locale: Locale) -> str:
    if not iso:
        return ""
    return format_date(datetime.fromisoformat(iso.replace("Z", "+00:00")), "medium", locale=locale)


def clock(seconds: float | None) -> str:
    """1:02:03 or 02:03: a position in a recording, as media players show it in every locale."""
    total = int(seconds or 0)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def number(value: float | int | None, locale: Locale) -> str:
    return format_decimal(value or 0, locale=locale)


def duration(seconds: float | None, locale: Locale) -> str:
    """A length of time in words of the locale: 1 hr 5 min, 42 sec."""
    total = round(seconds or 0)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    parts = []
    if h:
        parts.append(format_unit(h, "duration-hour", length="short", locale=locale))
    if m or (h and s):
        parts.append(format_unit(m, "duration-minute", length="short", locale=locale))
    if not h and (s or not m):
        parts.append(format_unit(s, "duration-second", length="short", locale=locale))
    return " ".join(parts)


def filesize(size: int | None, locale: Locale) -> str:
    value = float(size or 0)
    for unit in ("byte", "kilobyte", "megabyte", "gigabyte"):
        if value < 1000 or unit == "gigabyte":
            break
        value /= 1000
    fmt = "#,##0" if unit == "byte" or value >= 100 else "#,##0.#"
    return format_unit(value, f"digital-{unit}", length="short", format=fmt, locale=locale)


def language_name(code: str | None, locale: Locale) -> str:
    """A spoken language's name (a transcript's language) in the UI's language."""
    if not code:
        return "—"
    try:
        name = Locale.parse(code).get_display_name(locale)
    except (ValueError, TypeError):
        return code
    return name or code


# ---- exports ----


def export_reader(catalogs: Catalogs, code: str) -> Reader:
    """An export's own words (headings, labels, the created date, the language's name) in a UI language.
    English keeps the exports programs have always had (ISO dates, language codes)."""
    if code == "en":
        return ENGLISH
    language = catalogs.languages[code]
    translations = catalogs.translations(code)
    return Reader(
        text=translations.gettext,
        pgettext=translations.pgettext,
        moment=lambda iso: when(iso, language.locale),
        language=lambda spoken: language_name(spoken, language.locale),
        localised=True,
        tag=language.tag,
    )


def reader_for(request: Request[Any, Any, Any]) -> Reader:
    """Whose language an export is in: the link's `lang=` (the UI puts the page's language on its export
    links), else a signed-in person's language (cookie and Accept-Language included, as the pages), else,
    for a program with an API key, English."""
    catalogs: Catalogs = request.app.state.i18n
    asked = request.query_params.get("lang")
    if asked is not None:
        code = catalogs.accept(asked.replace("-", "_"))
        if code is None:
            choices = ", ".join(c for c in catalogs.languages if c != PSEUDO)
            message = N_("lang must be one of %(choices)s; %(asked)s is not one of them.")
            raise HTTPException(status_code=400, detail=Detail(message, choices=choices, asked=repr(asked)))
        return export_reader(catalogs, code)
    principal = request.state.get("principal")
    if principal is not None and principal.via != "session":
        return ENGLISH
    return export_reader(catalogs, chosen(request).code)


# ---- Jinja ----


def chosen(request: Request[Any, Any, Any]) -> Language:
    """The request's UI language, worked out once per request (see the module's docstring)."""
    cached = request.state.get("ui_language")
    if cached is not None:
        return cached
    catalogs: Catalogs = request.app.state.i18n
    principal = request.state.get("principal")
    user = principal.user if principal is not None and principal.via == "session" else None
    code = (
        catalogs.accept(getattr(user, "language", None))
        or catalogs.accept(request.cookies.get(COOKIE))
        or from_accept_language(request.headers.get("accept-language", ""), catalogs.languages)
        or catalogs.accept(request.app.state.services.settings.ui.default_language)
        or "en"
    )
    language = catalogs.languages[code]
    request.state.ui_language = language
    return language


def cookie(request: Request[Any, Any, Any], code: str, max_age: int) -> Cookie:
    """The signed-out pages' memory of the chosen language (listed on /privacy). Not httponly: it holds
    no secret, only a language code."""
    return Cookie(key=COOKIE, value=code, samesite="lax", secure=request.url.scheme == "https", path="/", max_age=max_age)


def translations(request: Request[Any, Any, Any]) -> gettext.NullTranslations:
    """For Python code that builds text for a person (error pages, notices, exports)."""
    catalogs: Catalogs = request.app.state.i18n
    return catalogs.translations(chosen(request).code)


def _language(ctx: Context) -> Language:
    request = ctx.get("request")
    return LANGUAGES["en"] if request is None else chosen(request)


def _translations(ctx: Context) -> gettext.NullTranslations:
    request = ctx.get("request")
    return gettext.NullTranslations() if request is None else translations(request)


@pass_context
def _gettext(ctx: Context, message: str) -> str:
    return _translations(ctx).gettext(message)


@pass_context
def _ngettext(ctx: Context, singular: str, plural: str, n: int) -> str:
    return _translations(ctx).ngettext(singular, plural, n)


@pass_context
def _pgettext(ctx: Context, context: str, message: str) -> str:
    return _translations(ctx).pgettext(context, message)


def install(env: Environment) -> None:
    """Jinja's i18n extension with per-request translations (the request is in every page's context),
    and locale-aware formatting under the names the templates already used."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks' line breaks and indents are not part of the message
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True, pgettext=_pgettext)  # type: ignore[attr-defined]

    def loc(ctx: Context) -> Locale:
        return _language(ctx).locale

    @pass_context
    def name(ctx: Context, value: str | None) -> str:
        return _translations(ctx).gettext(NAMES[value]) if value in NAMES else (value or "")

    @pass_context
    def percent(ctx: Context, fraction: float | None) -> str:
        return format_percent(fraction or 0, locale=loc(ctx))

    env.globals.update(
        ui_language=pass_context(_language),
        when=pass_context(lambda ctx, iso: when(iso, loc(ctx))),
        day=pass_context(lambda ctx, iso: day(iso, loc(ctx))),
        clock=clock,
        number=pass_context(lambda ctx, v: number(v, loc(ctx))),
        duration=pass_context(lambda ctx, s: duration(s, loc(ctx))),
        filesize=pass_context(lambda ctx, b: filesize(b, loc(ctx))),
        language_name=pass_context(lambda ctx, code: language_name(code, loc(ctx))),
        licence_message=pass_context(lambda ctx, state: licence_message(state, _translations(ctx))),
        role_name=name,
        scope_name=name,
        state_name=name,
        percent=percent,
    )
