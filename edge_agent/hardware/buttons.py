"""Help buttons: gpiozero Buttons whose edges (with their time) go to a callback that only enqueues.

Example (mock pins)::

    from gpiozero.pins.mock import MockFactory
    factory = MockFactory()
    buttons = HelpButtons([ButtonSpec(name="till", pin=17, category="till")], factory, print)
    factory.pin(17).drive_low()   # prints: till True 12345.67
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from edge_agent.errors import HardwareError
from edge_agent.profile import ButtonSpec

EdgeCallback = Callable[[str, bool, float], None]


class HelpButtons:
    """The profile's buttons on real or mock pins; reports (name, pressed, monotonic time)."""

    def __init__(self, specs: Sequence[ButtonSpec], factory: Any, on_edge: EdgeCallback) -> None:
        # DigitalInputDevice rather than Button: gestures are timed here, so gpiozero's
        # per-button hold thread would only cost memory.
        from gpiozero import DigitalInputDevice
        from gpiozero.exc import GPIOZeroError

        self._devices: list[Any] = []
        self._names: list[str] = []
        for spec in specs:
            try:
                button = DigitalInputDevice(
                    spec.pin,
                    pull_up=spec.pull_up,
                    bounce_time=spec.bounce_ms / 1000 or None,
                    pin_factory=factory,
                )
            except (GPIOZeroError, OSError) as exc:
                self.close()
                raise HardwareError(
                    f"cannot set up button {spec.name!r} on pin {spec.pin}: {exc}"
                ) from exc
            name = spec.name
            button.when_activated = lambda _d, n=name: on_edge(n, True, time.monotonic())
            button.when_deactivated = lambda _d, n=name: on_edge(n, False, time.monotonic())
            self._devices.append(button)
            self._names.append(name)

    def held(self) -> list[str]:
        """Names of the buttons down right now (at start, no edge tells)."""
        return [n for n, d in zip(self._names, self._devices, strict=True) if d.is_active]

    def close(self) -> None:
        """Release the pins."""
        for device in self._devices:
            device.close()
        self._devices.clear()
