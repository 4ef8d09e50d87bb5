"""Licence administration: status, activation request, install; the admin page; the user limit."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.params import JSONBody
from litestar.response import Redirect, Template

from appliance.accounts import audit
from appliance.accounts import users as accounts
from appliance.licensing.licence import FingerprintError, LicenseError
from appliance.licensing.store import ClockCorrectionRefused
from appliance.web import layout
from appliance.web.auth import principal_of
from appliance.web.i18n import N_, Detail
from appliance.web.offload import off_loop

MAX_LICENSE_BYTES = 64 * 1024


class ActivationRequest(msgspec.Struct):
    license_key: str


def _licenses(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.services.licenses


@get(
    "/api/v1/license",
    opt={"scope": "admin"},
    tags=["license"],
    summary="Licence state, days left, features, limits",
)
@off_loop
def license_status(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return _licenses(request).state().as_dict()


@post(
    "/api/v1/license/request",
    opt={"scope": "admin"},
    tags=["license"],
    summary="Make an activation request file",
)
@off_loop
def license_request(request: Request[Any, Any, Any], data: JSONBody[ActivationRequest]) -> Response[str]:
    try:
        made = _licenses(request).request(data.license_key)
    except (LicenseError, FingerprintError) as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    audit.record(request.app.state.services.databases.get(), "license.requested", actor=principal_of(request).user.email)
    return Response(
        json.dumps(made, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="activation-request.json"'},
    )


@post(
    "/api/v1/license",
    opt={"scope": "admin"},
    tags=["license"],
    summary="Install a licence file (the armored text as the body)",
    status_code=200,
    request_max_body_size=MAX_LICENSE_BYTES,
)
async def license_install(request: Request[Any, Any, Any]) -> dict[str, Any]:
    text = (await request.body()).decode("utf-8", "replace")
    return await request.app.state.services.databases.in_thread(lambda _db: _install(request, text))


def _install(request: Request[Any, Any, Any], text: str) -> dict[str, Any]:
    try:
        state = _licenses(request).install(text)
    except LicenseError as exc:
        raise HTTPException(status_code=400, detail=str(exc), extra={"code": exc.code}) from None
    except FingerprintError as exc:
        raise HTTPException(status_code=400, detail=str(exc), extra={"code": "fingerprint"}) from None
    audit.record(
        request.app.state.services.databases.get(),
        "license.installed",
        actor=principal_of(request).user.email,
        detail={"state": state.state, "license_id": state.license_id},
    )
    return state.as_dict()


class ClockCorrection(msgspec.Struct):
    # The administrator types the date and time they read from a trusted clock; it must agree with the
    # server's clock (within 10 minutes), so the confirmation is about the clock being right now.
    confirm_now: str


@post(
    "/api/v1/license/clock",
    opt={"scope": "admin"},
    tags=["license"],
    status_code=200,
    summary="Confirm the clock is right after it had run ahead (restarts the clock mark; audited)",
)
@off_loop
def license_clock(request: Request[Any, Any, Any], data: JSONBody[ClockCorrection]) -> dict[str, Any]:
    licenses = _licenses(request)
    try:
        made = licenses.correct_clock(data.confirm_now)
    except ClockCorrectionRefused as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    audit.record(
        request.app.state.services.databases.get(), "license.clock_corrected", actor=principal_of(request).user.email, detail=made
    )
    return {**made, "license": licenses.state().as_dict()}


@get("/admin/license", opt={"public": True}, include_in_schema=False)
@off_loop
def license_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    # A page, not an API: send a signed-out browser to sign in rather than answer with JSON.
    principal = request.state.get("principal")
    if principal is None:
        return Redirect("/login?next=/admin/license")
    if principal.scope != "admin":
        raise PermissionDeniedException(detail=N_("Only administrators manage the licence."))
    return layout.page(request, "license.html", layout.signed_in(request))


def check_user_limit(services: Any) -> None:
    """The licence's max_users, if any: creating one more account is refused with the reason."""
    limit = services.licenses.limit("max_users")
    if limit and accounts.count(services.databases.get()) >= limit:
        raise HTTPException(
            status_code=403,
            detail=Detail(N_("The licence allows %(limit)s users; this appliance has reached it."), limit=limit),
            extra={"code": "user_limit"},
        )


ROUTES = [license_status, license_request, license_install, license_clock, license_page]
