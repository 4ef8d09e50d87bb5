"""Keeping the UI's catalogs in step with the code (scripts/i18n-update runs this; so does the
completeness test, to see that the committed templates are current).

    messages.pot  templates ({{ _("…") }}, {% trans %}) and Python (_("…"), N_("…"), gettext, ngettext)
    js.pot        the browser scripts' t("…") calls

Each language's .po is updated from them without fuzzy guesses (a changed English text is a new
message that needs a translator, not a silently wrong old translation).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from appliance.web.i18n import DOMAINS, LANGUAGES, LOCALES_DIR

PACKAGE = Path(__file__).resolve().parents[1]  # appliance/
# Fixed dates: the files change only when their messages do.
EPOCH = datetime(2026, 12, 1, tzinfo=UTC)
WIDTH = 100

PYTHON_KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
JS_KEYWORDS = {"t": None}


def _methods(domain: str) -> tuple[list[tuple[str, str]], dict[str, dict[str, str]]]:
    if domain == "js":
        return [("web/static/**.js", "javascript")], {}
    return (
        [("web/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")],
        {"web/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true", "newstyle_gettext": "true"}},
    )


def extract(domain: str) -> Catalog:
    """The domain's template catalog, from the source as it is now."""
    catalog = Catalog(project="Sotto", domain=domain, creation_date=EPOCH, revision_date=EPOCH, fuzzy=False)
    method_map, options_map = _methods(domain)
    keywords = JS_KEYWORDS if domain == "js" else PYTHON_KEYWORDS
    for filename, lineno, message, comments, context in extract_from_dir(
        str(PACKAGE), method_map, options_map, keywords=keywords, comment_tags=("Translators:",), strip_comment_tags=True
    ):
        catalog.add(message, None, [(f"appliance/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, width=WIDTH, omit_header=False, ignore_obsolete=True, include_lineno=False)


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def update(languages: Iterable[str] = LANGUAGES, directory: Path = LOCALES_DIR) -> None:
    for domain in DOMAINS:
        template = extract(domain)
        _write(directory / f"{domain}.pot", template)
        for code in languages:
            if code == "en":
                continue  # English is the source text
            path = directory / code / "LC_MESSAGES" / f"{domain}.po"
            catalog = read(path, code) if path.exists() else Catalog(locale=code, domain=domain, fuzzy=False)
            catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
            catalog.creation_date = catalog.revision_date = EPOCH
            catalog.project, catalog.fuzzy = "Sotto", False
            _write(path, catalog)


def missing(code: str, directory: Path = LOCALES_DIR) -> list[str]:
    """What a language lacks: untranslated or fuzzy messages, or a placeholder the translation lost."""
    problems: list[str] = []
    for domain in DOMAINS:
        template = read(directory / f"{domain}.pot")
        path = directory / code / "LC_MESSAGES" / f"{domain}.po"
        if not path.exists():
            return [f"{path.name}: no catalog"]
        catalog = read(path, code)
        for message in template:
            if not message.id:
                continue
            found = catalog.get(message.id, context=message.context)
            label = f"{domain}: {message.id if isinstance(message.id, str) else message.id[0]!r}"
            if found is None or not found.string or (isinstance(found.string, tuple) and not all(found.string)):
                problems.append(f"{label}: untranslated")
            elif found.fuzzy:
                problems.append(f"{label}: fuzzy")
            else:
                problems.extend(f"{label}: {error}" for error in _placeholders(message.id, found.string))
    return problems


def _placeholders(msgid: object, msgstr: object) -> list[str]:
    import re

    pattern = re.compile(r"%\([a-z_]+\)[sd]|\{[a-z_0-9]+\}")
    source = msgid if isinstance(msgid, str) else " ".join(msgid)  # type: ignore[arg-type]
    targets = [msgstr] if isinstance(msgstr, str) else list(msgstr)  # type: ignore[call-overload]
    wanted = set(pattern.findall(source))
    errors = []
    for target in targets:
        got = set(pattern.findall(str(target)))
        # A plural form may leave the number out ("one file"), never add an unknown name.
        if got - wanted or (isinstance(msgid, str) and got != wanted):
            errors.append(f"placeholders {sorted(got)} instead of {sorted(wanted)}")
    return errors


def main(argv: list[str]) -> int:
    update()
    incomplete = {code: len(missing(code)) for code in LANGUAGES if code != "en"}
    for code, count in incomplete.items():
        print(f"{code}: {'complete' if not count else f'{count} messages to translate'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
