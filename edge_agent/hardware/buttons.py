"""Help buttons: gpiozero Buttons whose presses are handed to a callback that only enqueues.

Example (mock pins)::

    from gpiozero.pins.mock import MockFactory
    factory = MockFactory()
    buttons = HelpButtons([ButtonSpec(name="till", pin=17, category="till")], factory, print)
    factory.pin(17).drive_low()   # prints: till
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from edge_agent.errors import HardwareError
from edge_agent.profile import ButtonSpec

_LOGGER = logging.getLogger(__name__)


class HelpButtons:
    """The profile's buttons on real or mock pins."""

    def __init__(
        self, specs: Sequence[ButtonSpec], factory: Any, on_press: Callable[[str], None]
    ) -> None:
        from gpiozero import Button
        from gpiozero.exc import GPIOZeroError

        self._devices: list[Any] = []
        try:
            for spec in specs:
                button = Button(
                    spec.pin,
                    pull_up=spec.pull_up,
                    bounce_time=spec.bounce_ms / 1000 or None,
                    pin_factory=factory,
                )
                button.when_pressed = lambda _dev, name=spec.name: on_press(name)
                self._devices.append(button)
        except (GPIOZeroError, OSError) as exc:
            self.close()
            raise HardwareError(
                f"cannot set up button {spec.name!r} on pin {spec.pin}: {exc}"
            ) from exc

    def close(self) -> None:
        """Release the pins."""
        for device in self._devices:
            device.close()
        self._devices.clear()
