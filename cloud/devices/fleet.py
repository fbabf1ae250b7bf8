"""The fleet view: every device with presence, health, active faults, open tickets and a
sparkline of its key signal, read in a handful of queries whatever the fleet size."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from cloud.devices import service
from cloud.devices.health import Health, HealthInput, Signal, downsample, health, key_signal
from cloud.devices.models import Device, DeviceFault, FaultTransition
from cloud.devices.presence import Presence
from cloud.telemetry.models import LatestReading, RecentReading
from cloud.tickets.lifecycle import OPEN
from cloud.tickets.models import Ticket

SPARK_POINTS = 30
PRESENCES = tuple(p.value for p in Presence)


@dataclass(frozen=True)
class FleetFilter:
    """Which devices to show."""

    site_id: str | None = None
    profile: str | None = None
    presence: str | None = None
    health: Health | None = None

    def matches(self, device: Device, health: Health) -> bool:
        """True when the device (with this health) is one to show."""
        wanted = (
            (self.site_id, device.site_id),
            (self.profile, device.profile),
            (self.presence, device.presence),
            (self.health, health),
        )
        return all(want is None or want == have for want, have in wanted)


def fleet(
    *, db_session: Session, where: FleetFilter, now: datetime, window: timedelta | None
) -> dict[str, Any]:
    """Counts over the whole fleet, and the filtered devices (with sparklines over `window`,
    none when it is None)."""
    faults = active_faults(db_session)
    open_tickets = _open_tickets(db_session)
    rows: list[dict[str, Any]] = []
    counts: Counter[str] = Counter({k: 0 for k in (*PRESENCES, *(h.value for h in Health))})
    for device in service.list_all(db_session=db_session):
        state, reasons = device_health(device, faults)
        counts[device.presence] += 1
        counts[state.value] += 1
        if not where.matches(device, state):
            continue
        rows.append(
            {
                "id": device.id,
                "name": device.name,
                "site_id": device.site_id,
                "profile": device.profile,
                "presence": device.presence,
                "presence_since": device.presence_since,
                "last_seen_at": device.last_seen_at,
                "agent_version": device.agent_version,
                "health": state.value,
                "health_reasons": reasons,
                "active_faults": faults.get(device.id, []),
                "open_tickets": open_tickets.get(device.id, 0),
            }
        )
    ids = [r["id"] for r in rows] if window is not None else []
    sparks = _sparklines(db_session, ids, now - (window or timedelta(0)))
    for row in rows:
        row["spark"] = sparks.get(row["id"])
    counts["open_tickets"] = sum(open_tickets.values())
    return {"counts": dict(counts), "devices": rows}


def device_health(
    device: Device, faults: dict[str, list[dict[str, str]]]
) -> tuple[Health, list[str]]:
    """The device's health from its row and the active faults by device."""
    return health(
        HealthInput(
            active_severities=[f["severity"] for f in faults.get(device.id, [])],
            oldest_pending_s=device.oldest_pending_s,
            heartbeat_interval_s=device.heartbeat_interval_s,
        )
    )


def active_faults(
    db_session: Session, device_id: str | None = None
) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    """Active faults by device (of one device when given)."""
    query = select(DeviceFault).where(DeviceFault.active.is_(True)).order_by(DeviceFault.code)
    if device_id:
        query = query.where(DeviceFault.device_id == device_id)
    for f in db_session.scalars(query):
        out[f.device_id].append({"code": f.code, "severity": f.severity, "summary": f.summary})
    return out


def _open_tickets(db_session: Session) -> dict[str, int]:
    query = (
        select(Ticket.device_id, func.count())
        .where(Ticket.state.in_([s.value for s in OPEN]), Ticket.device_id.is_not(None))
        .group_by(Ticket.device_id)
    )
    return {str(device_id): n for device_id, n in db_session.execute(query)}


def _sparklines(
    db_session: Session, device_ids: list[str], since: datetime
) -> dict[str, dict[str, Any]]:
    if not device_ids:
        return {}
    latest: dict[str, list[Signal]] = defaultdict(list)
    units: dict[tuple[str, str], LatestReading] = {}
    for chunk in _chunks(device_ids):
        for r in db_session.scalars(
            select(LatestReading).where(LatestReading.device_id.in_(chunk))
        ):
            latest[r.device_id].append(Signal(r.name, r.unit, r.value))
            units[(r.device_id, r.name)] = r
    keys = [(d, name) for d in device_ids if (name := key_signal(latest.get(d, [])))]
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for chunk in _chunks(keys):
        query = (
            select(RecentReading.device_id, RecentReading.name, RecentReading.value)
            .where(
                tuple_(RecentReading.device_id, RecentReading.name).in_(chunk),
                RecentReading.bucket >= since,
            )
            .order_by(RecentReading.device_id, RecentReading.name, RecentReading.bucket)
        )
        for device_id, name, value in db_session.execute(query):
            values[(device_id, name)].append(value)
    out = {}
    for key in keys:
        reading = units[key]
        out[key[0]] = {
            "name": reading.name,
            "unit": reading.unit,
            "latest": reading.value,
            "at": reading.at,
            "points": downsample(values.get(key, []), SPARK_POINTS),
        }
    return out


def _chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def fault_history(
    *, db_session: Session, device_id: str, limit: int = 200
) -> list[FaultTransition]:
    """The device's raises and clears, newest first."""
    query = (
        select(FaultTransition)
        .where(FaultTransition.device_id == device_id)
        .order_by(FaultTransition.at.desc(), FaultTransition.id.desc())
        .limit(limit)
    )
    return list(db_session.scalars(query))
