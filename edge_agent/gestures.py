"""Pure gesture recognition: press and release times in, single / double / long / stuck out.

gpiozero has no double-press detection, so every button gets a small state machine fed
with edge times; `poll(now)` fires what waiting decides (a single press after the double
window closes, a long press while still held). No clock is read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts.messages import Gesture
from edge_agent.profile import GestureTiming


class Hold(StrEnum):
    """A button held far too long is reported as a fault, and its release clears it."""

    STUCK = "stuck"
    UNSTUCK = "unstuck"


Outcome = Gesture | Hold


class GestureClassifier:
    """One button's state machine; feed it `press`/`release` edges and `poll` it."""

    def __init__(self, timing: GestureTiming) -> None:
        self._timing = timing
        self._down_at: float | None = None
        self._long_sent = False
        self._stuck = False
        self._presses = 0
        self._window_ends: float | None = None

    @property
    def held(self) -> bool:
        """True while the button is down."""
        return self._down_at is not None

    def press(self, at: float) -> list[Outcome]:
        """The button went down (a repeated edge is ignored)."""
        if self._down_at is None:
            self._down_at = at
        return []

    def release(self, at: float) -> list[Outcome]:
        """The button came up: may complete a double press or a long one."""
        if self._down_at is None:
            return []
        held_s, self._down_at = at - self._down_at, None
        out: list[Outcome] = []
        if self._stuck:
            self._stuck = False
            out.append(Hold.UNSTUCK)
        if self._long_sent or held_s >= self._timing.long_press_s:
            if not self._long_sent:
                out.append(Gesture.LONG)
            self._long_sent = False
            self._forget_presses()
            return out
        self._presses += 1
        if self._presses >= 2:
            out.append(Gesture.DOUBLE)
            self._forget_presses()
        else:
            self._window_ends = at + self._timing.double_press_window_s
        return out

    def poll(self, now: float) -> list[Outcome]:
        """What the passing of time decides: long and stuck while held, single after the window."""
        out: list[Outcome] = []
        if self._down_at is not None:
            held_s = now - self._down_at
            if not self._long_sent and held_s >= self._timing.long_press_s:
                # A long press supersedes a short press still waiting for its double window.
                self._long_sent = True
                self._forget_presses()
                out.append(Gesture.LONG)
            if not self._stuck and held_s >= self._timing.stuck_after_s:
                self._stuck = True
                out.append(Hold.STUCK)
        elif self._window_ends is not None and now >= self._window_ends:
            self._forget_presses()
            out.append(Gesture.SINGLE)
        return out

    def next_deadline(self) -> float | None:
        """When poll() may next have something to say; None when only an edge can change it."""
        if self._down_at is not None:
            if not self._long_sent:
                return self._down_at + self._timing.long_press_s
            if not self._stuck:
                return self._down_at + self._timing.stuck_after_s
            return None
        return self._window_ends

    def _forget_presses(self) -> None:
        self._presses = 0
        self._window_ends = None


@dataclass
class Cooldown:
    """At most one event per key per cooldown: a hammered button yields one request."""

    last: dict[tuple[str, str], float]

    def __init__(self) -> None:
        self.last = {}
        self.suppressed = 0

    def allow(self, key: tuple[str, str], at: float, cooldown_s: float) -> bool:
        """True (and remembered) unless the same key was allowed less than cooldown_s ago."""
        previous = self.last.get(key)
        if previous is not None and at - previous < cooldown_s:
            self.suppressed += 1
            return False
        self.last[key] = at
        return True
