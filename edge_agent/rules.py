"""Pure fault rules: readings and times in, raise and clear transitions out.

Each rule is a small state machine with hysteresis: a fault is raised once when its
condition has held for `for_s`, and cleared once when the clear condition has held for
`clear_for_s`; the two conditions never hold at the same time, so a fault is never
cleared while its cause persists. No clock is read here; `at` is a monotonic time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from contracts.messages import FaultState, Severity
from edge_agent.profile import (
    FaultSpec,
    RateCondition,
    StaleCondition,
    StateCondition,
    ThresholdCondition,
)

Test = Callable[[float], bool]


@dataclass(frozen=True, slots=True)
class FaultTransition:
    """A fault was raised or cleared, with the readings that decided it."""

    code: str
    state: FaultState
    severity: Severity
    summary: str
    readings: dict[str, float]
    at: float


@dataclass
class Hysteresis:
    """Raise after `raise_test` held for for_s; clear after `clear_test` held for clear_for_s."""

    raise_test: Test
    clear_test: Test
    for_s: float
    clear_for_s: float
    active: bool = False
    since: float | None = None  # when the current run of the awaited condition began

    def step(self, value: float | None, at: float) -> FaultState | None:
        """Feed one observation (None: no verdict possible); return a transition, if any."""
        awaited = self.clear_test if self.active else self.raise_test
        if value is None or not awaited(value):
            self.since = None
            return None
        if self.since is None:
            self.since = at
        if at - self.since < (self.clear_for_s if self.active else self.for_s):
            return None
        self.active, self.since = not self.active, None
        return FaultState.RAISED if self.active else FaultState.CLEARED


def _threshold_tests(c: ThresholdCondition) -> tuple[Test, Test]:
    if c.above is not None:
        level, clear = c.above, c.clear_below if c.clear_below is not None else c.above
        return (lambda v: v > level), (lambda v: v <= clear)
    assert c.below is not None
    level, clear = c.below, c.clear_above if c.clear_above is not None else c.below
    return (lambda v: v < level), (lambda v: v >= clear)


@dataclass
class _Rule:
    spec: FaultSpec
    machine: Hysteresis
    rate_window: deque[tuple[float, float]] = field(default_factory=deque)
    last_seen: float | None = None

    @property
    def signal(self) -> str:
        return self.spec.when.signal

    def observe(self, value: float, at: float) -> FaultState | None:
        when = self.spec.when
        self.last_seen = at
        if isinstance(when, StaleCondition):
            return self.machine.step(0.0, at)  # a reading arrived: not stale
        if isinstance(when, RateCondition):
            return self.machine.step(self._rate(value, at, when.window_s), at)
        return self.machine.step(value, at)

    def tick(self, now: float) -> FaultState | None:
        when = self.spec.when
        if not isinstance(when, StaleCondition) or self.machine.active:
            return None
        silent_s = now - (self.last_seen if self.last_seen is not None else now)
        return self.machine.step(1.0, now) if silent_s > when.after_s else None

    def _rate(self, value: float, at: float, window_s: float) -> float | None:
        window = self.rate_window
        window.append((at, value))
        while len(window) > 2 and at - window[1][0] >= window_s:
            window.popleft()
        first_at, first_value = window[0]
        if at - first_at < window_s / 2:  # too little history for a verdict
            return None
        return (value - first_value) / (at - first_at) * 60.0


def _machine(spec: FaultSpec) -> Hysteresis:
    when = spec.when
    if isinstance(when, ThresholdCondition):
        raise_test, clear_test = _threshold_tests(when)
        return Hysteresis(raise_test, clear_test, when.for_s, when.clear_for_s)
    if isinstance(when, StateCondition):
        target = when.equals
        return Hysteresis(
            lambda v: v == target, lambda v: v != target, when.for_s, when.clear_for_s
        )
    if isinstance(when, StaleCondition):
        return Hysteresis(lambda v: v == 1.0, lambda v: v == 0.0, 0.0, 0.0)
    if when.per_minute_above is not None:
        limit = when.per_minute_above
        return Hysteresis(lambda r: r > limit, lambda r: r <= limit, 0.0, 0.0)
    assert when.per_minute_below is not None
    floor = when.per_minute_below
    return Hysteresis(lambda r: r < floor, lambda r: r >= floor, 0.0, 0.0)


class RuleEngine:
    """All of a profile's fault rules; remembers the latest value of every signal."""

    def __init__(
        self, specs: Sequence[FaultSpec], started_at: float, active: Iterable[str] = ()
    ) -> None:
        """`active`: codes raised before a restart, so they are cleared (once) when they end."""
        self._rules = [_Rule(spec, _machine(spec), last_seen=started_at) for spec in specs]
        already = set(active)
        for rule in self._rules:
            rule.machine.active = rule.spec.code in already
        self._latest: dict[str, float] = {}

    def codes(self) -> set[str]:
        """Codes of every rule."""
        return {rule.spec.code for rule in self._rules}

    def observe(self, readings: Iterable[tuple[str, float]], at: float) -> list[FaultTransition]:
        """Feed readings taken at `at`; return the faults they raise or clear."""
        out: list[FaultTransition] = []
        for name, value in readings:
            self._latest[name] = value
            for rule in self._rules:
                if rule.signal == name:
                    out.extend(self._transition(rule, rule.observe(value, at), at))
        return out

    def tick(self, now: float) -> list[FaultTransition]:
        """Let time pass: signals that went silent raise their staleness faults."""
        out: list[FaultTransition] = []
        for rule in self._rules:
            out.extend(self._transition(rule, rule.tick(now), now))
        return out

    def active(self) -> set[str]:
        """Codes of the faults currently raised."""
        return {rule.spec.code for rule in self._rules if rule.machine.active}

    def _transition(
        self, rule: _Rule, state: FaultState | None, at: float
    ) -> list[FaultTransition]:
        if state is None:
            return []
        spec = rule.spec
        readings = {k: v for k, v in self._latest.items() if k == rule.signal}
        return [FaultTransition(spec.code, state, spec.severity, spec.summary, readings, at)]
