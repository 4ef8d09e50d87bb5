"""Second factors: the sign-in's second step, enrolment and removal of authenticator apps and passkeys,
recovery codes, fresh proof before sensitive changes, and the per-role requirement (admins)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, JSONBody

from appliance.accounts import audit, factors, passkeys, sessions
from appliance.accounts import users as accounts
from appliance.accounts.authz import Principal
from appliance.private import keys as private_keys
from appliance.web.auth import failed_attempt, principal_of
from appliance.web.i18n import N_, Detail
from appliance.web.offload import off_loop

ENROLMENT = {"credentials": True, "enrolment": True}


class SecondStep(msgspec.Struct):
    token: str
    code: str = ""  # a code from the authenticator app, or a recovery code


class PasskeyStep(msgspec.Struct):
    token: str
    credential: dict[str, Any]


class PendingToken(msgspec.Struct):
    token: str


class Code(msgspec.Struct):
    code: str


class PasswordAndCode(msgspec.Struct):
    password: str
    code: str


class Proof(msgspec.Struct):
    code: str = ""
    credential: dict[str, Any] | None = None  # a passkey's answer instead of a code


class NewPasskey(msgspec.Struct):
    credential: dict[str, Any]
    name: str = ""


class PasskeyName(msgspec.Struct):
    name: str


class PasswordOnly(msgspec.Struct):
    password: str


class Policy(msgspec.Struct):
    roles: list[str]


def _db(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.services.databases.get()


def _ip(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def relying_party(request: Request[Any, Any, Any]) -> passkeys.RelyingParty | None:
    """Passkeys as the settings configure them; None while no domain is set."""
    security = request.app.state.services.settings.security
    if not security.passkey_rp_id:
        return None
    origins = security.passkey_origins or (f"https://{security.passkey_rp_id}",)
    return passkeys.RelyingParty(security.passkey_rp_id, "Sotto", tuple(origins))


def _rp(request: Request[Any, Any, Any]) -> passkeys.RelyingParty:
    rp = relying_party(request)
    if rp is None:
        raise HTTPException(status_code=409, detail=N_("Passkeys are not set up on this appliance (security.passkey_rp_id)."))
    return rp


def methods(request: Request[Any, Any, Any], user_id: str) -> list[str]:
    """The second factors a user can sign in with, in the order the page offers them."""
    db = _db(request)
    found = []
    if factors.has_totp(db, user_id):
        found.append("totp")
    if passkeys.for_user(db, user_id) and relying_party(request) is not None:
        found.append("passkey")
    if factors.recovery_codes_left(db, user_id):
        found.append("recovery")
    return found


def session_cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> Cookie:
    return Cookie(
        key=sessions.COOKIE,
        value=value,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
        max_age=max_age,
    )


def start_session(
    request: Request[Any, Any, Any], user: accounts.User, *, second_factor: str | None, via: str = "password"
) -> Response[dict[str, Any]]:
    """A signed-in browser: a fresh session (any cookie planted before sign-in is worthless), audited.
    Every sign-in path ends here, so they all get the same timeouts and the same sign-out everywhere."""
    db = _db(request)
    _, session, cookie = new_session(request, user, second_factor=second_factor, via=via)
    return Response(
        {
            "user": user.public(),
            "csrf_token": session.csrf_token,
            "enrol_second_factor": factors.enrolment_needed(db, user),
        },
        cookies=[cookie],
    )


def new_session(
    request: Request[Any, Any, Any], user: accounts.User, *, second_factor: str | None, via: str
) -> tuple[str, sessions.Session, Cookie]:
    """The session every sign-in path ends with (any cookie planted before sign-in is worthless), audited."""
    db = _db(request)
    security = request.app.state.services.settings.security
    old = request.cookies.get(sessions.COOKIE)
    if old:
        previous = sessions.resolve(db, old, security.session_idle_minutes)
        if previous:
            sessions.end(db, previous.id)
    token, session = sessions.create(db, user.id, security.session_absolute_minutes, second_factor=second_factor is not None)
    detail = {"via": via, **({"second_factor": second_factor} if second_factor else {})}
    audit.record(db, "sign_in", actor=user.email, ip=_ip(request), detail=detail)
    return token, session, session_cookie(request, token, security.session_absolute_minutes * 60)


def _pending(request: Request[Any, Any, Any], token: str) -> accounts.User:
    db = _db(request)
    user_id = factors.pending_user(db, token)
    user = accounts.get(db, user_id) if user_id else None
    if user is None or user.disabled:
        # Not counted as a failed attempt: the token is 256 random bits, nothing to guess; the codes are.
        raise HTTPException(status_code=401, detail=N_("This sign-in has expired. Please sign in again with your password."))
    return user


def _second_step_failed(request: Request[Any, Any, Any], token: str, user: accounts.User, method: str) -> HTTPException:
    failed_attempt(request)
    factors.pending_failed(_db(request), token)
    audit.record(_db(request), "sign_in.second_factor_failed", actor=user.email, ip=_ip(request), detail={"method": method})
    return HTTPException(status_code=401, detail=N_("That code is not right. Please try again."))


@post(
    "/api/v1/auth/login/second-factor",
    opt={"public": True, "throttle": "password"},
    status_code=200,
    tags=["auth"],
    summary="Sign in, second step: a code from the authenticator app or a recovery code",
)
@off_loop
def login_code(request: Request[Any, Any, Any], data: JSONBody[SecondStep]) -> Response[dict[str, Any]]:
    user = _pending(request, data.token)
    db = _db(request)
    kind = factors.verify_code(db, user.id, data.code)
    if kind is None:
        # One field takes both; the audit log says which was tried (a recovery code is longer than 6).
        method = "recovery code" if len("".join((data.code or "").split())) > 6 else "authenticator code"
        raise _second_step_failed(request, data.token, user, method)
    if not factors.finish_pending(db, data.token):  # two requests racing with the same token: one wins
        raise HTTPException(status_code=401, detail=N_("This sign-in has expired. Please sign in again with your password."))
    return start_session(request, user, second_factor=kind)


@post(
    "/api/v1/auth/login/passkey-options",
    opt={"public": True, "throttle": "password"},
    status_code=200,
    tags=["auth"],
    summary="Sign in, second step: the challenge for a passkey",
)
@off_loop
def login_passkey_options(request: Request[Any, Any, Any], data: JSONBody[PendingToken]) -> dict[str, Any]:
    user = _pending(request, data.token)
    try:
        return passkeys.authentication_options(_db(request), _rp(request), user.id)
    except passkeys.PasskeyError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


@post(
    "/api/v1/auth/login/passkey",
    opt={"public": True, "throttle": "password"},
    status_code=200,
    tags=["auth"],
    summary="Sign in, second step: a passkey's answer",
)
@off_loop
def login_passkey(request: Request[Any, Any, Any], data: JSONBody[PasskeyStep]) -> Response[dict[str, Any]]:
    user = _pending(request, data.token)
    db = _db(request)
    try:
        passkeys.authenticate(db, _rp(request), user.id, data.credential)
    except passkeys.PasskeyError:
        raise _second_step_failed(request, data.token, user, "passkey") from None
    if not factors.finish_pending(db, data.token):
        raise HTTPException(status_code=401, detail=N_("This sign-in has expired. Please sign in again with your password."))
    return start_session(request, user, second_factor="passkey")


# --------------------------------------------------------------------------- my factors


def summary(request: Request[Any, Any, Any], principal: Principal) -> dict[str, Any]:
    db = _db(request)
    user_id = principal.user.id
    return {
        "totp": factors.has_totp(db, user_id),
        "passkeys": passkeys.for_user(db, user_id),
        "passkeys_available": relying_party(request) is not None,
        "recovery_codes_left": factors.recovery_codes_left(db, user_id),
        "required": principal.user.role in factors.required_roles(db),
        "fresh": is_fresh(request, principal),
    }


def is_fresh(request: Request[Any, Any, Any], principal: Principal) -> bool:
    """The session proved a second factor within security.second_factor_fresh_minutes."""
    stamp = principal.session.second_factor_at if principal.session else None
    if not stamp:
        return False
    minutes = request.app.state.services.settings.security.second_factor_fresh_minutes
    proved = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return datetime.now(UTC) - proved <= timedelta(minutes=minutes)


def require_fresh(request: Request[Any, Any, Any], principal: Principal, what: str) -> None:
    """For a user with a second factor: refuse unless this session proved it recently. An API key
    cannot prove one, so a key of such a user cannot do it at all. `what` is a Detail(N_("…")) so a person
    reads it in their language with the rest of the sentence."""
    if not factors.has_factor(_db(request), principal.user.id):
        return
    if principal.via != "session":
        raise PermissionDeniedException(
            detail=Detail(N_("%(what)s needs a signed-in session: this account has a second factor."), what=what)
        )
    if not is_fresh(request, principal):
        raise HTTPException(
            status_code=403,
            detail=Detail(N_("%(what)s needs your second factor again: confirm it with a code or a passkey."), what=what),
            extra={"code": "second_factor_required"},
        )


def _mark_fresh(request: Request[Any, Any, Any], principal: Principal) -> None:
    if principal.session:
        sessions.mark_second_factor(_db(request), principal.session.id)


@get("/api/v1/me/second-factors", opt={"enrolment": True}, tags=["account"], summary="My second factors")
@off_loop
def my_factors(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return summary(request, principal_of(request))


@post(
    "/api/v1/me/totp",
    opt=ENROLMENT,
    status_code=200,
    tags=["account"],
    summary="Start setting up an authenticator app: its secret, as text and as a QR code (SVG)",
)
@off_loop
def totp_start(request: Request[Any, Any, Any]) -> dict[str, Any]:
    principal = principal_of(request)
    _guard_adding(request, principal)
    try:
        enrolment = factors.start_totp(_db(request), principal.user)
    except factors.FactorError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return {"secret": enrolment.secret, "uri": enrolment.uri, "qr_svg": enrolment.qr_svg, "qr_data_uri": enrolment.qr_data_uri}


@post(
    "/api/v1/me/totp/confirm",
    opt={**ENROLMENT, "throttle": "second_factor"},
    status_code=200,
    tags=["account"],
    summary="Finish setting up the authenticator app with its first code; returns 10 recovery codes, shown once",
)
@off_loop
def totp_confirm(request: Request[Any, Any, Any], data: JSONBody[Code]) -> dict[str, Any]:
    principal = principal_of(request)
    try:
        codes = factors.confirm_totp(_db(request), principal.user.id, data.code)
    except factors.FactorError as exc:
        failed_attempt(request)
        raise HTTPException(status_code=400, detail=str(exc)) from None
    _mark_fresh(request, principal)
    audit.record(_db(request), "second_factor.totp_added", actor=principal.user.email, ip=_ip(request))
    return {"recovery_codes": codes}


SIGN_IN_AGAIN = (
    "Confirm it is you first: sign in again with your organisation's account (the button on your account page), "
    "then try again within a few minutes."
)


def fresh_sso_sign_in(request: Request[Any, Any, Any], principal: Principal) -> bool | None:
    """For a single sign-on account (no password here): whether this session signed in at the provider
    within security.second_factor_fresh_minutes. None for every other account."""
    services = request.app.state.services
    oidc = services.oidc
    db = _db(request)
    if oidc is None or not oidc.enabled or not oidc.owns(db, principal.user.id):
        return None
    minutes = services.settings.security.second_factor_fresh_minutes
    return principal.session is not None and bool(oidc.signed_in_within(db, principal.session.id, minutes))


def password_ok(request: Request[Any, Any, Any], principal: Principal, password: str) -> bool:
    """The account's sign-in password, wherever it is checked: here for local accounts, by the directory
    for directory accounts (whose local hash is of nothing anyone knows). A single sign-on account has
    none here: a fresh sign-in at its provider stands for it, and without one the answer is a 403 that
    says so (a "wrong password" would send the person looking for a password that does not exist)."""
    fresh = fresh_sso_sign_in(request, principal)
    if fresh is not None:
        if not fresh:
            raise HTTPException(status_code=403, detail=SIGN_IN_AGAIN, extra={"code": "fresh_sign_in_required"})
        return True
    db = _db(request)
    directory = request.app.state.services.directory
    if directory is not None and directory.enabled and not directory.handles_local(db, principal.user.id):
        return bool(directory.check_password(db, principal.user.id, password))
    return accounts.verify_password(db, principal.user.id, password, legacy=private_keys.LEGACY_SIGN_IN)


def _check_password_and_code(request: Request[Any, Any, Any], principal: Principal, password: str, code: str) -> str:
    db = _db(request)
    kind = factors.verify_code(db, principal.user.id, code) if password_ok(request, principal, password) else None
    if kind is None:
        failed_attempt(request)
        audit.record(db, "second_factor.check_failed", actor=principal.user.email, ip=_ip(request))
        raise HTTPException(status_code=400, detail=N_("The password or the code is not right."))
    return kind


@post(
    "/api/v1/me/totp/remove",
    opt={"credentials": True, "throttle": "second_factor"},
    status_code=200,
    tags=["account"],
    summary="Remove the authenticator app (needs the password and a current code or a recovery code)",
)
@off_loop
def totp_remove(request: Request[Any, Any, Any], data: JSONBody[PasswordAndCode]) -> dict[str, Any]:
    principal = principal_of(request)
    if not factors.has_totp(_db(request), principal.user.id):
        raise NotFoundException(detail=N_("No authenticator app is set up."))
    _check_password_and_code(request, principal, data.password, data.code)
    factors.remove_totp(_db(request), principal.user.id)
    audit.record(_db(request), "second_factor.totp_removed", actor=principal.user.email, ip=_ip(request))
    return {"removed": True}


@post(
    "/api/v1/me/recovery-codes",
    opt={"credentials": True, "throttle": "second_factor"},
    status_code=200,
    tags=["account"],
    summary="New recovery codes (the old ones stop working); needs the password and a current code",
)
@off_loop
def recovery_codes(request: Request[Any, Any, Any], data: JSONBody[PasswordAndCode]) -> dict[str, Any]:
    principal = principal_of(request)
    _check_password_and_code(request, principal, data.password, data.code)
    codes = factors.new_recovery_codes(_db(request), principal.user.id)
    audit.record(_db(request), "second_factor.recovery_codes_renewed", actor=principal.user.email, ip=_ip(request))
    return {"recovery_codes": codes}


@post(
    "/api/v1/me/second-factor/verify",
    opt={"credentials": True, "throttle": "second_factor"},
    status_code=200,
    tags=["account"],
    summary="Prove the second factor again (a code or a passkey's answer), e.g. before creating an API key",
)
@off_loop
def verify_again(request: Request[Any, Any, Any], data: JSONBody[Proof]) -> dict[str, Any]:
    principal = principal_of(request)
    db = _db(request)
    if data.credential is not None:
        try:
            passkeys.authenticate(db, _rp(request), principal.user.id, data.credential)
            kind: str | None = "passkey"
        except passkeys.PasskeyError:
            kind = None
    else:
        kind = factors.verify_code(db, principal.user.id, data.code)
    if kind is None:
        failed_attempt(request)
        audit.record(db, "second_factor.check_failed", actor=principal.user.email, ip=_ip(request))
        raise HTTPException(status_code=400, detail=N_("That did not prove your second factor. Please try again."))
    _mark_fresh(request, principal)
    return {"fresh": True, "method": kind}


@post(
    "/api/v1/me/second-factor/passkey-options",
    opt={"credentials": True},
    status_code=200,
    tags=["account"],
    summary="The challenge for proving the second factor again with a passkey",
)
@off_loop
def verify_passkey_options(request: Request[Any, Any, Any]) -> dict[str, Any]:
    try:
        return passkeys.authentication_options(_db(request), _rp(request), principal_of(request).user.id)
    except passkeys.PasskeyError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


# --------------------------------------------------------------------------- passkeys


@get("/api/v1/me/passkeys", tags=["account"], summary="My passkeys and security keys")
@off_loop
def list_passkeys(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    return passkeys.for_user(_db(request), principal_of(request).user.id)


@post(
    "/api/v1/me/passkeys/options",
    opt=ENROLMENT,
    status_code=200,
    tags=["account"],
    summary="Start registering a passkey: the options for navigator.credentials.create()",
)
@off_loop
def passkey_options(request: Request[Any, Any, Any]) -> dict[str, Any]:
    principal = principal_of(request)
    _guard_adding(request, principal)
    return passkeys.registration_options(_db(request), _rp(request), principal.user)


def _guard_adding(request: Request[Any, Any, Any], principal: Principal) -> None:
    """Adding a factor to an account that has one needs that one first: otherwise a stolen session
    could add the thief's key and keep the account."""
    if factors.has_factor(_db(request), principal.user.id) and not is_fresh(request, principal):
        raise HTTPException(
            status_code=403,
            detail=N_("Adding a second factor needs the one you have again: confirm it with a code or a passkey."),
            extra={"code": "second_factor_required"},
        )


