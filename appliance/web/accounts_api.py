"""Sign-in, the caller's own account, API keys, users (admin), workspaces, audit: thin handlers."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, JSONBody, Parameter

from appliance.accounts import apikeys, audit, authz, factors, sessions, workspaces
from appliance.accounts import users as accounts
from appliance.app import privacy
from appliance.app.directory_sign_in import NotLicensed
from appliance.directory.ldap import DirectoryUnavailable
from appliance.private import keys as private_keys
from appliance.web import factors_api, i18n
from appliance.web.auth import failed_attempt, principal_of
from appliance.web.i18n import N_, Detail, reader_for
from appliance.web.license_api import check_user_limit
from appliance.web.offload import off_loop
from appliance.web.services import Services


class Login(msgspec.Struct):
    email: str
    password: str


class PasswordChange(msgspec.Struct):
    current_password: str
    new_password: str


class LanguageChoice(msgspec.Struct):
    language: str | None  # one of the UI's languages; null: follow the browser


class PasswordConfirm(msgspec.Struct):
    password: str


class NewKey(msgspec.Struct):
    name: str = "API key"
    scope: str = "transcribe"
    store: bool = True  # False: the key's OpenAI-compatible results are answered, then deleted


class NewUser(msgspec.Struct):
    email: str
    password: str
    role: str = "member"


class NewInvite(msgspec.Struct):
    email: str
    role: str = "member"
    language: str | None = None  # the invitee's UI language (a code such as de); None: the appliance's default


class AcceptInvite(msgspec.Struct):
    token: str
    password: str


class NewPassword(msgspec.Struct):
    password: str


class NewWorkspace(msgspec.Struct):
    name: str


class InvitationAnswer(msgspec.Struct):
    accept: bool


class Member(msgspec.Struct):
    email: str
    role: str = "member"


def _services(request: Request[Any, Any, Any]) -> Services:
    return request.app.state.services


def _dbs(request: Request[Any, Any, Any]) -> Any:
    return _services(request).databases


def _db(request: Request[Any, Any, Any]) -> Any:
    return _services(request).databases.get()


def _ip(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def _bad(exc: Exception) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc))


_session_cookie = factors_api.session_cookie


@post(
    "/api/v1/auth/login",
    opt={"public": True, "throttle": "password"},
    status_code=200,
    tags=["auth"],
    summary="Sign in (sets the session cookie)",
)
@off_loop
def login(request: Request[Any, Any, Any], data: JSONBody[Login]) -> Response[dict[str, Any]]:
    services = _services(request)
    security = services.settings.security
    db = _db(request)
    directory = services.directory
    via = "password"
    if directory is not None and directory.handles(db, data.email):
        via = "ldap"
        try:
            user = directory.sign_in(db, data.email, data.password, ip=_ip(request))  # audits its failures
        except accounts.SignInFailed:
            failed_attempt(request)
            raise HTTPException(status_code=401, detail=accounts.SignInFailed.message) from None
        except NotLicensed:
            raise HTTPException(
                status_code=403,
                detail=N_("Directory sign-in is not included in this appliance's licence. Local accounts can still sign in."),
            ) from None
        except DirectoryUnavailable:
            raise HTTPException(
                status_code=503,
                detail=N_("The directory cannot be reached. Please try again later."),
                headers={"Retry-After": "30"},
            ) from None
    else:
        try:
            user = accounts.authenticate(
                _dbs(request).get(),
                data.email,
                data.password,
                max_failures=security.login_max_failures,
                lockout_minutes=security.lockout_minutes,
                legacy=private_keys.LEGACY_SIGN_IN,
            )
        except accounts.SignInFailed:
            failed_attempt(request)
            audit.record(db, "sign_in.failed", actor=(data.email or "")[:254].lower(), ip=_ip(request))
            raise HTTPException(status_code=401, detail=accounts.SignInFailed.message) from None
    if factors.has_factor(db, user.id):
        # The password was right; the session waits for the second factor (a short-lived, single-use token).
        audit.record(db, "sign_in.password_ok", actor=user.email, ip=_ip(request), detail={"via": via})
        return Response(
            {"second_factor": {"token": factors.begin_pending(db, user.id), "methods": factors_api.methods(request, user.id)}}
        )
    return factors_api.start_session(request, user, second_factor=None, via=via)


@post("/api/v1/auth/logout", status_code=200, opt={"enrolment": True}, tags=["auth"], summary="Sign out this session")
@off_loop
def logout(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    principal = principal_of(request)
    oidc = _services(request).oidc
    end_session_url = None
    if principal.session:
        if oidc is not None and oidc.enabled:
            # RP-initiated logout: the browser may go on to sign out at the provider too.
            end_session_url = oidc.logout_url(_db(request), principal.session.id)
        sessions.end(_db(request), principal.session.id)
    return Response({"signed_out": True, "end_session_url": end_session_url}, cookies=[_session_cookie(request, "", 0)])


@post(
    "/api/v1/auth/logout-all",
    status_code=200,
    tags=["auth"],
    opt={"credentials": True},
    summary="Sign out every session of this account and revoke its API keys",
)
@off_loop
def logout_all(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    principal = principal_of(request)
    ended = sessions.end_all(_db(request), principal.user.id)
    revoked = apikeys.revoke_all(_db(request), principal.user.id)
    audit.record(
        _db(request), "sign_out.everywhere", actor=principal.user.email, ip=_ip(request), detail={"api_keys_revoked": revoked}
    )
    return Response({"sessions_ended": ended, "api_keys_revoked": revoked}, cookies=[_session_cookie(request, "", 0)])


@get("/api/v1/me", opt={"enrolment": True}, tags=["account"], summary="The signed-in user, their workspaces and CSRF token")
@off_loop
def me(request: Request[Any, Any, Any]) -> dict[str, Any]:
    principal = principal_of(request)
    return {
        "user": principal.user.public(),
        "scope": principal.scope,
        "via": principal.via,
        "csrf_token": principal.session.csrf_token if principal.session else None,
        "workspaces": workspaces.for_user(_db(request), principal.user.id),
    }


@put("/api/v1/me/language", tags=["account"], summary="Choose my UI language (null: my browser's)")
@off_loop
def set_language(request: Request[Any, Any, Any], data: JSONBody[LanguageChoice]) -> Response[dict[str, Any]]:
    principal = principal_of(request)
    catalogs: i18n.Catalogs = request.app.state.i18n
    if data.language is not None and catalogs.accept(data.language) is None:
        raise HTTPException(status_code=400, detail=N_("That is not one of the languages of this appliance."))
    accounts.set_language(_db(request), principal.user.id, data.language)
    # The cookie too, so the sign-in page after signing out speaks the same language.
    cookie = i18n.cookie(request, data.language or "", 0 if data.language is None else i18n.COOKIE_MAX_AGE)
    return Response({"language": data.language}, cookies=[cookie])


@post(
    "/api/v1/me/password",
    status_code=200,
    tags=["account"],
    opt={"credentials": True},
    summary="Change my password (other sessions end, API keys are revoked)",
)
@off_loop
def change_password(request: Request[Any, Any, Any], data: JSONBody[PasswordChange]) -> dict[str, Any]:
    principal = principal_of(request)
    db = _db(request)
    directory = _services(request).directory
    if directory is not None and directory.enabled and not directory.handles_local(db, principal.user.id):
        raise HTTPException(
            status_code=409, detail=N_("Your password is managed by your organisation's directory: change it there.")
        )
    if private_keys.scheme(db, principal.user.id) == private_keys.LEGACY_SCHEME:
        # Their private keys are still wrapped under this password: a new one would leave only the recovery key.
        raise HTTPException(status_code=409, detail=private_keys.NEW_PASSPHRASE)
    if not accounts.verify_password(
        _dbs(request).get(), principal.user.id, data.current_password, legacy=private_keys.LEGACY_SIGN_IN
    ):
        raise HTTPException(status_code=400, detail=N_("The current password is not right."))
    try:
        accounts.set_password(_dbs(request).get(), principal.user.id, data.new_password, legacy=private_keys.LEGACY_SIGN_IN)
    except accounts.AccountError as exc:
        raise _bad(exc) from None
    sessions.end_all(db, principal.user.id, keep=principal.session.id if principal.session else None)
    revoked = apikeys.revoke_all(db, principal.user.id)
    audit.record(db, "password.changed", actor=principal.user.email, ip=_ip(request), detail={"api_keys_revoked": revoked})
    return {"changed": True, "api_keys_revoked": revoked}


@delete(
    "/api/v1/me",
    status_code=200,
    tags=["account"],
    opt={"credentials": True},
    summary="Delete my account and everything it owns, for good",
)
@off_loop
def delete_me(request: Request[Any, Any, Any], data: JSONBody[PasswordConfirm]) -> Response[dict[str, Any]]:
    principal = principal_of(request)
    _db(request)
    if not factors_api.password_ok(request, principal, data.password):
        raise HTTPException(status_code=400, detail=N_("The password is not right."))
    privacy.delete_account(_dbs(request).get(), principal.user.id)
    return Response({"deleted": True}, cookies=[_session_cookie(request, "", 0)])


@get(
    "/api/v1/me/export",
    tags=["account"],
    summary="Export my data: a zip of every transcript and my account",
    media_type="application/zip",
)
@off_loop
def export_me(request: Request[Any, Any, Any]) -> Response[bytes]:
    principal = principal_of(request)
    db = _db(request)
    data = privacy.export_user(_dbs(request).get(), principal.user.id, reader=reader_for(request))
    audit.record(db, "account.exported", actor=principal.user.email, ip=_ip(request))
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": 'attachment; filename="sotto-export.zip"'}
    )


# --------------------------------------------------------------------------- API keys


@get("/api/v1/apikeys", tags=["account"], summary="My API keys (never the secrets)")
@off_loop
def list_keys(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    return apikeys.for_user(_db(request), principal_of(request).user.id)


@post(
    "/api/v1/apikeys",
    tags=["account"],
    opt={"credentials": True},
    summary="Create an API key; the key is shown this once",
)
@off_loop
def create_key(request: Request[Any, Any, Any], data: JSONBody[NewKey]) -> dict[str, Any]:
    principal = principal_of(request)
    if data.scope not in authz.LEVEL:
        raise HTTPException(status_code=400, detail=N_("scope must be read, transcribe or admin"))
    if authz.LEVEL[data.scope] > authz.LEVEL[principal.scope]:
        raise PermissionDeniedException(
            detail=Detail(N_("You cannot create a key with more access (%(scope)s) than your own."), scope=data.scope)
        )
    factors_api.require_fresh(request, principal, Detail(N_("Creating an API key")))
    key, record = apikeys.create(_db(request), principal.user.id, data.name, data.scope, store=data.store)
    audit.record(
        _db(request),
        "apikey.created",
        actor=principal.user.email,
        target=record["id"],
        detail={"scope": data.scope, "store": data.store},
    )
    return {"key": key, **record}


@delete(
    "/api/v1/apikeys/{key_id:str}",
    status_code=204,
    tags=["account"],
    opt={"credentials": True},
    summary="Revoke one of my API keys",
)
@off_loop
def revoke_key(request: Request[Any, Any, Any], key_id: FromPath[str]) -> None:
    principal = principal_of(request)
    if not apikeys.revoke(_db(request), key_id, principal.user.id):
        raise NotFoundException(detail=N_("No such key."))
    audit.record(_db(request), "apikey.revoked", actor=principal.user.email, target=key_id)


# --------------------------------------------------------------------------- users (admins)


@get("/api/v1/users", opt={"scope": "admin"}, tags=["admin"], summary="All users")
@off_loop
def list_users(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    return accounts.list_all(_db(request))


@post("/api/v1/users", opt={"scope": "admin"}, tags=["admin"], summary="Create a user")
@off_loop
def create_user(request: Request[Any, Any, Any], data: JSONBody[NewUser]) -> dict[str, Any]:
    check_user_limit(_services(request))
    try:
        user = accounts.create(_dbs(request).get(), data.email, data.password, data.role)
    except accounts.AccountError as exc:
        raise _bad(exc) from None
    audit.record(
        _db(request), "user.created", actor=principal_of(request).user.email, target=user.email, detail={"role": user.role}
    )
    return user.public()


@post("/api/v1/invites", opt={"scope": "admin"}, tags=["admin"], summary="Invite a user: a one-time link")
@off_loop
def create_invite(request: Request[Any, Any, Any], data: JSONBody[NewInvite]) -> dict[str, Any]:
    hours = _services(request).settings.security.invite_hours
    catalogs: i18n.Catalogs = request.app.state.i18n
    language = invite_language(request, data.language)  # before the invitation is made: bad input loses nothing
    try:
        token = accounts.invite(_db(request), data.email, data.role, principal_of(request).user.id, hours)
    except accounts.AccountError as exc:
        raise _bad(exc) from None
    audit.record(_db(request), "user.invited", actor=principal_of(request).user.email, target=data.email.lower())
    # The link names the language (the query, not the fragment: it is no secret), so the invitation page
    # and the account it makes speak it; the message to send is in it too.
    path = f"/invite?lang={language}#{token}"
    link = str(request.base_url).rstrip("/") + path
    message = catalogs.translations(language).gettext(INVITE_MESSAGE) % {"link": link, "hours": hours}
    return {"token": token, "path": path, "expires_in_hours": hours, "language": language, "message": message}


# Translators: the text an administrator copies into an e-mail or a chat message to the person invited
# (the appliance sends no e-mail itself). %(link)s is the one-time link, %(hours)s how long it works.
INVITE_MESSAGE = N_(
    "You are invited to Sotto, your organisation's transcription appliance. Open this link to choose your "
    "password and sign in: %(link)s\n\nThe link works once, for %(hours)s hours. If you did not expect this "
    "invitation, ignore it."
)


def invite_language(request: Request[Any, Any, Any], asked: str | None) -> str:
    """The invitee's language: the inviter's choice, else the appliance's default (workspaces have none)."""
    catalogs: i18n.Catalogs = request.app.state.i18n
    if asked is None:
        return catalogs.accept(_services(request).settings.ui.default_language) or "en"
    if catalogs.accept(asked) is None or asked == i18n.PSEUDO:
        raise HTTPException(status_code=400, detail=N_("That is not one of the languages of this appliance."))
    return asked


