"""Pure description building: what is wrong, in words, from the device's own data, so nobody
has to type it. Also the snapshot kept with the ticket (readings and faults at that time)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud.tickets.taxonomy import ResolvedCategory


@dataclass(frozen=True, slots=True)
class ReadingView:
    """A latest reading."""

    name: str
    value: float
    unit: str
    at: datetime


@dataclass(frozen=True, slots=True)
class FaultView:
    """An active fault."""

    code: str
    severity: str
    summary: str
    since: datetime | None


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """The device and its place, as far as known."""

    device_id: str
    profile: str | None
    site_name: str | None
    presence: str
    agent_version: str | None
    backlog: int | None


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "unknown time"


def _reading(r: ReadingView) -> str:
    unit = f" {r.unit}" if r.unit else ""
    return f"{r.name} {r.value:g}{unit}"


def describe(
    category: ResolvedCategory,
    device: DeviceContext,
    trigger: str,
    at: datetime,
    readings: Sequence[ReadingView],
    faults: Sequence[FaultView],
) -> tuple[str, str, dict[str, Any]]:
    """Title, description and snapshot of a new ticket."""
    where = f" at {device.site_name}" if device.site_name else ""
    title = f"{category.title}{where} ({device.device_id})"
    lines = [
        f"{category.title} problem{where}, device {device.device_id}"
        + (f" ({device.profile})" if device.profile else "")
        + ".",
        f"Reported by: {trigger}, {_when(at)}.",
    ]
    if faults:
        lines.append(
            "Active faults: "
            + "; ".join(
                f"{f.code} ({f.severity}, since {_when(f.since)})"
                + (f": {f.summary}" if f.summary else "")
                for f in faults
            )
            + "."
        )
    if readings:
        newest = max(r.at for r in readings)
        lines.append(
            f"Latest readings ({_when(newest)}): " + ", ".join(_reading(r) for r in readings) + "."
        )
    state = (
        "Device presence unknown (no status or heartbeat yet)"
        if device.presence == "unknown"
        else f"Device {device.presence}"
    )
    if device.agent_version:
        state += f", agent {device.agent_version}"
    if device.backlog:
        state += f", {device.backlog} events waiting on the device"
    lines.append(state + ".")
    lines.append(f"Skills needed: {', '.join(category.skills) or 'none listed'}.")
    snapshot = {
        "captured_at": at.isoformat(),
        "presence": device.presence,
        "readings": [
            {"name": r.name, "value": r.value, "unit": r.unit, "at": r.at.isoformat()}
            for r in readings
        ],
        "faults": [
            {
                "code": f.code,
                "severity": f.severity,
                "summary": f.summary,
                "since": f.since.isoformat() if f.since else None,
            }
            for f in faults
        ],
    }
    return title[:200], "\n".join(lines), snapshot


def describe_site(category: ResolvedCategory, site_name: str, devices: Sequence[str]) -> str:
    """Description of a site-level ticket."""
    return (
        f"{len(devices)} devices at {site_name} report the same {category.title.lower()} "
        f"problem at once: {', '.join(sorted(devices))}. Likely a shared cause (power, network); "
        "the device tickets are linked here and not dispatched separately."
    )