@post(
    "/api/v1/me/passkeys",
    opt=ENROLMENT,
    status_code=201,
    tags=["account"],
    summary="Finish registering a passkey with the browser's answer",
)
@off_loop
def passkey_register(request: Request[Any, Any, Any], data: JSONBody[NewPasskey]) -> dict[str, Any]:
    principal = principal_of(request)
    _guard_adding(request, principal)
    db = _db(request)
    first = not factors.has_factor(db, principal.user.id)
    try:
        record = passkeys.register(db, _rp(request), principal.user, data.credential, data.name)
    except passkeys.PasskeyError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    _mark_fresh(request, principal)
    audit.record(db, "second_factor.passkey_added", actor=principal.user.email, target=record["id"][:16], ip=_ip(request))
    # The first factor of an account comes with recovery codes, whichever kind it is.
    codes = (
        factors.new_recovery_codes(db, principal.user.id)
        if first and not factors.recovery_codes_left(db, principal.user.id)
        else []
    )
    return {**record, "recovery_codes": codes}


@put("/api/v1/me/passkeys/{passkey_id:str}", opt={"credentials": True}, tags=["account"], summary="Rename a passkey")
@off_loop
def passkey_rename(request: Request[Any, Any, Any], passkey_id: FromPath[str], data: JSONBody[PasskeyName]) -> dict[str, Any]:
    principal = principal_of(request)
    try:
        renamed = passkeys.rename(_db(request), principal.user.id, passkey_id, data.name)
    except passkeys.PasskeyError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    if not renamed:
        raise NotFoundException(detail=N_("No such passkey."))
    return {"id": passkey_id, "name": " ".join(data.name.split())[: passkeys.MAX_NAME]}


