"""Single sign-on: the button's start (off to the provider) and the provider's callback (a session, then
on to where the person was going). Browser routes, so failures lead back to the sign-in page with a
notice; the audit log holds the reason. And the provider's back-channel logout (server to server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body, FromQuery
from litestar.response import Redirect

from appliance.app.oidc_sign_in import LogoutRefused, SignInRefused
from appliance.directory.oidc import ProviderUnavailable
from appliance.web import factors_api
from appliance.web.auth import _address_key, failed_attempt
from appliance.web.i18n import N_
from appliance.web.offload import off_loop
from appliance.web.pages import local_path

OPT = {"public": True, "throttle": "password"}
NO_STORE = {"Cache-Control": "no-store"}  # the spec asks it of the logout endpoint's answers


def _blocked(request: Request[Any, Any, Any]) -> None:
    """The per-address window of failed sign-ins also closes this path (GETs pass the guard's check)."""
    limiter = request.app.state.services.address_limiter
    retry = limiter.blocked(_address_key(request, "password")) if limiter else None
    if retry is not None:
        raise HTTPException(
            status_code=429,
            detail=N_("Too many failed attempts from your address. Please wait a minute."),
            headers={"Retry-After": str(retry)},
        )


def _oidc(request: Request[Any, Any, Any]) -> Any:
    oidc = request.app.state.services.oidc
    if oidc is None or not oidc.enabled:
        raise HTTPException(status_code=404, detail=N_("Single sign-on is not set up on this appliance."))
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
        user, identity, next_path = oidc.finish(db, state, code, ip=ip)
    except SignInRefused:
        failed_attempt(request)
        return Redirect("/login?sso=failed", status_code=303)
    except ProviderUnavailable:
        return Redirect("/login?sso=unavailable", status_code=303)
    _, session, cookie = factors_api.new_session(request, user, second_factor=None, via="oidc")
    oidc.remember(db, session.id, identity)
    return Redirect(local_path(next_path) if next_path else "/", status_code=303, cookies=[cookie])


@dataclass
class BackchannelLogout:
    logout_token: str = ""


# Refused tokens count in the per-address window: a flood of forged ones (each may make the appliance
# fetch the provider's keys again, for a new kid) is cut off; the provider's own calls do not fail.
@post("/auth/oidc/backchannel-logout", opt=OPT, status_code=200, include_in_schema=False)
@off_loop
def oidc_backchannel_logout(
    request: Request[Any, Any, Any], data: Annotated[BackchannelLogout, Body(media_type=RequestEncodingType.URL_ENCODED)]
) -> Response[dict[str, Any]]:
    """The provider ends sessions here (its own sign-out, an administrator's there): a form-encoded
    logout token; 200 when it holds, 400 with the reason when not (OpenID Connect Back-Channel Logout 1.0)."""
    oidc = _oidc(request)
    ip = request.client.host if request.client else None
    try:
        ended = oidc.backchannel_logout(request.app.state.services.databases.get(), data.logout_token, ip=ip)
    except LogoutRefused as exc:
        failed_attempt(request)
        return Response({"error": "invalid_request", "error_description": str(exc)}, status_code=400, headers=NO_STORE)
    except ProviderUnavailable:
        return Response(
            {"error": "temporarily_unavailable", "error_description": "the provider's keys cannot be fetched"},
            status_code=503,
            headers=NO_STORE,
        )
    return Response({"sessions_ended": ended}, headers=NO_STORE)


ROUTES = [oidc_start, oidc_callback, oidc_backchannel_logout]