@post(
    "/api/v1/invites/accept",
    opt={"public": True},
    tags=["auth"],
    summary="Accept an invitation and set a password",
)
@off_loop
def accept_invite(request: Request[Any, Any, Any], data: JSONBody[AcceptInvite]) -> dict[str, Any]:
    check_user_limit(_services(request))
    try:
        user = accounts.accept_invite(_dbs(request).get(), data.token, data.password)
    except accounts.AccountError as exc:
        raise _bad(exc) from None
    # The invitation page set the language cookie from its link (or the person chose one on it): the new
    # account keeps that language.
    catalogs: i18n.Catalogs = request.app.state.i18n
    language = catalogs.accept(request.cookies.get(i18n.COOKIE))
    if language is not None and language != i18n.PSEUDO:
        accounts.set_language(_db(request), user.id, language)
        user = accounts.get(_db(request), user.id) or user
    audit.record(_db(request), "invite.accepted", actor=user.email, ip=_ip(request))
    return user.public()


class UserRemoval(msgspec.Struct):
    transcripts: str = "delete"  # "delete", or "transfer" to transfer_to
    transfer_to: str | None = None  # a user id


@post(
    "/api/v1/users/{user_id:str}/delete",
    opt={"scope": "admin"},
    status_code=200,
    tags=["admin"],
    summary="Delete a user; their standard transcripts are deleted or transferred to another user",
)
@off_loop
def delete_user(request: Request[Any, Any, Any], user_id: FromPath[str], data: JSONBody[UserRemoval]) -> dict[str, Any]:
    principal = principal_of(request)
    if user_id == principal.user.id:
        raise HTTPException(status_code=400, detail=N_("Delete your own account from your Account page."))
    if data.transcripts not in ("delete", "transfer") or (data.transcripts == "transfer") != bool(data.transfer_to):
        raise HTTPException(status_code=400, detail=N_('Say transcripts "delete", or "transfer" with transfer_to (a user id).'))
    user = _user_or_404(request, user_id)
    try:
        result = privacy.delete_user(_dbs(request).get(), user.id, transfer_to=data.transfer_to)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    audit.record(
        _db(request),
        "user.deleted",
        actor=principal.user.email,
        target=result["pseudonym"],
        detail={"transcripts_transferred": result["transcripts_transferred"]},
    )
    return {"deleted": True, **result}


