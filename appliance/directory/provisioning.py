"""Directory accounts here: created at their first sign-in (just in time), their role and workspace
memberships set from their groups at every sign-in, disabled when the directory disables them."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

import sqlite_utils

from appliance.accounts import sessions, workspaces
from appliance.accounts import users as accounts
from appliance.core.config import GroupMapSettings
from appliance.core.db import transaction

RANK = {"viewer": 1, "member": 2, "admin": 3}


class ProvisioningRefused(Exception):
    """The directory said yes, but this appliance does not let the account in; the message is for the log
    and the audit entry, the person sees the usual sign-in failure."""


def normalise_group(group: str) -> str:
    """Groups compare case-insensitively, and DNs with or without spaces after commas."""
    return re.sub(r"\s*,\s*", ",", group.strip()).lower()


@dataclass(frozen=True)
class GroupMap:
    roles: dict[str, str]  # normalised group -> role
    workspaces: dict[str, list[tuple[str, str]]]  # normalised group -> [(workspace name, role)]
    default_role: str

    @classmethod
    def from_settings(cls, settings: GroupMapSettings) -> GroupMap:
        roles: dict[str, str] = {}
        for entry in settings.roles:
            group, _, role = entry.rpartition("->")
            roles[normalise_group(group)] = role.strip()
        places: dict[str, list[tuple[str, str]]] = {}
        for entry in settings.workspaces:
            group, _, target = entry.rpartition("->")
            name, _, role = target.rpartition(":")
            places.setdefault(normalise_group(group), []).append((name.strip(), role.strip()))
        return cls(roles, places, settings.default_role)

    def role_for(self, groups: frozenset[str] | set[str]) -> str | None:
        matched = [self.roles[g] for g in map(normalise_group, groups) if g in self.roles]
        return max(matched, key=RANK.__getitem__) if matched else (self.default_role or None)

    def workspaces_for(self, groups: frozenset[str] | set[str]) -> dict[str, str]:
        """Workspace name -> the highest role any of the user's groups gives there."""
        found: dict[str, str] = {}
        for group in map(normalise_group, groups):
            for name, role in self.workspaces.get(group, []):
                if name not in found or RANK[role] > RANK[found[name]]:
                    found[name] = role
        return found

    @property
    def managed_workspaces(self) -> set[str]:
        """Workspaces whose membership the directory decides (the ones named in the map)."""
        return {name for targets in self.workspaces.values() for name, _ in targets}


def _workspace_ids(db: sqlite_utils.Database, names: set[str]) -> dict[str, str]:
    if not names:
        return {}
    marks = ",".join("?" * len(names))
    return {
        r["name"]: r["id"]
        for r in db.query(f"SELECT id, name FROM workspaces WHERE personal_user_id IS NULL AND name IN ({marks})", sorted(names))
    }


def provision(
    db: sqlite_utils.Database, group_map: GroupMap, *, source: str, external_id: str, email: str, groups: frozenset[str]
) -> accounts.User:
    """The local account of a directory user who just proved their password, created if new, with role
    and memberships from their groups. Refuses (ProvisioningRefused) an address a local account has
    (the local one keeps its password: it may be the break-glass admin) and users in no mapped group
    when there is no default role."""
    if not email:
        raise ProvisioningRefused("the directory has no e-mail address for this account")
    role = group_map.role_for(groups)
    if role is None:
        raise ProvisioningRefused("in no group that maps to a role, and group_map.default_role is empty")
    rows = list(db.query("SELECT id, source FROM users WHERE external_id = ? AND source = ?", [external_id, source]))
    if not rows:
        rows = list(db.query("SELECT id, source FROM users WHERE email = ?", [email]))
        if rows and rows[0]["source"] != source:
            raise ProvisioningRefused(f"a {rows[0]['source']} account already has the address {email}")
    with transaction(db):
        # A new account's local password hash is of a random secret nobody knows: the directory checks passwords.
        user_id = rows[0]["id"] if rows else accounts.create(db, email, secrets.token_urlsafe(32), role).id
        db.execute(
            "UPDATE users SET source = ?, external_id = ?, email = ?, role = ?, groups = ?, last_login_at = ? WHERE id = ?",
            [source, external_id, email, role, json.dumps(sorted(groups)), _now(), user_id],
        )
        wanted = group_map.workspaces_for(groups)
        ids = _workspace_ids(db, group_map.managed_workspaces)
        for name, workspace_id in ids.items():
            if name in wanted:
                workspaces.set_member(db, workspace_id, user_id, wanted[name])
            elif workspaces.role_of(db, workspace_id, user_id) is not None:
                workspaces.remove_member(db, workspace_id, user_id)
    user = accounts.get(db, user_id)
    assert user is not None
    return user


def _now() -> str:
    from appliance.core.clock import now

    return now()


def disable(db: sqlite_utils.Database, user_id: str) -> None:
    """The directory disabled (or removed) the account: disabled here too, signed out everywhere."""
    with transaction(db):
        accounts.set_disabled(db, user_id, True)
        sessions.end_all(db, user_id)


def directory_accounts(db: sqlite_utils.Database, source: str) -> list[dict[str, str]]:
    return list(db.query("SELECT id, email, external_id FROM users WHERE source = ? AND disabled = 0", [source]))
