from pathlib import Path

import pytest

from appliance.accounts import audit, workspaces
from appliance.accounts import users as accounts
from appliance.core import migrations
from appliance.core.db import connect


@pytest.fixture
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = connect(tmp_path / "a.db")
    migrations.apply(database)
    return database


def test_passwords_are_argon2id_and_emails_normalised(db) -> None:  # type: ignore[no-untyped-def]
    user = accounts.create(db, "  Alice@Example.ORG ", "correct horse battery", "admin")
    assert user.email == "alice@example.org"
    stored = next(iter(db.query("SELECT password_hash FROM users")))["password_hash"]
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert user.personal_workspace_id and workspaces.role_of(db, user.personal_workspace_id, user.id) == "admin"
    with pytest.raises(accounts.AccountError, match="already exists"):
        accounts.create(db, "alice@example.org", "another long one", "member")
    with pytest.raises(accounts.AccountError, match="valid e-mail"):
        accounts.create(db, "not an address", "another long one", "member")
    with pytest.raises(accounts.AccountError, match="role"):
        accounts.create(db, "x@example.org", "another long one", "owner")


def test_lockout_expires_and_success_resets(db) -> None:  # type: ignore[no-untyped-def]
    accounts.create(db, "bob@example.org", "correct horse battery")
    for _ in range(3):
        with pytest.raises(accounts.SignInFailed):
            accounts.authenticate(db, "bob@example.org", "wrong", max_failures=3, lockout_minutes=15)
    with pytest.raises(accounts.SignInFailed):  # locked: the right password is refused too
        accounts.authenticate(db, "bob@example.org", "correct horse battery", max_failures=3, lockout_minutes=15)
    db.execute("UPDATE users SET locked_until = '2000-01-01T00:00:00.000Z'")  # the lock has run out
    assert accounts.authenticate(db, "bob@example.org", "correct horse battery", max_failures=3, lockout_minutes=15)
    assert next(iter(db.query("SELECT failed_logins FROM users")))["failed_logins"] == 0


def test_expired_invite_is_refused(db) -> None:  # type: ignore[no-untyped-def]
    admin = accounts.create(db, "alice@example.org", "correct horse battery", "admin")
    token = accounts.invite(db, "new@example.org", "member", admin.id)
    db.execute("UPDATE invites SET expires_at = '2000-01-01T00:00:00.000Z'")
    with pytest.raises(accounts.AccountError, match="not valid"):
        accounts.accept_invite(db, token, "a long password")


def test_audit_csv_neutralises_formulas(db) -> None:  # type: ignore[no-untyped-def]
    audit.record(db, "sign_in.failed", actor='=HYPERLINK("http://evil")', ip="127.0.0.1")
    text = audit.to_csv(db)
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text