def _user_or_404(request: Request[Any, Any, Any], user_id: str) -> accounts.User:
    user = accounts.get(_db(request), user_id)
    if user is None:
        raise NotFoundException(detail=N_("No such user."))
    return user


@post(
    "/api/v1/users/{user_id:str}/disable",
    opt={"scope": "admin"},
    status_code=200,
    tags=["admin"],
    summary="Disable a user",
)
@off_loop
def disable_user(request: Request[Any, Any, Any], user_id: FromPath[str]) -> dict[str, Any]:
    user = _user_or_404(request, user_id)
    if user.id == principal_of(request).user.id:
        raise HTTPException(status_code=400, detail=N_("You cannot disable your own account."))
    accounts.set_disabled(_db(request), user.id, True)
    sessions.end_all(_db(request), user.id)
    audit.record(_db(request), "user.disabled", actor=principal_of(request).user.email, target=user.email)
    return {"disabled": True}


@post(
    "/api/v1/users/{user_id:str}/enable",
    opt={"scope": "admin"},
    status_code=200,
    tags=["admin"],
    summary="Enable a user",
)
@off_loop
def enable_user(request: Request[Any, Any, Any], user_id: FromPath[str]) -> dict[str, Any]:
    user = _user_or_404(request, user_id)
    accounts.set_disabled(_db(request), user.id, False)
    audit.record(_db(request), "user.enabled", actor=principal_of(request).user.email, target=user.email)
    return {"disabled": False}


