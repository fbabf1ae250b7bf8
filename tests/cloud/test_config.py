"""The cloud refuses to run in production on missing or placeholder secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cloud.config import CloudSettings

STRONG = "x9T2kq7VbWf3Lr8mZp4Yc1Nd"


def production(**values: object) -> CloudSettings:
    return CloudSettings.model_validate(
        {
            "environment": "production",
            "mqtt_username": "crowdfix-cloud",
            "webhook_key": STRONG,
            **values,
        }
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
        ({"mqtt_password": STRONG, "webhook_key": None}, "CROWDFIX_WEBHOOK_KEY"),
        ({"mqtt_password": STRONG, "webhook_key": "changeme"}, "CROWDFIX_WEBHOOK_KEY"),
    ],
)
def test_production_refuses_placeholder_secrets(values: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named) as caught:
        production(**values)
    assert "random secret" in str(caught.value) or "anonymous" in str(caught.value)


def test_the_dispatch_rules_come_from_the_environment(monkeypatch) -> None:
    from datetime import timedelta

    monkeypatch.setenv("CROWDFIX_DISPATCH_OFFER_TIMEOUT_S", "180")
    monkeypatch.setenv("CROWDFIX_DISPATCH_CROWD_ATTEMPTS", "1")
    monkeypatch.setenv("CROWDFIX_DISPATCH_MIN_ACCEPTANCE", "0.7")
    rules = CloudSettings().dispatch_policy()
    assert rules.offer_timeout == timedelta(minutes=3) and rules.crowd_attempts == 1
    assert rules.min_acceptance == 0.7
    assert rules.min_offer_timeout == timedelta(minutes=2) and rules.staff_attempts == 2


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"dispatch_offer_timeout_s": 60}, "CROWDFIX_DISPATCH_MIN_OFFER_TIMEOUT_S"),
        ({"dispatch_offer_timeout_s": 5}, "dispatch_offer_timeout_s"),
        ({"dispatch_min_acceptance": 1.5}, "dispatch_min_acceptance"),
        ({"sla_warning_share": 1}, "sla_warning_share"),
    ],
)
def test_impossible_dispatch_rules_are_refused(values: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        CloudSettings.model_validate(values)


def test_the_dispatch_defaults_shown_in_the_deployment_env_are_the_real_ones() -> None:
    from pathlib import Path

    env = Path(__file__).parents[2] / "deploy" / "cloud.env"
    shown = dict(
        line.removeprefix("# ").split("=", 1)
        for line in env.read_text().splitlines()
        if line.startswith(("# CROWDFIX_DISPATCH_", "# CROWDFIX_SLA_"))
    )
    assert len(shown) == 10
    defaults = CloudSettings()
    for name, value in shown.items():
        field = name.removeprefix("CROWDFIX_").lower()
        assert float(value) == float(getattr(defaults, field)), name


def test_the_map_a_technician_opens_is_the_deployments_choice(monkeypatch) -> None:
    """CROWDFIX_MAP_URL: a template with {lat} and {lon} (OpenStreetMap by default), or empty
    for no link; anything else is refused when the service starts."""
    assert CloudSettings().map_url.startswith("https://www.openstreetmap.org/?mlat={lat}")
    swiss = "https://map.geo.admin.ch/?swisssearch={lat},{lon}"
    monkeypatch.setenv("CROWDFIX_MAP_URL", swiss)
    assert CloudSettings().map_url == swiss
    monkeypatch.setenv("CROWDFIX_MAP_URL", "")
    assert CloudSettings().map_url == ""
    for wrong in ("https://maps.example/", "javascript:alert({lat})", "ftp://x/{lat}"):
        monkeypatch.setenv("CROWDFIX_MAP_URL", wrong)
        with pytest.raises(ValidationError, match="map_url"):
            CloudSettings()
