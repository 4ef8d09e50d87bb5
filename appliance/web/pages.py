"""HTML pages of the account and privacy issue: first-run setup and the privacy statement."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from appliance.accounts import audit
from appliance.accounts import users as accounts
from appliance.web import layout
from appliance.web.auth import failed_attempt
from appliance.web.offload import off_loop


@get("/privacy", opt={"public": True}, include_in_schema=False)
@off_loop
def privacy_page(request: Request[Any, Any, Any]) -> Template:
    settings = request.app.state.services.settings
    return layout.page(request, "privacy.html", layout.signed_in(request), settings=settings, own_notice=own_notice(settings))


def own_notice(settings: Any) -> list[str]:
    """The operator's own paragraphs (privacy.notice_file), as text: blank lines separate them."""
    path = settings.privacy.notice_file
    if not path:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return []
    return [" ".join(block.split()) for block in text.split("\n\n") if block.strip()]


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
    if deleted:
        notice = "Your account and everything it owned were deleted."
    elif joined:
        notice = "Your account is ready: sign in with your e-mail address and the password you chose."
    # With a directory, people sign in with their directory user name (or e-mail): the field takes either.
    services = request.app.state.services
    directory = bool(services.settings.ldap.url)
    sso = request.query_params.get("sso", "")
    error = SSO_NOTICES.get(sso, "")
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
    "failed": "Single sign-on did not complete, or your account may not use this appliance. Ask your administrator.",
    "unavailable": "The single sign-on provider cannot be reached. Please try again later.",
    "unlicensed": "Single sign-on is not included in this appliance's licence.",
}


@get("/invite", opt={"public": True}, include_in_schema=False)
@off_loop
def invite_page(request: Request[Any, Any, Any]) -> Template:
    """Where an invitation link leads (/invite#token: the token stays in the browser, out of logs)."""
    return Template("invite.html", context={})


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
            "setup.html", context={"error": "That setup code is not right. It is in the appliance's log.", "email": email}
        )
    try:
        user = accounts.create(db, email, data.get("password", ""), "admin")
    except accounts.AccountError as exc:
        return Template("setup.html", context={"error": str(exc), "email": email})
    services.setup_code = None
    audit.record(db, "user.created", actor="setup", target=user.email, detail={"role": "admin"})
    return Template("setup.html", context={"done": True, "email": user.email})


ROUTES = [privacy_page, login_page, invite_page, setup_page, setup_submit]
