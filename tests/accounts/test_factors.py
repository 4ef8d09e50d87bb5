"""Second factors on a real SQLite file: TOTP codes computed by an authenticator's algorithm in the test,
replays, recovery codes, the per-role requirement and the pending sign-in token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest

from appliance.accounts import factors
from appliance.accounts import users as accounts
from appliance.core import migrations
from appliance.core.clock import ago
from appliance.core.db import connect


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = connect(tmp_path / "f.db")
    migrations.apply(database)
    return database


def _rfc6238(secret: str, step: int) -> str:
    """What an authenticator app computes (RFC 4226 truncation of HMAC-SHA1 over the 30-second step),
    written out here so the check does not rest on the library the appliance uses."""
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def _enrolled(db: Any, email: str = "t@example.org", role: str = "member") -> tuple[accounts.User, str, list[str]]:
    user = accounts.create(db, email, "a long enough password", role)
    enrolment = factors.start_totp(db, user)
    codes = factors.confirm_totp(db, user.id, _rfc6238(enrolment.secret, int(time.time()) // 30))
    return user, enrolment.secret, codes


def test_enrolment_gives_a_scannable_secret_and_needs_a_right_code(db: Any) -> None:
    user = accounts.create(db, "e@example.org", "a long enough password", "member")
    enrolment = factors.start_totp(db, user)
    assert enrolment.uri == pyotp.TOTP(enrolment.secret).provisioning_uri(name="e@example.org", issuer_name="Sotto")
    assert enrolment.qr_svg.startswith("<svg") and "<script" not in enrolment.qr_svg
    assert enrolment.qr_data_uri.startswith("data:image/svg+xml")
    assert len(base64.b32decode(enrolment.secret)) == 20  # 160 bits
    assert not factors.has_factor(db, user.id)  # not before the first code
    with pytest.raises(factors.FactorError):
        factors.confirm_totp(
            db, user.id, "000000" if _rfc6238(enrolment.secret, int(time.time()) // 30) != "000000" else "111111"
        )
    codes = factors.confirm_totp(db, user.id, pyotp.TOTP(enrolment.secret).now())
    assert factors.has_totp(db, user.id) and len(codes) == 10 and len(set(codes)) == 10
    with pytest.raises(factors.FactorError, match="already set up"):
        factors.start_totp(db, user)


def test_a_code_is_accepted_once_and_an_older_one_never_after(db: Any) -> None:
    user, secret, _ = _enrolled(db)
    step = next(iter(db.query("SELECT last_step FROM user_totp WHERE user_id = ?", [user.id])))["last_step"]
    assert step in (int(time.time()) // 30, int(time.time()) // 30 - 1)
    # The enrolment used this step's code: the same code again is a replay.
    assert factors.verify_code(db, user.id, _rfc6238(secret, step)) is None
    # Next step's code (a phone clock a little ahead) passes, once; then the current one is older: refused.
    assert factors.verify_code(db, user.id, _rfc6238(secret, step + 1)) == "totp"
    assert factors.verify_code(db, user.id, _rfc6238(secret, step + 1)) is None
    assert factors.verify_code(db, user.id, _rfc6238(secret, step)) is None
    # Outside the drift window: refused however new.
    assert factors.verify_code(db, user.id, _rfc6238(secret, step + 3)) is None
    assert factors.verify_code(db, user.id, "12345") is None and factors.verify_code(db, user.id, "abcdef") is None


def test_recovery_codes_work_once_each_and_only_their_hashes_are_stored(db: Any) -> None:
    user, _, codes = _enrolled(db)
    stored = [r["code_hash"] for r in db.query("SELECT code_hash FROM recovery_codes WHERE user_id = ?", [user.id])]
    assert len(stored) == 10 and not any(c.replace("-", "") in h for c in codes for h in stored)
    assert factors.verify_code(db, user.id, codes[0].upper().replace("-", " ")) == "recovery"  # as typed off paper
    assert factors.verify_code(db, user.id, codes[0]) is None
    assert factors.recovery_codes_left(db, user.id) == 9
    renewed = factors.new_recovery_codes(db, user.id)
    assert factors.verify_code(db, user.id, codes[1]) is None  # the old set is gone
    assert factors.verify_code(db, user.id, renewed[1]) == "recovery"


def test_removing_the_app_removes_its_recovery_codes(db: Any) -> None:
    user, _, codes = _enrolled(db)
    factors.remove_totp(db, user.id)
    assert not factors.has_factor(db, user.id)
    assert factors.verify_code(db, user.id, codes[2]) is None


def test_roles_that_require_a_factor(db: Any) -> None:
    viewer = accounts.create(db, "v@example.org", "a long enough password", "viewer")
    admin, _, _ = _enrolled(db, "a@example.org", "admin")
    assert not factors.enrolment_needed(db, viewer)
    factors.set_required_roles(db, {"admin", "viewer"})
    assert factors.required_roles(db) == {"admin", "viewer"}
    assert factors.enrolment_needed(db, viewer) and not factors.enrolment_needed(db, admin)
    with pytest.raises(factors.FactorError, match="Unknown role"):
        factors.set_required_roles(db, {"owner"})


def test_pending_sign_in_is_single_use_short_lived_and_dies_after_wrong_codes(db: Any) -> None:
    user, _, _ = _enrolled(db)
    token = factors.begin_pending(db, user.id)
    assert factors.pending_user(db, token) == user.id
    assert factors.finish_pending(db, token) and not factors.finish_pending(db, token)
    assert factors.pending_user(db, token) is None
    stale = factors.begin_pending(db, user.id)
    db.execute("UPDATE pending_logins SET expires_at = ?", [ago(1)])
    assert factors.pending_user(db, stale) is None and not factors.finish_pending(db, stale)
    guessed = factors.begin_pending(db, user.id)
    for _ in range(factors.PENDING_FAILURES - 1):
        factors.pending_failed(db, guessed)
    assert factors.pending_user(db, guessed) == user.id
    factors.pending_failed(db, guessed)
    assert factors.pending_user(db, guessed) is None
    # Only the token's hash is stored.
    assert not list(db.query("SELECT 1 FROM pending_logins WHERE id = ?", [guessed]))


def test_reset_removes_every_factor(db: Any) -> None:
    user, _, _ = _enrolled(db)
    factors.reset(db, user.id)
    assert not factors.has_factor(db, user.id) and factors.recovery_codes_left(db, user.id) == 0
