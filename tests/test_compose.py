"""docker-compose.yml is right by construction: every file, service and command it names exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from crowdfix.cli import app
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
# Made by the operator before the first start (docs/operations.md), never committed.
GENERATED = ("secrets/",)


def test_the_stack_has_its_parts() -> None:
    assert {"mosquitto", "postgres", "influxdb", "api", "ingest"} <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_is_buildable_or_pulled(name: str) -> None:
    service = SERVICES[name]
    assert ("image" in service) != ("build" in service), "image xor build"
    if "build" in service:
        context = ROOT / service["build"]["context"]
        assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file()
    else:
        assert re.fullmatch(r"[a-z0-9./-]+:[\w.-]+", service["image"]), "pin an image tag"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_referenced_file_exists(name: str) -> None:
    service = SERVICES[name]
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            rel = source.removeprefix("./")
            assert (ROOT / rel).exists() or rel.startswith(GENERATED), f"{source} is missing"
    env_files = service.get("env_file", [])
    for env_file in [env_files] if isinstance(env_files, str) else env_files:
        assert (ROOT / env_file).is_file()


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dependencies_and_volumes_are_declared(name: str) -> None:
    service = SERVICES[name]
    assert set(service.get("depends_on", {})) <= set(SERVICES)
    named = {v.split(":")[0] for v in service.get("volumes", []) if not v.startswith(".")}
    assert named <= set(COMPOSE.get("volumes", {}))


@pytest.mark.parametrize("name", ["api", "ingest"])
def test_cloud_commands_exist(name: str) -> None:
    command = SERVICES[name]["command"]
    assert command[0] == "crowdfix"
    result = CliRunner().invoke(app, [*command[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_no_secret_is_written_into_the_compose_file() -> None:
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key):
                assert "${" in str(value), f"{name}.{key} must come from .env"


def test_mosquitto_config_files_are_the_ones_mounted() -> None:
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    mounts = {v.split(":")[1] for v in SERVICES["mosquitto"]["volumes"]}
    for line in conf.splitlines():
        if line.startswith(("password_file", "acl_file", "cafile", "certfile", "keyfile")):
            path = Path(line.split()[1])
            assert any(str(path).startswith(m) for m in mounts), f"{path} is not mounted"


def _grafana_mounts() -> dict[str, Path]:
    """Container path → repository path of Grafana's read-only mounts."""
    mounts = {}
    for volume in SERVICES["grafana"]["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = ROOT / source.removeprefix("./")
    return mounts


def test_grafana_is_provisioned_with_the_influxdb_datasource_and_the_fleet_dashboard() -> None:
    from cloud.adapters.influx import MEASUREMENT
    from cloud.config import CloudSettings

    mounts = _grafana_mounts()
    provisioning = mounts["/etc/grafana/provisioning"]
    sources = yaml.safe_load((provisioning / "datasources/influxdb.yaml").read_text())
    (source,) = sources["datasources"]
    influx = SERVICES["influxdb"]["environment"]
    assert source["type"] == "influxdb" and source["jsonData"]["version"] == "Flux"
    assert source["url"] == "http://influxdb:8086"  # the compose service's name and port
    assert source["jsonData"]["organization"] == influx["DOCKER_INFLUXDB_INIT_ORG"]
    assert source["jsonData"]["defaultBucket"] == influx["DOCKER_INFLUXDB_INIT_BUCKET"]
    token = source["secureJsonData"]["token"]
    assert token.startswith("$"), "the token comes from the environment"
    assert token.strip("${}") in SERVICES["grafana"]["environment"]

    (provider,) = yaml.safe_load((provisioning / "dashboards/crowdfix.yaml").read_text())[
        "providers"
    ]
    folder = mounts[provider["options"]["path"]]
    (board_file,) = folder.glob("*.json")
    board = json.loads(board_file.read_text())
    bucket = influx["DOCKER_INFLUXDB_INIT_BUCKET"]
    queries = [t["query"] for p in board["panels"] for t in p["targets"]]
    queries += [v["query"] for v in board["templating"]["list"]]
    for query in queries:
        assert f'bucket: "{bucket}"' in query
        assert f'"{MEASUREMENT}"' in query  # the measurement the ingest writes
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == source["uid"]
    # The tags the dashboard filters on are the ones the ingest writes.
    assert {v["name"] for v in board["templating"]["list"]} == {
        "site",
        "profile",
        "device",
        "signal",
    }
    # The desk links to this dashboard: the configured URL names its uid.
    env = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy/cloud.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    url = env["CROWDFIX_GRAFANA_URL"]
    assert f"/d/{board['uid']}/" in url
    assert CloudSettings(grafana_url=url).grafana_url == url


def test_influx_points_carry_the_tags_the_dashboard_filters_on() -> None:
    from datetime import UTC, datetime

    from cloud.adapters.influx import to_points
    from cloud.telemetry.service import Sample

    sample = Sample("dev-1", "room_c", 4.5, "C", datetime(2026, 1, 1, tzinfo=UTC))
    (point,) = to_points([sample], {"dev-1": ("site-1", "cold-room")})
    line = point.to_line_protocol()
    assert line.startswith("telemetry,device=dev-1,profile=cold-room,site=site-1 room_c=4.5")


def _interpolated(value: str, dotenv: dict[str, str]) -> str:
    """What docker compose makes of `${NAME:?msg}` and `${NAME:-default}` with this .env."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if dotenv.get(name):
            return dotenv[name]
        assert op == ":-", f"{name} is required: {rest}"
        return rest

    return re.sub(r"\$\{(\w+)(:[-?])([^}]*)\}", one, value)


@pytest.mark.parametrize("name", ["api", "ingest"])
@pytest.mark.parametrize("alerts", [False, True])
def test_the_cloud_services_settings_load_from_cloud_env_and_env(
    name: str, alerts: bool, monkeypatch
) -> None:
    """With .env filled in as env.example asks (the optional alert webhook left empty, or
    set), each cloud service's environment makes valid production settings."""
    from cloud.config import CloudSettings

    dotenv = {
        key: "s3cret-" + key.lower() + "-0123456789"
        for key, _, _ in (
            line.partition("=")
            for line in (ROOT / "deploy/env.example").read_text().splitlines()
            if line and not line.startswith("#")
        )
    }
    dotenv["CROWDFIX_ALERT_WEBHOOK_URL"] = "https://chat.example/hooks/abc" if alerts else ""
    if not alerts:
        dotenv["CROWDFIX_ALERT_WEBHOOK_SECRET"] = ""
    service = SERVICES[name]
    for line in (ROOT / service["env_file"]).read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            monkeypatch.setenv(key, value)
    for key, value in service["environment"].items():
        monkeypatch.setenv(key, _interpolated(str(value), dotenv))
    settings = CloudSettings()
    assert settings.environment == "production"
    channel = settings.alert_channel()
    assert channel.url == ("https://chat.example/hooks/abc" if alerts else None)
    assert (settings.alert_webhook_signing_secret() is not None) is alerts
    assert channel.public_url == settings.public_url  # alerts link to the tickets
