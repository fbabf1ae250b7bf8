"""Help buttons on gpiozero's mock pins."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory

from edge_agent.errors import HardwareError
from edge_agent.hardware.buttons import HelpButtons
from edge_agent.hardware.pins import is_raspberry_pi, make_pin_factory, mock_pin
from edge_agent.profile import ButtonSpec
from tests.helpers import wait_for


def _ignore(*_args: object) -> None:
    pass


def test_press_and_release_edges_reach_the_callback() -> None:
    factory = MockFactory()
    edges: list[tuple[str, bool]] = []
    specs = [
        ButtonSpec(name="till", pin="GPIO17", category="till", bounce_ms=0),
        ButtonSpec(name="printer", pin=27, category="printer", bounce_ms=0),
    ]
    buttons = HelpButtons(specs, factory, lambda name, down, _at: edges.append((name, down)))
    try:
        mock_pin(factory, 27).drive_low()
        mock_pin(factory, 27).drive_high()
        mock_pin(factory, "GPIO17").drive_low()
        wait_for(lambda: len(edges) == 3, 2, "three edges")
        assert edges == [("printer", True), ("printer", False), ("till", True)]
    finally:
        buttons.close()


def test_a_pin_in_use_is_a_hardware_error() -> None:
    factory = MockFactory()
    first = HelpButtons([ButtonSpec(name="a", pin=17, category="x")], factory, _ignore)
    try:
        with pytest.raises(HardwareError, match="button 'b' on pin 17"):
            HelpButtons([ButtonSpec(name="b", pin=17, category="x")], factory, _ignore)
    finally:
        first.close()


def test_mock_pins_are_chosen_off_a_pi(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    assert not is_raspberry_pi(tmp_path / "no-model")
    model = tmp_path / "model"
    model.write_text("Raspberry Pi 4 Model B Rev 1.4\x00")
    assert is_raspberry_pi(model)
    assert isinstance(make_pin_factory("mock"), MockFactory)
    assert isinstance(make_pin_factory("auto"), MockFactory)


def test_software_presses_need_mock_pins() -> None:
    with pytest.raises(HardwareError, match="mock pins"):
        mock_pin(object(), 17)
