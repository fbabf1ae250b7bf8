"""Telemetry collection: each collector is a small object with read(); a sampler thread runs
them on their schedules (probes may block up to their timeout) and hands readings on."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from edge_agent.profile import CollectorSpec, CommandProbeSpec, HttpProbeSpec, Profile

_LOGGER = logging.getLogger(__name__)
Sample = tuple[str, float, str]  # name, value, unit


class Collector(Protocol):
    """A telemetry source."""

    spec: Any

    def read(self) -> list[Sample]: ...

    def close(self) -> None: ...


def build_collectors(profile: Profile, factory: Any) -> list[Collector]:
    """One collector per spec: probes here, gpiozero devices in hardware/ (imported lazily)."""
    collectors: list[Collector] = []
    try:
        for spec in profile.collectors:
            collectors.append(_build(spec, factory))
    except Exception:
        for collector in collectors:
            collector.close()
        raise
    return collectors


def _build(spec: CollectorSpec, factory: Any) -> Collector:
    if isinstance(spec, CommandProbeSpec | HttpProbeSpec):
        from edge_agent.probes import CommandProbe, HttpProbe

        return CommandProbe(spec) if isinstance(spec, CommandProbeSpec) else HttpProbe(spec)
    from edge_agent.hardware.sensors import build_sensor

    return build_sensor(spec, factory)


class Sampler:
    """Runs collectors on their intervals in one thread; a failing collector is logged, skipped."""

    def __init__(
        self,
        collectors: Sequence[Collector],
        default_every_s: float,
        on_samples: Callable[[list[Sample], float, float], None],
    ) -> None:
        self._collectors = list(collectors)
        self._default = default_every_s
        self._on_samples = on_samples
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self.failures = 0
        self._failing: set[str] = set()

    def start(self) -> None:
        """Begin sampling (everything once right away)."""
        if self._collectors:
            self._thread.start()

    def stop(self) -> None:
        """Stop sampling and release the collectors."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        for collector in self._collectors:
            collector.close()

    def _run(self) -> None:
        now = time.monotonic()
        queue = [(now, i) for i in range(len(self._collectors))]
        while queue and not self._stop.is_set():
            due, index = heapq.heappop(queue)
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            collector = self._collectors[index]
            self._sample(collector)
            every = collector.spec.every_s or self._default
            # Stay on the grid; after a slow probe, skip missed slots instead of bursting.
            heapq.heappush(queue, (max(due + every, time.monotonic()), index))

    def _sample(self, collector: Collector) -> None:
        name = collector.spec.name
        try:
            samples = collector.read()
        except Exception as exc:  # a broken sensor must not stop the others
            self.failures += 1
            # Say it once (a stale-signal fault rule reports it upstream), then quietly.
            level = logging.DEBUG if name in self._failing else logging.WARNING
            _LOGGER.log(level, "collector %s failed: %s", name, exc)
            self._failing.add(name)
            return
        if name in self._failing:
            self._failing.discard(name)
            _LOGGER.info("collector %s works again", name)
        self._on_samples(samples, time.monotonic(), time.time())
