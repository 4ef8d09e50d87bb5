"""Single sign-on: the button's start (off to the provider) and the provider's callback (a session, then
on to where the person was going). Browser routes, so failures lead back to the sign-in page with a
notice; the audit log holds the reason."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.exceptions import HTTPException
from litestar.params import FromQuery
from litestar.response import Redirect

from appliance.app.oidc_sign_in import SignInRefused
from appliance.directory.oidc import ProviderUnavailable
from appliance.web import factors_api
from appliance.web.auth import _address_key, failed_attempt
from appliance.web.offload import off_loop
from appliance.web.pages import local_path

OPT = {"public": True, "throttle": "password"}


def _blocked(request: Request[Any, Any, Any]) -> None:
    """The per-address window of failed sign-ins also closes this path (GETs pass the guard's check)."""
    limiter = request.app.state.services.address_limiter
    retry = limiter.blocked(_address_key(request, "password")) if limiter else None
    if retry is not None:
        raise HTTPException(
            status_code=429,
            detail="Too many failed attempts from your address. Please wait a minute.",
            headers={"Retry-After": str(retry)},
        )


def _oidc(request: Request[Any, Any, Any]) -> Any:
    oidc = request.app.state.services.oidc
    if oidc is None or not oidc.enabled:
        raise HTTPException(status_code=404, detail="Single sign-on is not set up on this appliance.")
    return oidc


@get("/auth/oidc/start", opt=OPT, include_in_schema=False)
@off_loop
def oidc_start(request: Request[Any, Any, Any], next: FromQuery[str] = "/", fresh: FromQuery[bool] = False) -> Redirect:
    """`fresh`: the provider asks for the password again (the step-up before a sensitive change)."""
    oidc = _oidc(request)
    _blocked(request)
    try:
        return Redirect(oidc.begin(request.app.state.services.databases.get(), local_path(next), fresh=fresh), status_code=303)
    except SignInRefused:
        return Redirect("/login?sso=unlicensed", status_code=303)
    except ProviderUnavailable:
        return Redirect("/login?sso=unavailable", status_code=303)


@get("/auth/oidc/callback", opt=OPT, include_in_schema=False)
@off_loop
def oidc_callback(request: Request[Any, Any, Any], code: FromQuery[str] = "") -> Redirect:
    oidc = _oidc(request)
    state = request.query_params.get("state", "")  # ("state" is a reserved parameter name in Litestar)
    _blocked(request)
    db = request.app.state.services.databases.get()
    ip = request.client.host if request.client else None
    try:
        user, id_token, next_path = oidc.finish(db, state, code, ip=ip)
    except SignInRefused:
        failed_attempt(request)
        return Redirect("/login?sso=failed", status_code=303)
    except ProviderUnavailable:
        return Redirect("/login?sso=unavailable", status_code=303)
    _, session, cookie = factors_api.new_session(request, user, second_factor=None, via="oidc")
    oidc.remember(db, session.id, id_token)
    return Redirect(local_path(next_path) if next_path else "/", status_code=303, cookies=[cookie])


ROUTES = [oidc_start, oidc_callback]