@delete(
    "/api/v1/me/passkeys/{passkey_id:str}",
    opt={"credentials": True, "throttle": "second_factor"},
    status_code=200,
    tags=["account"],
    summary="Remove a passkey (needs the password)",
)
@off_loop
def passkey_remove(request: Request[Any, Any, Any], passkey_id: FromPath[str], data: JSONBody[PasswordOnly]) -> dict[str, Any]:
    principal = principal_of(request)
    db = _db(request)
    if not password_ok(request, principal, data.password):
        failed_attempt(request)
        raise HTTPException(status_code=400, detail=N_("The password is not right."))
    if not passkeys.remove(db, principal.user.id, passkey_id):
        raise NotFoundException(detail=N_("No such passkey."))
    if not factors.has_factor(db, principal.user.id):
        factors.reset(db, principal.user.id)  # the last factor gone: its recovery codes go with it
    audit.record(db, "second_factor.passkey_removed", actor=principal.user.email, target=passkey_id[:16], ip=_ip(request))
    return {"removed": True}


# --------------------------------------------------------------------------- admins


@get("/api/v1/second-factor-policy", opt={"scope": "admin"}, tags=["admin"], summary="Roles that must use a second factor")
@off_loop
def get_policy(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"roles": sorted(factors.required_roles(_db(request)))}


