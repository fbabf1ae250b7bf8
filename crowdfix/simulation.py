"""Simulated sensors for the demo: plausible readings per collector kind, and incidents that
push a signal into its fault condition for a while (then let it recover)."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from edge_agent.collectors import Collector, Sample
from edge_agent.profile import CollectorSpec, HttpProbeSpec, Profile, StateCondition

# (typical value, how far one step may wander, lowest, highest) per collector kind.
_BEHAVIOUR: dict[str, tuple[float, float, float, float]] = {
    "cpu_temperature": (48.0, 0.8, 35.0, 70.0),
    "load_average": (0.4, 0.1, 0.0, 3.0),
    "disk_usage": (42.0, 0.05, 10.0, 95.0),
    "ping": (1.0, 0.0, 1.0, 1.0),
    "digital_input": (1.0, 0.0, 1.0, 1.0),
    "adc": (4.0, 0.15, 1.0, 7.0),
    "command": (1.0, 0.0, 1.0, 1.0),
    "http": (1.0, 0.0, 1.0, 1.0),
}
# Inputs whose healthy state is 0 (a power-fail contact).
_HEALTHY_ZERO = ("on_battery", "power_fail")


@dataclass
class _Override:
    value: float
    until: float


class SimulatedCollector:
    """A random walk around a plausible value; `incident()` forces a value for a while."""

    def __init__(self, spec: CollectorSpec, rng: random.Random) -> None:
        self.spec = spec
        typical, self._step, self._low, self._high = _BEHAVIOUR[spec.kind]
        if spec.kind == "digital_input" and spec.name in _HEALTHY_ZERO:
            typical = self._low = self._high = 0.0
        self._value = typical
        self._rng = rng
        self._override: _Override | None = None
        self._lock = threading.Lock()

    def incident(self, value: float, seconds: float) -> None:
        """Hold the signal at value for seconds (a fault rule then sees it)."""
        with self._lock:
            self._override = _Override(value, time.monotonic() + seconds)

    def read(self) -> list[Sample]:
        """The next simulated reading."""
        with self._lock:
            override = self._override
            if override is not None and time.monotonic() >= override.until:
                self._override = override = None
        if override is not None:
            value = override.value
        else:
            self._value += self._rng.uniform(-self._step, self._step)
            self._value = min(self._high, max(self._low, self._value))
            value = round(self._value, 2)
        samples: list[Sample] = [(self.spec.name, value, self.spec.unit)]
        if isinstance(self.spec, HttpProbeSpec):
            samples.append((f"{self.spec.name}_ms", round(self._rng.uniform(15, 60), 1), "ms"))
        return samples

    def close(self) -> None:
        """Nothing to release."""


def simulated_collectors(profile: Profile, seed: int) -> list[Collector]:
    """One simulated collector per collector in the profile."""
    rng = random.Random(seed)
    return [SimulatedCollector(spec, rng) for spec in profile.collectors]


def start_incident(profile: Profile, collectors: list[Collector], rng: random.Random) -> str | None:
    """Push one state-rule signal into its fault value for the rule's duration plus a bit."""
    rules = [f for f in profile.faults if isinstance(f.when, StateCondition)]
    if not rules:
        return None
    fault = rng.choice(rules)
    when = fault.when
    assert isinstance(when, StateCondition)
    for collector in collectors:
        if isinstance(collector, SimulatedCollector) and collector.spec.name == when.signal:
            collector.incident(when.equals, when.for_s + 30 + when.clear_for_s)
            return fault.code
    return None
