"""HTML pages of the account and privacy issue: first-run setup and the privacy statement."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from appliance.accounts import audit
from appliance.accounts import users as accounts
from appliance.web import i18n, layout
from appliance.web.auth import failed_attempt
from appliance.web.i18n import N_
from appliance.web.offload import off_loop


@get("/privacy", opt={"public": True}, include_in_schema=False)
@off_loop
def privacy_page(request: Request[Any, Any, Any]) -> Template:
    settings = request.app.state.services.settings
    language = i18n.chosen(request)
    paragraphs, written_in = own_notice(settings, language.code)
    return layout.page(
        request,
        "privacy.html",
        layout.signed_in(request),
        settings=settings,
        own_notice=paragraphs,
        own_notice_lang=i18n.LANGUAGES.get(written_in, language).tag,
    )


def own_notice(settings: Any, language: str = "en") -> tuple[list[str], str]:
    """The operator's own paragraphs (privacy.notice_file) in the page's language, and the language
    they are in. A translation sits beside the file with the language before the extension
    (privacy.txt, privacy.de.txt, privacy.zh_Hans.txt); without one, the file itself (taken to be the
    default language's). Blank lines separate paragraphs."""
    path = settings.privacy.notice_file
    if not path:
        return [], settings.ui.default_language
    base = Path(path)
    for candidate, written_in in (
        (base.with_name(f"{base.stem}.{language}{base.suffix}"), language),
        (base, settings.ui.default_language),
    ):
        try:
            text = candidate.read_text(encoding="utf-8")
        except OSError:
            continue
        return [" ".join(block.split()) for block in text.split("\n\n") if block.strip()], written_in
    return [], settings.ui.default_language


@get("/language", opt={"public": True}, include_in_schema=False)
@off_loop
def choose_language(request: Request[Any, Any, Any], to: FromQuery[str] = "", next: FromQuery[str] = "/login") -> Redirect:
    """The sign-in page's language selector (a plain form, no script): remember the choice in a cookie
    and go back. Only a language code is stored, so a forged link can do no more than change it."""
    catalogs: i18n.Catalogs = request.app.state.i18n
    code = catalogs.accept(to)
    redirect = Redirect(local_path(next))
    if code is not None:
        redirect.cookies.append(i18n.cookie(request, code, i18n.COOKIE_MAX_AGE))
    return redirect


@get("/i18n/{name:str}", opt={"public": True}, include_in_schema=False)
@off_loop
def catalog_script(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[str]:
    """The browser scripts' messages in one language, as a script that sets window.SOTTO_I18N.
    Its name carries a digest of its content (/i18n/de-<digest>.js), so it is cached for a year."""
    catalogs: i18n.Catalogs = request.app.state.i18n
    code, _, rest = name.rpartition("-")
    if catalogs.accept(code) is None or rest != f"{catalogs.script_version(code)}.js":
        raise NotFoundException()
    return Response(
        catalogs.script(code),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


# The script fonts the UI needs and a client machine may lack, served from the image's Noto fonts (the
# same files the PDF export embeds). CJK comes as a font collection browsers cannot load as a web font:
# Chinese and Japanese readers' systems have their own.
WEB_FONTS = (
    "NotoSansArabic-Regular.ttf",
    "NotoSansBengali-Regular.ttf",
    "NotoSansDevanagari-Regular.ttf",
    "NotoSansGujarati-Regular.ttf",
)


@get("/fonts/{name:str}", opt={"public": True}, include_in_schema=False)
@off_loop
def web_font(name: FromPath[str]) -> Response[bytes]:
    from appliance.transcripts.exports.document_formats import FONT_DIRS

    if name in WEB_FONTS:
        for folder in FONT_DIRS:
            if (folder / name).is_file():
                return Response(
                    (folder / name).read_bytes(),
                    media_type="font/ttf",
                    headers={"Cache-Control": "public, max-age=31536000, immutable"},
                )
    raise NotFoundException()


@get("/login", opt={"public": True}, include_in_schema=False)
@off_loop
def login_page(
    request: Request[Any, Any, Any], next: FromQuery[str] = "/", deleted: FromQuery[str] = "", joined: FromQuery[str] = ""
) -> Template | Redirect:
    services = request.app.state.services
    if services.setup_code is not None:
        if not accounts.count(services.databases.get()):  # no account exists yet: nobody could sign in
            return Redirect("/setup")
        # An account was made another way while the server ran (the CLI): setup is over. Without this,
        # /login sent people to /setup and /setup back to /login, forever.
        services.setup_code = None
    notice = ""
    tr = i18n.translations(request)
    if deleted:
        notice = tr.gettext("Your account and everything it owned were deleted.")
    elif joined:
        notice = tr.gettext("Your account is ready: sign in with your e-mail address and the password you chose.")
    # With a directory, people sign in with their directory user name (or e-mail): the field takes either.
    services = request.app.state.services
    directory = bool(services.settings.ldap.url)
    sso = request.query_params.get("sso", "")
    error = tr.gettext(SSO_NOTICES[sso]) if sso in SSO_NOTICES else ""
    oidc = services.oidc.name if services.oidc is not None and services.oidc.enabled else None
    return Template(
        "login.html",
        context={
            "next": local_path(next),
            "notice": notice,
            "directory": directory,
            "oidc": oidc,
            "sso_error": error,
        },
    )


SSO_NOTICES = {
    "failed": N_("Single sign-on did not complete, or your account may not use this appliance. Ask your administrator."),
    "unavailable": N_("The single sign-on provider cannot be reached. Please try again later."),
    "unlicensed": N_("Single sign-on is not included in this appliance's licence."),
}


@get("/invite", opt={"public": True}, include_in_schema=False)
@off_loop
def invite_page(request: Request[Any, Any, Any], lang: FromQuery[str] = "") -> Template:
    """Where an invitation link leads (/invite?lang=de#token: the token stays in the browser, out of logs).
    The link's language, chosen by the inviter, is the page's and is kept in the language cookie, so the
    account the page makes and the sign-in after it speak it too."""
    catalogs: i18n.Catalogs = request.app.state.i18n
    code = catalogs.accept(lang) if lang else None
    if code is None:
        return Template("invite.html", context={})
    request.state.ui_language = catalogs.languages[code]
    return Template("invite.html", context={}, cookies=[i18n.cookie(request, code, i18n.COOKIE_MAX_AGE)])


def local_path(target: str) -> str:
    """`target` if it can only mean a path on this appliance, else "/". Browsers read a backslash as a
    slash, so "/\\evil.example" is "//evil.example", another host; control characters are dropped by
    them too. So: one leading slash, then no backslash or control character anywhere."""
    from urllib.parse import urlsplit

    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


@get("/setup", opt={"public": True}, include_in_schema=False)
@off_loop
def setup_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    if accounts.count(request.app.state.services.databases.get()):
        return Redirect("/login")  # set up already: the way in is signing in
    return Template("setup.html", context={})


@post("/setup", opt={"public": True, "throttle": "password"}, include_in_schema=False, status_code=200)
@off_loop
def setup_submit(
    request: Request[Any, Any, Any], data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
) -> Template | Redirect:
    services = request.app.state.services
    db = services.databases.get()
    if accounts.count(db) or services.setup_code is None:
        return Redirect("/login")
    email = data.get("email", "")
    if not hmac.compare_digest(data.get("setup_code", "").strip(), services.setup_code):
        failed_attempt(request)
        return Template(
            "setup.html", context={"error": N_("That setup code is not right. It is in the appliance's log."), "email": email}
        )
    try:
        user = accounts.create(db, email, data.get("password", ""), "admin")
    except accounts.AccountError as exc:
        return Template("setup.html", context={"error": str(exc), "email": email})
    services.setup_code = None
    audit.record(db, "user.created", actor="setup", target=user.email, detail={"role": "admin"})
    return Template("setup.html", context={"done": True, "email": user.email})


ROUTES = [privacy_page, choose_language, catalog_script, web_font, login_page, invite_page, setup_page, setup_submit]
