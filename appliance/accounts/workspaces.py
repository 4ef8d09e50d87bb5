"""Workspaces and memberships: who may see and change which transcripts."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from appliance.core.clock import new_id, now

ROLES = ("admin", "member", "viewer")
RANK = {"viewer": 1, "member": 2, "admin": 3}


def create(db: sqlite_utils.Database, name: str, *, owner_id: str, personal: bool = False) -> str:
    name = (name or "").strip()[:120] or "Workspace"
    workspace_id = new_id()
    db.table("workspaces").insert(
        {
            "id": workspace_id,
            "name": name,
            "personal_user_id": owner_id if personal else None,
            "allow_public_links": 1,
            "created_at": now(),
        }
    )
    db.table("memberships").insert({"workspace_id": workspace_id, "user_id": owner_id, "role": "admin"})
    return workspace_id


def role_of(db: sqlite_utils.Database, workspace_id: str, user_id: str) -> str | None:
    rows = list(db.query("SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?", [workspace_id, user_id]))
    return rows[0]["role"] if rows else None


def for_user(db: sqlite_utils.Database, user_id: str) -> list[dict[str, Any]]:
    return [
        {"id": r["id"], "name": r["name"], "role": r["role"], "personal": r["personal_user_id"] is not None}
        for r in db.query(
            "SELECT w.id, w.name, w.personal_user_id, m.role FROM workspaces w JOIN memberships m ON m.workspace_id = w.id "
            "WHERE m.user_id = ? ORDER BY w.personal_user_id IS NULL, w.name",
            [user_id],
        )
    ]


def members(db: sqlite_utils.Database, workspace_id: str) -> list[dict[str, Any]]:
    return [
        {"user_id": r["user_id"], "email": r["email"], "role": r["role"]}
        for r in db.query(
            "SELECT m.user_id, u.email, m.role FROM memberships m JOIN users u ON u.id = m.user_id "
            "WHERE m.workspace_id = ? ORDER BY u.email",
            [workspace_id],
        )
    ]


def set_member(db: sqlite_utils.Database, workspace_id: str, user_id: str, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    db.execute(
        "INSERT INTO memberships (workspace_id, user_id, role) VALUES (?, ?, ?) "
        "ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
        [workspace_id, user_id, role],
    )


def remove_member(db: sqlite_utils.Database, workspace_id: str, user_id: str) -> None:
    db.execute("DELETE FROM memberships WHERE workspace_id = ? AND user_id = ?", [workspace_id, user_id])


def is_personal(db: sqlite_utils.Database, workspace_id: str) -> bool:
    rows = list(db.query("SELECT personal_user_id FROM workspaces WHERE id = ?", [workspace_id]))
    return bool(rows and rows[0]["personal_user_id"])


# --------------------------------------------------------------------------- invitations (consent to join)


def invite(db: sqlite_utils.Database, workspace_id: str, user_id: str, role: str, invited_by: str) -> None:
    """Offer a membership; nothing changes for the invitee until they accept."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    db.execute(
        "INSERT INTO workspace_invitations (workspace_id, user_id, role, invited_by, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role, invited_by = excluded.invited_by, "
        "created_at = excluded.created_at",
        [workspace_id, user_id, role, invited_by, now()],
    )


def invitations_for(db: sqlite_utils.Database, user_id: str) -> list[dict[str, Any]]:
    return [
        {
            "workspace_id": r["workspace_id"],
            "workspace": r["name"],
            "role": r["role"],
            "invited_by": r["email"],
            "created_at": r["created_at"],
        }
        for r in db.query(
            "SELECT i.workspace_id, w.name, i.role, u.email, i.created_at FROM workspace_invitations i "
            "JOIN workspaces w ON w.id = i.workspace_id LEFT JOIN users u ON u.id = i.invited_by "
            "WHERE i.user_id = ? ORDER BY i.created_at",
            [user_id],
        )
    ]


def pending(db: sqlite_utils.Database, workspace_id: str) -> list[dict[str, Any]]:
    """Invitations not answered yet (shown to the workspace's admins)."""
    return [
        {"user_id": r["user_id"], "email": r["email"], "role": r["role"], "created_at": r["created_at"]}
        for r in db.query(
            "SELECT i.user_id, u.email, i.role, i.created_at FROM workspace_invitations i "
            "JOIN users u ON u.id = i.user_id WHERE i.workspace_id = ? ORDER BY u.email",
            [workspace_id],
        )
    ]


def answer(db: sqlite_utils.Database, workspace_id: str, user_id: str, *, accept: bool) -> str | None:
    """Accept (become a member with the offered role) or decline; returns the role, or None if there was
    no such invitation."""
    rows = list(
        db.query("SELECT role FROM workspace_invitations WHERE workspace_id = ? AND user_id = ?", [workspace_id, user_id])
    )
    if not rows:
        return None
    db.execute("DELETE FROM workspace_invitations WHERE workspace_id = ? AND user_id = ?", [workspace_id, user_id])
    if accept:
        set_member(db, workspace_id, user_id, rows[0]["role"])
    return str(rows[0]["role"])


def allows_public_links(db: sqlite_utils.Database, workspace_id: str | None) -> bool:
    """The workspace's policy on links anyone can open (encrypted or not); True where there is none."""
    rows = list(db.query("SELECT allow_public_links FROM workspaces WHERE id = ?", [workspace_id]))
    return not rows or bool(rows[0]["allow_public_links"])


def set_public_links(db: sqlite_utils.Database, workspace_id: str, allowed: bool) -> None:
    db.execute("UPDATE workspaces SET allow_public_links = ? WHERE id = ?", [int(allowed), workspace_id])