@put(
    "/api/v1/second-factor-policy",
    opt={"scope": "admin"},
    tags=["admin"],
    summary="Set the roles that must use a second factor (their users enrol right after signing in)",
)
@off_loop
def set_policy(request: Request[Any, Any, Any], data: JSONBody[Policy]) -> dict[str, Any]:
    try:
        factors.set_required_roles(_db(request), set(data.roles))
    except factors.FactorError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    audit.record(
        _db(request), "second_factor.policy_set", actor=principal_of(request).user.email, detail={"roles": sorted(data.roles)}
    )
    return {"roles": sorted(set(data.roles))}


@post(
    "/api/v1/users/{user_id:str}/second-factors/reset",
    opt={"scope": "admin"},
    status_code=200,
    tags=["admin"],
    summary="Remove all of a user's second factors (they lost their phone and their recovery codes)",
)
@off_loop
def reset_user(request: Request[Any, Any, Any], user_id: FromPath[str]) -> dict[str, Any]:
    db = _db(request)
    user = accounts.get(db, user_id)
    if user is None:
        raise NotFoundException(detail=N_("No such user."))
    factors.reset(db, user.id)
    sessions.end_all(db, user.id)
    audit.record(db, "second_factor.reset", actor=principal_of(request).user.email, target=user.email)
    return {"reset": True}


ROUTES = [
    login_code,
    login_passkey_options,
    login_passkey,
    my_factors,
    totp_start,
    totp_confirm,
    totp_remove,
    recovery_codes,
    verify_again,
    verify_passkey_options,
    list_passkeys,
    passkey_options,
    passkey_register,
    passkey_rename,
    passkey_remove,
    get_policy,
    set_policy,
    reset_user,
]
