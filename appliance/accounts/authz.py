"""Authorisation, in one place: who the caller is, what their credential allows, which workspaces
they may see and change. Web handlers ask here; nothing else decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.accounts import workspaces
from appliance.accounts.sessions import Session
from appliance.accounts.users import User

LEVEL = {"read": 1, "transcribe": 2, "admin": 3}
ROLE_SCOPE = {"viewer": "read", "member": "transcribe", "admin": "admin"}


class Unauthenticated(Exception):
    """No valid session or API key."""


class Forbidden(Exception):
    """Known caller, not allowed; the message is safe to show."""


class NotVisible(Exception):
    """The resource does not exist for this caller (existence is not revealed)."""


@dataclass(frozen=True)
class Principal:
    user: User
    via: str  # "session" or "key"
    scope: str  # the effective scope: the key's, never more than the user's role allows
    session: Session | None = None
    key_id: str | None = None
    key_stores: bool = True  # the key's own "keep results" setting (OpenAI-compatible requests)
    # A browser session whose role requires a second factor the user has not set up yet: it may only
    # reach the enrolment (routes with opt "enrolment").
    must_enrol: bool = False

    @property
    def rate_key(self) -> str:
        return f"key:{self.key_id}" if self.key_id else f"user:{self.user.id}"


def principal_for(
    user: User,
    *,
    session: Session | None = None,
    key_scope: str | None = None,
    key_id: str | None = None,
    key_stores: bool = True,
) -> Principal:
    role_scope = ROLE_SCOPE[user.role]
    scope = role_scope if key_scope is None else min(key_scope, role_scope, key=LEVEL.__getitem__)
    return Principal(user, "key" if key_id else "session", scope, session, key_id, key_stores)


def require_scope(principal: Principal | None, needed: str) -> Principal:
    if principal is None:
        raise Unauthenticated()
    if LEVEL[principal.scope] < LEVEL[needed]:
        raise Forbidden(f"This needs {needed} access; your {'key' if principal.key_id else 'account'} has {principal.scope}.")
    return principal


def workspace_role(db: sqlite_utils.Database, principal: Principal, workspace_id: str | None) -> str | None:
    if workspace_id is None:
        return None
    return workspaces.role_of(db, workspace_id, principal.user.id)


def visible_workspace_ids(db: sqlite_utils.Database, principal: Principal) -> list[str]:
    return [w["id"] for w in workspaces.for_user(db, principal.user.id)]


def target_workspace(db: sqlite_utils.Database, principal: Principal, workspace_id: str | None) -> str:
    """Where a new transcript goes: the named workspace (member or admin there), else the personal one."""
    workspace_id = workspace_id or principal.user.personal_workspace_id
    role = workspace_role(db, principal, workspace_id)
    if role is None:
        raise NotVisible()
    if workspaces.RANK[role] < workspaces.RANK["member"]:
        raise Forbidden("Viewers cannot add transcripts to this workspace.")
    return workspace_id  # type: ignore[return-value]


def can_read(db: sqlite_utils.Database, principal: Principal, row: dict[str, Any]) -> None:
    """A transcript or job row: any member of its workspace may read it."""
    if workspace_role(db, principal, row.get("workspace_id")) is None:
        raise NotVisible()


def can_change(db: sqlite_utils.Database, principal: Principal, row: dict[str, Any]) -> None:
    """Edit, delete or cancel: the workspace's admins, or a member who created it."""
    role = workspace_role(db, principal, row.get("workspace_id"))
    if role is None:
        raise NotVisible()
    if LEVEL[principal.scope] < LEVEL["transcribe"]:
        raise Forbidden("This needs transcribe access.")
    if role == "admin" or (role == "member" and row.get("user_id") == principal.user.id):
        return
    raise Forbidden("Only the workspace's admins, or the member who created it, can change this.")


def can_see_voices(db: sqlite_utils.Database, principal: Principal, workspace_id: str) -> str:
    """A workspace's voice profiles (names and consent notes; embeddings never leave the server): any
    member may list them, since they are who the workspace's transcripts get suggested. Returns the role."""
    role = workspace_role(db, principal, workspace_id)
    if role is None:
        raise NotVisible()
    return role


def can_enrol_voice(db: sqlite_utils.Database, principal: Principal, workspace_id: str) -> None:
    """Enrol (or add a voice to) a profile: members and admins with transcribe access, not viewers."""
    role = can_see_voices(db, principal, workspace_id)
    if workspaces.RANK[role] < workspaces.RANK["member"] or LEVEL[principal.scope] < LEVEL["transcribe"]:
        raise Forbidden("Viewers cannot enrol voices in this workspace.")


def can_manage_voice(db: sqlite_utils.Database, principal: Principal, profile: dict[str, Any]) -> None:
    """Rename, merge or delete a profile: the workspace's admins, or the member who enrolled it."""
    role = can_see_voices(db, principal, profile["workspace_id"])
    if LEVEL[principal.scope] < LEVEL["transcribe"]:
        raise Forbidden("This needs transcribe access.")
    if role == "admin" or (role == "member" and profile.get("created_by") == principal.user.id):
        return
    raise Forbidden("Only the workspace's admins, or the member who enrolled this voice, can change it.")
