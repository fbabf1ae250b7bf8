"""schemathesis against the OpenAPI document: generated requests never cause a server error.

Driven through hypothesis directly (schemathesis' pytest plugin does not load under pytest 9).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from cloud.config import CloudSettings
from cloud.main import create_app
from tests.cloud.factories import register, token_for

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def test_no_generated_request_causes_a_server_error(sessions) -> None:
    register(sessions, "dev-1", site="hb")
    token = token_for(sessions, "admin")
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(CloudSettings(), sessions))
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(operation.as_strategy())
        @settings(
            max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} "
                    f"{response.text[:200]}"
                )

        run()
    assert failures == []
