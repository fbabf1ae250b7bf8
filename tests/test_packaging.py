"""The edge install stays small: no web framework, ORM or InfluxDB client on a Pi."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import ROOT

CLOUD_ONLY = {
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "influxdb-client",
    "influxdb_client",
    "starlette",
    "prometheus-client",
    "prometheus_client",
    "amqtt",
}


FORBIDDEN_MODULES = {n.replace("-", "_") for n in CLOUD_ONLY} | {"cloud", "rich"}


def _names(requirements: list[str]) -> set[str]:
    import re

    return {re.split(r"[\[<>=~!; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_edge_extra_declares_no_cloud_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    edge = _names(project["dependencies"]) | _names(project["optional-dependencies"]["edge"])
    assert {"paho-mqtt", "gpiozero", "pydantic", "pyyaml"} <= edge
    assert not edge & CLOUD_ONLY


@pytest.mark.slow
def test_installing_the_edge_extra_resolves_no_cloud_package(tmp_path) -> None:
    """What pip would really install for `.[edge]`, transitive dependencies included."""
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            f"{ROOT}[edge]",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 and "No matching distribution" in result.stderr:
        pytest.skip(f"package index not reachable: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stderr
    installed = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert {"paho-mqtt", "gpiozero", "pydantic"} <= installed
    assert not installed & CLOUD_ONLY, installed & CLOUD_ONLY


def test_the_agent_run_path_imports_no_cloud_module() -> None:
    code = (
        "import sys\n"
        "import crowdfix.cli, edge_agent.app, edge_agent.hardware.buttons\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        f"print(sorted(top & set({sorted(FORBIDDEN_MODULES)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
