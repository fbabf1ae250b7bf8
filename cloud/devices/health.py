"""Pure fleet health: how a device is doing (ok, warning, fault) beside whether it is reachable
(presence), and which of its signals the fleet view draws as a sparkline.

Health is the device's own condition as last reported, so an offline device keeps the health it
had: presence says whether we can hear it, health what it said about itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

# A backlog older than this many heartbeats means the agent cannot get its messages out.
BACKLOG_WARN_HEARTBEATS = 2.0
_FAULT_SEVERITIES = frozenset({"major", "critical"})


class Health(StrEnum):
    """The device's own condition."""

    OK = "ok"
    WARNING = "warning"
    FAULT = "fault"


@dataclass(frozen=True)
class HealthInput:
    """What health is judged from."""

    active_severities: Sequence[str]
    oldest_pending_s: float | None = None
    heartbeat_interval_s: float | None = None


def health(device: HealthInput) -> tuple[Health, list[str]]:
    """The health and the reasons for it (empty when ok)."""
    reasons: list[str] = []
    worst = Health.OK
    majors = [s for s in device.active_severities if s in _FAULT_SEVERITIES]
    minors = len(device.active_severities) - len(majors)
    if majors:
        worst = Health.FAULT
        reasons.append(f"{len(majors)} major or critical fault(s) active")
    if minors:
        worst = worst if worst is Health.FAULT else Health.WARNING
        reasons.append(f"{minors} warning fault(s) active")
    beat = device.heartbeat_interval_s or 60.0
    if device.oldest_pending_s and device.oldest_pending_s > BACKLOG_WARN_HEARTBEATS * beat:
        worst = worst if worst is Health.FAULT else Health.WARNING
        reasons.append(f"messages waiting on the device for {device.oldest_pending_s:.0f} s")
    return worst, reasons


@dataclass(frozen=True)
class Signal:
    """A signal's latest value, as the key-signal choice sees it."""

    name: str
    unit: str
    value: float


def key_signal(signals: Iterable[Signal]) -> str | None:
    """The signal a fleet row draws: the first (by name) measured quantity, i.e. one with a
    unit; a device reporting only unit-less signals (switches, counters) gets its first one."""
    ordered = sorted(signals, key=lambda s: s.name)
    if not ordered:
        return None
    return next((s.name for s in ordered if s.unit), ordered[0].name)


def downsample(values: Sequence[float], points: int) -> list[float]:
    """At most `points` values: the mean of each equal slice, oldest first (a sparkline needs
    the shape, not every 10 s bucket)."""
    if points < 1:
        raise ValueError("points must be at least 1")
    if len(values) <= points:
        return [float(v) for v in values]
    out = []
    for i in range(points):
        lo, hi = i * len(values) // points, (i + 1) * len(values) // points
        chunk = values[lo:hi]
        out.append(sum(chunk) / len(chunk))
    return out
