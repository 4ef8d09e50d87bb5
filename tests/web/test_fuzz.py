"""Property-based fuzzing over the OpenAPI document (schemathesis): no input may cause a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error

from appliance.core.config import load
from tests.support import FakeRecognizer, LiveServer, bootstrap

state: dict[str, Any] = {}


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from appliance.web.app import create_app

    root = tmp_path_factory.mktemp("fuzz")
    settings = load(
        None,
        {
            "APPLIANCE_DATA_DIR": str(root),
            "APPLIANCE_QUOTAS__REQUESTS_PER_MINUTE": "100000",
            "APPLIANCE_QUOTAS__CONCURRENT_JOBS": "1000",
            "APPLIANCE_WORKER__MAX_QUEUED_JOBS": "1000",
        },
    )
    state["key"] = bootstrap(settings)
    with LiveServer(create_app(settings, recognizer=FakeRecognizer())) as server:
        yield schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json")


def test_no_server_errors(live_api: Any) -> None:
    # schemathesis' pytest plugin does not load under this pytest; drive its strategies with hypothesis.
    from hypothesis import given

    operations = [result.ok() for result in live_api.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {state['key']}"})
            case.validate_response(response, checks=[not_a_server_error])

        run()
