"""Sign-in with a directory account (LDAP / Active Directory), and the periodic check that signs out the
accounts the directory has disabled or removed. Across domains: the licence (feature "sso"), the
directory, the local accounts and the audit log."""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlite_utils

from appliance.accounts import audit
from appliance.accounts import users as accounts
from appliance.core.clock import now
from appliance.core.config import Settings
from appliance.core.egress_broker import Connector
from appliance.directory import provisioning
from appliance.directory.ldap import Directory, DirectoryUnavailable
from appliance.directory.provisioning import GroupMap

log = logging.getLogger(__name__)
SOURCE = "ldap"
FEATURE = "sso"


class NotLicensed(Exception):
    """Directory sign-in is configured but the licence does not include it (now)."""


class DirectorySignIn:
    def __init__(self, settings: Settings, connector: Connector, licensed: Any) -> None:
        """`licensed()`: the features the licence allows now (a list of names)."""
        self.directory = Directory(settings.ldap, connector) if settings.ldap.url else None
        self.group_map = GroupMap.from_settings(settings.group_map)
        self.settings = settings
        self._licensed = licensed

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def handles(self, db: sqlite_utils.Database, login: str) -> bool:
        """Whether a sign-in goes to the directory: it is configured, and the name is not a local
        account's (local accounts, the break-glass admin among them, always sign in here, directory up or down)."""
        if self.directory is None:
            return False
        rows = list(db.query("SELECT source FROM users WHERE email = ?", [(login or "").strip().lower()]))
        return not rows or rows[0]["source"] == SOURCE

    def handles_local(self, db: sqlite_utils.Database, user_id: str) -> bool:
        """Whether an account's password is checked here (a local account) rather than by the directory."""
        rows = list(db.query("SELECT source FROM users WHERE id = ?", [user_id]))
        return not rows or rows[0]["source"] != SOURCE

    def sign_in(self, db: sqlite_utils.Database, login: str, password: str, *, ip: str | None) -> accounts.User:
        """The local account of a directory user whose password the directory accepted. Raises
        accounts.SignInFailed (audited with the reason), NotLicensed, or DirectoryUnavailable."""
        assert self.directory is not None
        actor = (login or "")[:254].lower()
        if FEATURE not in self._licensed():
            audit.record(db, "sign_in.failed", actor=actor, ip=ip, detail={"via": SOURCE, "reason": "not licensed"})
            raise NotLicensed()
        try:
            found = self.directory.sign_in(login, password)
        except DirectoryUnavailable as exc:
            log.warning("directory sign-in: %s", exc)
            audit.record(db, "sign_in.failed", actor=actor, ip=ip, detail={"via": SOURCE, "reason": "directory unavailable"})
            raise
        if found is None:
            self._fail(db, actor, ip, "unknown user or wrong password")
        assert found is not None
        if found.disabled:
            self._disable_known(db, found.dn)
            self._fail(db, actor, ip, "disabled in the directory")
        try:
            user = provisioning.provision(
                db, self.group_map, source=SOURCE, external_id=found.dn, email=found.email, groups=found.groups
            )
        except provisioning.ProvisioningRefused as exc:
            self._fail(db, actor, ip, str(exc))
        if user.disabled:
            self._fail(db, actor, ip, "disabled on this appliance")
        return user

    def check_password(self, db: sqlite_utils.Database, user_id: str, password: str) -> bool:
        """The directory password of a directory account (a step-up check before a sensitive change)."""
        rows = list(db.query("SELECT external_id FROM users WHERE id = ? AND source = ?", [user_id, SOURCE]))
        if self.directory is None or not rows or FEATURE not in self._licensed():
            return False
        try:
            return self.directory.check_password(rows[0]["external_id"], password)
        except DirectoryUnavailable as exc:
            log.warning("directory password check: %s", exc)
            return False

    def _fail(self, db: sqlite_utils.Database, actor: str, ip: str | None, reason: str) -> None:
        audit.record(db, "sign_in.failed", actor=actor, ip=ip, detail={"via": SOURCE, "reason": reason})
        raise accounts.SignInFailed()

    def _disable_known(self, db: sqlite_utils.Database, dn: str) -> None:
        for row in db.query("SELECT id, email FROM users WHERE source = ? AND external_id = ? AND disabled = 0", [SOURCE, dn]):
            provisioning.disable(db, row["id"])
            audit.record(
                db, "user.disabled", actor="directory", target=row["email"], detail={"reason": "disabled in the directory"}
            )

    def sync(self, db: sqlite_utils.Database) -> dict[str, Any]:
        """Check every enabled directory account against the directory now: disabled or gone ones are
        disabled here and signed out; the others get their role and workspaces from their groups."""
        assert self.directory is not None
        checked = disabled = 0
        error = None
        try:
            for row in provisioning.directory_accounts(db, SOURCE):
                found = self.directory.lookup(row["external_id"])
                checked += 1
                if found is None or found.disabled:
                    provisioning.disable(db, row["id"])
                    disabled += 1
                    reason = "gone from the directory" if found is None else "disabled in the directory"
                    audit.record(db, "user.disabled", actor="directory", target=row["email"], detail={"reason": reason})
                    continue
                try:
                    provisioning.provision(
                        db, self.group_map, source=SOURCE, external_id=found.dn, email=found.email, groups=found.groups
                    )
                except provisioning.ProvisioningRefused as exc:
                    log.warning("directory sync: %s: %s", row["email"], exc)
        except DirectoryUnavailable as exc:
            error = str(exc)
            log.warning("directory sync: %s", exc)
        result = {"at": now(), "checked": checked, "disabled": disabled, "error": error}
        db.table("directory_syncs").insert(result)
        db.execute("DELETE FROM directory_syncs WHERE id NOT IN (SELECT id FROM directory_syncs ORDER BY id DESC LIMIT 50)")
        return result


def last_sync(db: sqlite_utils.Database) -> dict[str, Any] | None:
    rows = list(db.query("SELECT at, checked, disabled, error FROM directory_syncs ORDER BY id DESC LIMIT 1"))
    return rows[0] if rows else None


def directory_accounts(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """What the admin page lists: each directory account with its role and groups at the last sign-in."""
    return [
        {**r, "groups": json.loads(r["groups"] or "[]"), "disabled": bool(r["disabled"])}
        for r in db.query(
            "SELECT email, role, disabled, external_id, groups, last_login_at FROM users WHERE source = ? ORDER BY email",
            [SOURCE],
        )
    ]


def shared_workspace_names(db: sqlite_utils.Database) -> set[str]:
    """The shared workspaces a group map may name (the admin page flags a mapped one that does not exist)."""
    return {r["name"] for r in db.query("SELECT name FROM workspaces WHERE personal_user_id IS NULL")}