@post(
    "/api/v1/users/{user_id:str}/password",
    opt={"scope": "admin"},
    status_code=200,
    tags=["admin"],
    summary="Reset a user's password",
)
@off_loop
def reset_password(request: Request[Any, Any, Any], user_id: FromPath[str], data: JSONBody[NewPassword]) -> dict[str, Any]:
    user = _user_or_404(request, user_id)
    try:
        accounts.set_password(_dbs(request).get(), user.id, data.password, legacy=private_keys.LEGACY_SIGN_IN)
    except accounts.AccountError as exc:
        raise _bad(exc) from None
    sessions.end_all(_db(request), user.id)
    revoked = apikeys.revoke_all(_db(request), user.id)
    audit.record(
        _db(request),
        "user.password_reset",
        actor=principal_of(request).user.email,
        target=user.email,
        detail={"api_keys_revoked": revoked},
    )
    return {
        "reset": True,
        "api_keys_revoked": revoked,
        "note": "The account is restored. Private transcripts are not affected: they open with the user's own "
        "passphrase (or recovery key), which a reset neither needs nor changes.",
    }


@get("/api/v1/audit", opt={"scope": "admin"}, tags=["admin"], summary="The audit log, newest first")
@off_loop
def audit_log(
    request: Request[Any, Any, Any],
    limit: Annotated[int, Parameter(ge=1, le=5000)] = 200,
    offset: Annotated[int, Parameter(ge=0, le=1_000_000_000)] = 0,
) -> list[dict[str, Any]]:
    return audit.entries(_db(request), limit=limit, offset=offset)


