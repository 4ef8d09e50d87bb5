"""Licence test helpers: a settable clock and a licence issued with the test key (shared by the licensing tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from appliance.licensing import licence as L
from appliance.licensing.vendor import sign
from tests.licensing_keys import TEST_KID, TEST_PRIVATE

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def payload(fp: L.Fingerprint, **changes: Any) -> dict[str, Any]:
    base = {
        "product": L.PRODUCT,
        "schema": L.SCHEMA,
        "license_id": "K-1",
        "serial": 1,
        "customer": "Hospital",
        "features": ["diarization", "api"],
        "limits": {"max_users": 3},
        "issued_at": L.iso(NOW - timedelta(days=1)),
        "not_before": L.iso(NOW - timedelta(days=1)),
        "expires_at": L.iso(NOW + timedelta(days=200)),
        "grace_days": 10,
        "nonce": "n-1",
        "binding": {"machine": fp.machine, "gpus": list(fp.gpus), "min_gpu_match": max(1, len(fp.gpus) - 1) if fp.gpus else 0},
    }
    base.update(changes)
    return base


def issue(fp: L.Fingerprint, key: Any = TEST_PRIVATE, kid: str = TEST_KID, **changes: Any) -> str:
    return sign(payload(fp, **changes), key, kid)
