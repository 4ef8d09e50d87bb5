"""Directory sign-in for administrators: the group map as configured, the directory accounts, the last
check, and a check now (thin handlers over app/directory_sign_in.py)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template

from appliance.accounts import audit, authz
from appliance.app import directory_sign_in
from appliance.web import layout
from appliance.web.auth import principal_of
from appliance.web.i18n import N_
from appliance.web.offload import off_loop


def overview(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services = request.app.state.services
    settings = services.settings
    db = services.databases.get()
    directory = services.directory
    group_map = directory.group_map if directory is not None else None
    existing = directory_sign_in.shared_workspace_names(db)
    return {
        "configured": bool(directory is not None and directory.enabled),
        "url": settings.ldap.url,
        "search": "service account" if settings.ldap.bind_dn else "direct bind",
        "nested_groups": settings.ldap.nested_groups,
        "sync_minutes": settings.ldap.sync_minutes if settings.ldap.bind_dn else 0,
        "roles": [{"group": g, "role": r} for g, r in (group_map.roles.items() if group_map else [])],
        "workspaces": [
            {"group": g, "workspace": name, "role": role, "exists": name in existing}
            for g, targets in (group_map.workspaces.items() if group_map else [])
            for name, role in targets
        ],
        "default_role": settings.group_map.default_role,
        "last_sync": directory_sign_in.last_sync(db),
        "accounts": directory_sign_in.directory_accounts(db),
    }


@get("/api/v1/directory", opt={"scope": "admin"}, tags=["admin"], summary="Directory sign-in: group map, accounts, last check")
@off_loop
def directory_overview(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return overview(request)


@post(
    "/api/v1/directory/sync",
    opt={"scope": "admin"},
    status_code=200,
    tags=["admin"],
    summary="Check every directory account against the directory now",
)
@off_loop
def directory_sync(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services = request.app.state.services
    directory = services.directory
    if directory is None or not directory.enabled:
        raise HTTPException(status_code=409, detail=N_("No directory is configured ([ldap] url)."))
    if not services.settings.ldap.bind_dn:
        raise HTTPException(
            status_code=409, detail=N_("Checking accounts between sign-ins needs a service account (ldap.bind_dn).")
        )
    result: dict[str, Any] = directory.sync(services.databases.get())
    audit.record(services.databases.get(), "directory.synced", actor=principal_of(request).user.email, detail=result)
    return result


@get("/admin/directory", opt={"public": True, "page": True}, include_in_schema=False)
@off_loop
def directory_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    principal = layout.signed_in(request)
    if principal is None:
        return Redirect("/login?next=/admin/directory")
    if principal.user.role != "admin":
        raise authz.Forbidden("Only administrators see the directory settings.")
    return layout.page(request, "directory.html", principal, directory=overview(request))


ROUTES = [directory_overview, directory_sync, directory_page]
