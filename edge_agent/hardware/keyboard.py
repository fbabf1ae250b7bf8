"""Press mock buttons from the keyboard, so the agent can be tried on a laptop without hardware.

Type a button's number and Enter for a single press; add `d` for a double press, `l` for a
long press (`2d`, `1l`). Real edges on gpiozero's mock pins, so gestures, cooldowns and
feedback behave exactly as on a Raspberry Pi.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from edge_agent.hardware.pins import mock_pin
from edge_agent.profile import ButtonSpec, GestureTiming

TAP_S = 0.08


def usage(buttons: Sequence[ButtonSpec]) -> str:
    """The key table printed at start."""
    lines = ["Press buttons from the keyboard (then Enter):"]
    lines += [f"  {i}  {b.name} ({b.category})" for i, b in enumerate(buttons, 1)]
    lines.append("  add d for a double press, l for a long press: 1d, 2l. Ctrl-C stops.")
    return "\n".join(lines)


def press(pin: Any, gesture: str, timing: GestureTiming) -> None:
    """Drive one gesture on a mock pin with real timing."""
    if gesture == "l":
        pin.drive_low()
        time.sleep(timing.long_press_s + 0.2)
        pin.drive_high()
        return
    for i in range(2 if gesture == "d" else 1):
        if i:
            time.sleep(min(0.15, timing.double_press_window_s / 2))
        pin.drive_low()
        time.sleep(TAP_S)
        pin.drive_high()


class Keyboard:
    """Reads lines from a stream in a daemon thread and drives the matching mock pins."""

    def __init__(
        self,
        buttons: Sequence[ButtonSpec],
        factory: Any,
        timing: GestureTiming,
        stream: TextIO | None = None,
        out: TextIO | None = None,
    ) -> None:
        self._pins = [mock_pin(factory, b.pin) for b in buttons]
        self._buttons = list(buttons)
        self._timing = timing
        self._stream = stream or sys.stdin
        self._out = out or sys.stderr
        self._thread = threading.Thread(target=self._run, name="keyboard", daemon=True)

    def start(self) -> None:
        """Print the key table and start reading."""
        print(usage(self._buttons), file=self._out, flush=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self._stream:
            key = line.strip().lower()
            if not key:
                continue
            number, gesture = key.rstrip("dl"), key[-1] if key[-1] in "dl" else "s"
            if not number.isdigit() or not 1 <= int(number) <= len(self._pins):
                print(f"no button {key!r}; " + usage(self._buttons), file=self._out, flush=True)
                continue
            press(self._pins[int(number) - 1], gesture, self._timing)
