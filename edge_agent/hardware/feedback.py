"""LEDs, PWM LEDs and buzzers showing an Indication by pattern (gpiozero does the blinking).

Example (mock pins)::

    from gpiozero.pins.mock import MockFactory, MockPWMPin
    panel = FeedbackPanel([OutputSpec(name="led", kind="led", pin=23)],
                          MockFactory(pin_class=MockPWMPin))
    panel.show(Indication.RECEIVED)   # the LED turns on
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from edge_agent.errors import HardwareError
from edge_agent.feedback import Indication
from edge_agent.profile import OutputKind, OutputSpec, Pattern

_LOGGER = logging.getLogger(__name__)
_I = Indication


def _blink(on_s: float, off_s: float, repeat: int | None = None) -> Pattern:
    return Pattern(mode="blink", on_s=on_s, off_s=off_s, repeat=repeat)


_OFF, _ON = Pattern(mode="off"), Pattern(mode="on")
# The built-in language of the lights (docs/raspberry-pi.md has the table). A profile can
# override any cell per output.
DEFAULT_PATTERNS: dict[OutputKind, dict[Indication, Pattern]] = {
    "led": {
        _I.IDLE: _OFF,
        _I.PRESSED: _blink(0.1, 0.1, 3),
        _I.QUEUED: _blink(0.15, 1.85),
        _I.RECEIVED: _ON,
        _I.TECHNICIAN_ASSIGNED: _blink(1.0, 1.0),
        _I.EN_ROUTE: _blink(1.0, 1.0),
        _I.ON_SITE: _blink(0.25, 0.25),
        _I.RESOLVED: _blink(0.1, 0.1, 5),
        _I.CANCELLED: _blink(0.6, 0.4, 2),
        _I.ERROR: _blink(0.05, 0.05, 50),
    },
    "pwm_led": {
        _I.IDLE: _OFF,
        _I.PRESSED: _blink(0.1, 0.1, 3),
        _I.QUEUED: _blink(0.15, 1.85),
        _I.RECEIVED: _ON,
        _I.TECHNICIAN_ASSIGNED: Pattern(mode="pulse", on_s=1.0, off_s=1.0),
        _I.EN_ROUTE: Pattern(mode="pulse", on_s=1.0, off_s=1.0),
        _I.ON_SITE: _blink(0.25, 0.25),
        _I.RESOLVED: _blink(0.1, 0.1, 5),
        _I.CANCELLED: _blink(0.6, 0.4, 2),
        _I.ERROR: _blink(0.05, 0.05, 50),
    },
    "buzzer": {
        _I.IDLE: _OFF,
        _I.PRESSED: _blink(0.05, 0.05, 1),
        _I.QUEUED: _OFF,
        _I.RECEIVED: _blink(0.1, 0.1, 2),
        _I.TECHNICIAN_ASSIGNED: _blink(0.1, 0.1, 2),
        _I.EN_ROUTE: _blink(0.1, 0.1, 2),
        _I.ON_SITE: _blink(0.3, 0.1, 1),
        _I.RESOLVED: _blink(0.5, 0.1, 1),
        _I.CANCELLED: _blink(0.1, 0.1, 1),
        _I.ERROR: _blink(0.05, 0.05, 5),
    },
}
TRANSIENT = (_I.PRESSED, _I.RESOLVED, _I.CANCELLED, _I.ERROR)


def pattern_for(spec: OutputSpec, indication: Indication) -> Pattern:
    """The profile's override for this output and state, else the built-in pattern."""
    override = spec.patterns.get(indication)
    return override if override is not None else DEFAULT_PATTERNS[spec.kind][indication]


def transient_durations(specs: Sequence[OutputSpec]) -> dict[Indication, float]:
    """How long each transient state plays: its longest finite pattern (1 s without outputs)."""
    durations: dict[Indication, float] = {}
    for indication in TRANSIENT:
        lengths = [pattern_for(s, indication).duration_s() or 0.0 for s in specs]
        durations[indication] = max([1.0, *lengths])
    return durations


class FeedbackPanel:
    """The profile's outputs; show() switches all of them to a state's patterns."""

    def __init__(self, specs: Sequence[OutputSpec], factory: Any) -> None:
        from gpiozero import LED, PWMLED, Buzzer
        from gpiozero.exc import GPIOZeroError

        kinds = {"led": LED, "pwm_led": PWMLED, "buzzer": Buzzer}
        self._outputs: list[tuple[OutputSpec, Any]] = []
        self.showing: Indication | None = None
        for spec in specs:
            try:
                device = kinds[spec.kind](
                    spec.pin, active_high=spec.active_high, pin_factory=factory
                )
            except (GPIOZeroError, OSError) as exc:
                self.close()
                raise HardwareError(
                    f"cannot set up {spec.kind} {spec.name!r} on pin {spec.pin}: {exc}"
                ) from exc
            self._outputs.append((spec, device))

    def show(self, indication: Indication) -> None:
        """Play the state's pattern on every output (background threads of gpiozero)."""
        if indication is self.showing:
            return
        self.showing = indication
        _LOGGER.debug("feedback: %s", indication.value)
        for spec, device in self._outputs:
            _play(device, spec.kind, pattern_for(spec, indication))

    def close(self) -> None:
        """Turn everything off and release the pins."""
        for _spec, device in self._outputs:
            device.close()
        self._outputs.clear()


def _play(device: Any, kind: OutputKind, pattern: Pattern) -> None:
    if pattern.mode == "off":
        device.off()
    elif pattern.mode == "on":
        device.on()
    elif pattern.mode == "pulse":
        device.pulse(fade_in_time=pattern.on_s, fade_out_time=pattern.off_s, n=pattern.repeat)
    elif kind == "buzzer":
        device.beep(on_time=pattern.on_s, off_time=pattern.off_s, n=pattern.repeat)
    else:
        device.blink(on_time=pattern.on_s, off_time=pattern.off_s, n=pattern.repeat)