@get(
    "/api/v1/audit/export",
    opt={"scope": "admin"},
    tags=["admin"],
    summary="The whole audit log as CSV",
    media_type="text/csv",
)
@off_loop
def audit_export(request: Request[Any, Any, Any]) -> Response[str]:
    principal = principal_of(request)
    body = audit.to_csv(_db(request))
    audit.record(_db(request), "audit.exported", actor=principal.user.email, ip=_ip(request))
    return Response(
        body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": 'attachment; filename="sotto-audit.csv"'}
    )


# --------------------------------------------------------------------------- workspaces


@get("/api/v1/workspaces", tags=["workspaces"], summary="My workspaces and my role in each")
@off_loop
def list_workspaces(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    return workspaces.for_user(_db(request), principal_of(request).user.id)


@post(
    "/api/v1/workspaces",
    opt={"scope": "transcribe"},
    tags=["workspaces"],
    summary="Create a shared workspace",
)
@off_loop
def create_workspace(request: Request[Any, Any, Any], data: JSONBody[NewWorkspace]) -> dict[str, Any]:
    principal = principal_of(request)
    workspace_id = workspaces.create(_db(request), data.name, owner_id=principal.user.id)
    audit.record(_db(request), "workspace.created", actor=principal.user.email, target=workspace_id)
    return {"id": workspace_id, "name": data.name.strip()[:120], "role": "admin", "personal": False}


def _workspace_admin(request: Request[Any, Any, Any], workspace_id: str) -> None:
    role = workspaces.role_of(_db(request), workspace_id, principal_of(request).user.id)
    if role is None:
        raise NotFoundException(detail=N_("No such workspace."))
    if role != "admin" or authz.LEVEL[principal_of(request).scope] < authz.LEVEL["transcribe"]:
        raise PermissionDeniedException(detail=N_("Only the workspace's admins can manage its members."))


@get("/api/v1/workspaces/{workspace_id:str}/members", tags=["workspaces"], summary="Members of a workspace")
@off_loop
def list_members(request: Request[Any, Any, Any], workspace_id: FromPath[str]) -> list[dict[str, Any]]:
    role = workspaces.role_of(_db(request), workspace_id, principal_of(request).user.id)
    if role is None:
        raise NotFoundException(detail=N_("No such workspace."))
    members = [{**m, "status": "member"} for m in workspaces.members(_db(request), workspace_id)]
    if role == "admin":  # its admins also see who has not answered yet
        members += [{**p, "status": "invited"} for p in workspaces.pending(_db(request), workspace_id)]
    return members


@put(
    "/api/v1/workspaces/{workspace_id:str}/members",
    opt={"scope": "transcribe"},
    tags=["workspaces"],
    summary="Invite someone (they accept on their account page), or change a member's role",
)
@off_loop
def set_member(request: Request[Any, Any, Any], workspace_id: FromPath[str], data: JSONBody[Member]) -> dict[str, Any]:
    _workspace_admin(request, workspace_id)
    db = _db(request)
    if workspaces.is_personal(db, workspace_id):
        raise HTTPException(status_code=400, detail=N_("A personal workspace cannot be shared; create a shared workspace."))
    if data.role not in workspaces.ROLES:
        raise HTTPException(status_code=400, detail=N_("The role must be admin, member or viewer."))
    actor = principal_of(request).user
    user = accounts.by_email(db, data.email)
    if user is not None and workspaces.role_of(db, workspace_id, user.id) is not None:
        workspaces.set_member(db, workspace_id, user.id, data.role)  # already joined: a role change
        audit.record(
            db, "workspace.member_set", actor=actor.email, target=workspace_id, detail={"member": user.email, "role": data.role}
        )
        return {"workspace_id": workspace_id, "email": data.email, "role": data.role, "status": "member"}
    # Not a member: an invitation they may accept or decline. The answer is the same whether or not the
    # address has an account, so this cannot be used to find out who has one.
    if user is not None:
        workspaces.invite(db, workspace_id, user.id, data.role, actor.id)
    audit.record(db, "workspace.member_invited", actor=actor.email, target=workspace_id, detail={"role": data.role})
    return {"workspace_id": workspace_id, "email": data.email, "role": data.role, "status": "invited"}


@get("/api/v1/me/workspace-invitations", tags=["workspaces"], summary="Workspaces I am invited to join")
@off_loop
def my_invitations(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    return workspaces.invitations_for(_db(request), principal_of(request).user.id)


@post(
    "/api/v1/me/workspace-invitations/{workspace_id:str}",
    opt={"credentials": True},
    status_code=200,
    tags=["workspaces"],
    summary="Accept or decline an invitation to a workspace",
)
@off_loop
def answer_invitation(
    request: Request[Any, Any, Any], workspace_id: FromPath[str], data: JSONBody[InvitationAnswer]
) -> dict[str, Any]:
    principal = principal_of(request)
    role = workspaces.answer(_db(request), workspace_id, principal.user.id, accept=data.accept)
    if role is None:
        raise NotFoundException(detail=N_("No such invitation."))
    audit.record(
        _db(request),
        "workspace.invitation_accepted" if data.accept else "workspace.invitation_declined",
        actor=principal.user.email,
        target=workspace_id,
        detail={"role": role},
    )
    return {"workspace_id": workspace_id, "role": role if data.accept else None, "joined": data.accept}


@delete(
    "/api/v1/workspaces/{workspace_id:str}/members/{user_id:str}",
    opt={"scope": "transcribe"},
    status_code=204,
    tags=["workspaces"],
    summary="Remove a member",
)
@off_loop
def remove_member(request: Request[Any, Any, Any], workspace_id: FromPath[str], user_id: FromPath[str]) -> None:
    _workspace_admin(request, workspace_id)
    if workspaces.is_personal(_db(request), workspace_id):
        raise HTTPException(status_code=400, detail=N_("The owner of a personal workspace cannot be removed."))
    workspaces.remove_member(_db(request), workspace_id, user_id)
    audit.record(_db(request), "workspace.member_removed", actor=principal_of(request).user.email, target=workspace_id)


ROUTES = [
    delete_user,
    login,
    logout,
    logout_all,
    me,
    set_language,
    change_password,
    delete_me,
    export_me,
    list_keys,
    create_key,
    revoke_key,
    list_users,
    create_user,
    create_invite,
    accept_invite,
    disable_user,
    enable_user,
    reset_password,
    audit_log,
    audit_export,
    list_workspaces,
    create_workspace,
    list_members,
    set_member,
    remove_member,
    my_invitations,
    answer_invitation,
]
