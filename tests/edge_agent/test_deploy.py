"""The Pi deployment files match the code: the unit's command runs, its settings exist."""

from __future__ import annotations

import configparser
import subprocess
import sys

from edge_agent.settings import ENV_PREFIX, AgentSettings
from tests.conftest import ROOT

UNIT = ROOT / "deploy" / "edge" / "crowdfix-agent.service"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_runs_the_lean_entry_point_unprivileged_with_persistent_state() -> None:
    service = _unit()["Service"]
    assert service["ExecStart"].startswith("/opt/crowdfix/venv/bin/python -m edge_agent")
    assert service["User"] == "crowdfix" and "gpio" in service["SupplementaryGroups"]
    assert service["StateDirectory"] == "crowdfix-agent"
    assert service["Restart"] == "always"
    assert "CROWDFIX_AGENT_STATE_DIR=/var/lib/crowdfix-agent" in UNIT.read_text()


def test_every_agent_variable_in_the_deploy_files_is_a_setting() -> None:
    names = set()
    for text in (UNIT.read_text(), (ROOT / "deploy/edge/agent.env.example").read_text()):
        for word in text.replace("=", " ").split():
            if word.lstrip("#").startswith(ENV_PREFIX):
                names.add(word.lstrip("#").removeprefix(ENV_PREFIX).lower())
    assert names and names <= set(AgentSettings.model_fields)


def test_the_lean_entry_point_has_the_same_options_and_fails_clearly(tmp_path) -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "edge_agent", "--help"], capture_output=True, text=True, check=True
    )
    for option in ("--config", "--device-id", "--broker", "--state-dir", "--pins"):
        assert option in helped.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "edge_agent", "--config", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert failed.returncode == 2
    assert "device_id: Field required" in failed.stderr and "CROWDFIX_AGENT_" in failed.stderr
