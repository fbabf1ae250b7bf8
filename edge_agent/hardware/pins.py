"""Choosing the gpiozero pin factory: real pins on a Raspberry Pi, mock pins anywhere else."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from edge_agent.errors import HardwareError
from edge_agent.settings import PinFactoryChoice

_LOGGER = logging.getLogger(__name__)
_MODEL_FILE = Path("/proc/device-tree/model")


def is_raspberry_pi(model_file: Path = _MODEL_FILE) -> bool:
    """True on a Raspberry Pi (the device tree names the board)."""
    try:
        return "raspberry pi" in model_file.read_text(errors="replace").lower()
    except OSError:
        return False


def make_pin_factory(choice: PinFactoryChoice) -> Any:
    """A gpiozero pin factory; `auto` picks mock pins where there is no GPIO, telling the user."""
    if choice == "mock" or (
        choice == "auto" and not os.environ.get("GPIOZERO_PIN_FACTORY") and not is_raspberry_pi()
    ):
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        if choice == "auto":
            _LOGGER.warning("no Raspberry Pi GPIO found: using gpiozero mock pins")
        return MockFactory(pin_class=MockPWMPin)
    try:
        from gpiozero import Device
        from gpiozero.exc import BadPinFactory

        return Device._default_pin_factory()
    except BadPinFactory as exc:
        raise HardwareError(
            "no GPIO library works here: install python3-lgpio on Raspberry Pi OS, "
            "or run with --pins mock"
        ) from exc


def mock_pin(factory: Any, pin: int | str) -> Any:
    """The MockPin behind a pin name, to press (drive_low) and release (drive_high) it."""
    from gpiozero.pins.mock import MockFactory

    if not isinstance(factory, MockFactory):
        raise HardwareError("pins can only be driven by software on mock pins (--pins mock)")
    return factory.pin(pin)
