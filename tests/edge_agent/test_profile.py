"""Device profiles: every shipped profile loads; a bad file says which file and which field."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.errors import ProfileError
from edge_agent.profile import load_profile
from tests.conftest import ROOT

PROFILES = sorted((ROOT / "firmware_configs").glob("*.yaml"))


def test_there_are_at_least_two_profiles() -> None:
    assert len(PROFILES) >= 2


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_shipped_profile_loads(path: Path) -> None:
    profile = load_profile(path)
    assert profile.profile == path.stem, "profile name should match the file name"
    assert len(profile.config_hash()) == 16


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_a_bad_field_is_named_with_the_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "profile: pos\nbuttons:\n  - {name: till, pin: GPIO17, category: till}\n"
        "  - {name: printer, pin: GPIO99x, category: printer}\n",
    )
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    text = str(caught.value)
    assert str(path) in text and "buttons[1].pin" in text and "GPIO99x" in text


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "profile: pos\nheartbeat_intervall_s: 10\n")
    with pytest.raises(ProfileError, match="heartbeat_intervall_s: Extra inputs"):
        load_profile(path)


def test_yaml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "profile: pos\nbuttons: [\n  - name: x\n")
    with pytest.raises(ProfileError, match=r"not valid YAML at line \d+"):
        load_profile(path)


def test_duplicate_pins_are_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "profile: pos\nbuttons:\n  - {name: a, pin: 17, category: x}\n"
        "  - {name: b, pin: 17, category: y}\n",
    )
    with pytest.raises(ProfileError, match="button pin used twice: 17"):
        load_profile(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read device profile"):
        load_profile(tmp_path / "nope.yaml")


def test_check_config_command_reports_each_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from crowdfix.cli import app

    bad = _write(tmp_path, "profile: Bad Name\n")
    result = CliRunner().invoke(app, ["agent", "check-config", str(PROFILES[0]), str(bad)])
    assert result.exit_code == 1
    assert f"{PROFILES[0]}: ok" in result.output
    assert "profile: String should match pattern" in result.output
