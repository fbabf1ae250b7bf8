"""The cloud refuses to run in production on missing or placeholder secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cloud.config import CloudSettings

STRONG = "x9T2kq7VbWf3Lr8mZp4Yc1Nd"


def production(**values: object) -> CloudSettings:
    return CloudSettings.model_validate(
        {"environment": "production", "mqtt_username": "crowdfix-cloud", **values}
    )


def test_development_runs_on_defaults() -> None:
    assert CloudSettings().mqtt_password is None


def test_production_runs_on_real_secrets() -> None:
    settings = production(
        mqtt_password=STRONG,
        influx_url="http://influxdb:8086",
        influx_token=STRONG,
        database_url=f"postgresql+psycopg://crowdfix:{STRONG}@postgres/crowdfix",
    )
    assert settings.environment == "production"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({}, "CROWDFIX_MQTT_PASSWORD"),
        ({"mqtt_password": "changeme"}, "CROWDFIX_MQTT_PASSWORD"),
        ({"mqtt_password": "short"}, "CROWDFIX_MQTT_PASSWORD"),
        (
            {"mqtt_password": STRONG, "influx_url": "http://influxdb:8086"},
            "CROWDFIX_INFLUX_TOKEN",
        ),
        (
            {
                "mqtt_password": STRONG,
                "database_url": "postgresql+psycopg://crowdfix:crowdfix@postgres/crowdfix",
            },
            "CROWDFIX_DATABASE_URL",
        ),
        ({"mqtt_password": STRONG, "mqtt_username": None}, "CROWDFIX_MQTT_USERNAME"),
    ],
)
def test_production_refuses_placeholder_secrets(values: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named) as caught:
        production(**values)
    assert "random secret" in str(caught.value) or "anonymous" in str(caught.value)
