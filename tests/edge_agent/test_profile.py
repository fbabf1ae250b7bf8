"""Device profiles: every shipped profile loads; a bad file says which file and which field."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.errors import ProfileError
from edge_agent.profile import json_schema, load_profile
from tests.conftest import ROOT

PROFILES = sorted((ROOT / "firmware_configs").glob("*.yaml"))


def test_there_are_at_least_four_profiles() -> None:
    assert len(PROFILES) >= 4


def test_the_committed_json_schema_is_current() -> None:
    committed = (ROOT / "firmware_configs" / "profile.schema.json").read_text()
    assert committed == json_schema(), (
        "run: crowdfix agent schema -o firmware_configs/profile.schema.json"
    )


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_shipped_profile_loads(path: Path) -> None:
    profile = load_profile(path)
    assert profile.profile == path.stem, "profile name should match the file name"
    assert len(profile.config_hash()) == 16
    assert profile.buttons and profile.outputs and profile.collectors and profile.faults
    text = path.read_text()
    assert "Wiring" in text and "$schema=profile.schema.json" in text


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
    with pytest.raises(ProfileError, match="pin used twice: 17"):
        load_profile(path)


def test_a_fault_must_watch_a_signal_that_exists(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "profile: p\ncollectors:\n  - {kind: load_average, name: load}\nfaults:\n"
        "  - {code: hot, when: {kind: threshold, signal: temp, above: 5}}\n",
    )
    with pytest.raises(ProfileError, match=r"watches signal 'temp'.*known: load"):
        load_profile(path)


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("{kind: threshold, signal: load, above: 5, below: 1}", "exactly one of"),
        ("{kind: threshold, signal: load, above: 5, clear_below: 6}", "clear_below must not"),
        ("{kind: rate, signal: load}", "exactly one of"),
        ("{kind: stale, signal: load}", "after_s: Field required"),
        ("{kind: sometimes, signal: load}", "does not match any of the expected tags"),
    ],
)
def test_rule_mistakes_are_explained(tmp_path: Path, when: str, message: str) -> None:
    path = _write(
        tmp_path,
        "profile: p\ncollectors:\n  - {kind: load_average, name: load}\n"
        f"faults:\n  - {{code: f, when: {when}}}\n",
    )
    with pytest.raises(ProfileError, match=message):
        load_profile(path)


def test_the_same_pin_twice_in_different_notations_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "profile: p\nbuttons:\n  - {name: a, pin: GPIO17, category: x}\n"
        "outputs:\n  - {name: led, kind: led, pin: 17}\n",
    )
    with pytest.raises(ProfileError, match="pin used twice: 17"):
        load_profile(path)


def test_spi_pins_are_reserved_when_an_adc_is_used(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "profile: p\nbuttons:\n  - {name: a, pin: GPIO8, category: x}\n"
        "collectors:\n  - {kind: adc, name: t}\n",
    )
    with pytest.raises(ProfileError, match="GPIO 8 belong to SPI0"):
        load_profile(path)


def test_only_pwm_leds_pulse(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "profile: p\noutputs:\n  - {name: led, kind: led, pin: 5, patterns: "
        "{received: {mode: pulse}}}\n",
    )
    with pytest.raises(ProfileError, match="only a pwm_led can pulse"):
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
    assert "4 fault rules" in result.output or "fault rules" in result.output
