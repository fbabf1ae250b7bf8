"""Device use cases: registry, what a message tells about a device, presence, faults."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from cloud.db import db_time, write_rows
from cloud.devices.models import Device, DeviceFault, FaultTransition
from cloud.devices.presence import Presence, newer_status, presence
from cloud.devices.schemas import DeviceIn
from cloud.errors import Conflict, NotFound
from cloud.sites.models import Site
from cloud.tickets.taxonomy import PresencePolicy


def get(*, db_session: Session, device_id: str, lock: bool = False) -> Device | None:
    """The device, if registered (row-locked on PostgreSQL when asked)."""
    return db_session.get(Device, device_id, with_for_update=lock)


def get_or_raise(*, db_session: Session, device_id: str) -> Device:
    """The device; NotFound otherwise."""
    device = get(db_session=db_session, device_id=device_id)
    if device is None:
        raise NotFound(f"device {device_id!r} is not registered")
    return device


def list_all(
    *,
    db_session: Session,
    site_id: str | None = None,
    presence: str | None = None,
    profile: str | None = None,
) -> Sequence[Device]:
    """Devices, by id, optionally filtered."""
    query = select(Device).order_by(Device.id)
    if site_id:
        query = query.where(Device.site_id == site_id)
    if presence:
        query = query.where(Device.presence == presence)
    if profile:
        query = query.where(Device.profile == profile)
    return db_session.scalars(query).all()


def register(*, db_session: Session, device_in: DeviceIn, now: datetime) -> Device:
    """Register a device or update its registry entry."""
    if device_in.site_id and db_session.get(Site, device_in.site_id) is None:
        raise Conflict(f"site {device_in.site_id!r} does not exist: create it first")
    device = db_session.get(Device, device_in.id)
    if device is None:
        device = Device(id=device_in.id, registered_at=now, presence=Presence.UNKNOWN.value)
        db_session.add(device)
    for field, value in device_in.model_dump(exclude={"id"}).items():
        setattr(device, field, value)
    db_session.flush()
    return device


def site_of(*, db_session: Session, device: Device) -> Site | None:
    """The device's site, if any."""
    return db_session.get(Site, device.site_id) if device.site_id else None


def seen(device: Device, at: datetime) -> None:
    """A message from the device, taken at `at` by its clock."""
    if device.last_seen_at is None or at > device.last_seen_at:
        device.last_seen_at = at


def apply_status(
    device: Device, state: str, at: datetime, profile: str | None, version: str
) -> None:
    """A birth message or a last will (stamped with the start of its session)."""
    if newer_status(device.status, device.status_at, state, at):
        device.status, device.status_at = state, at
    if state == "online":
        seen(device, at)
    device.profile = profile or device.profile
    device.agent_version = version or device.agent_version


_TABLE = cast(Table, Device.__table__)
_T = _TABLE.c
# Core statements run with executemany: one round of the driver for a whole batch.
_HEARTBEAT = (
    update(_TABLE)
    .where(_T.id == bindparam("b_id"))
    .values(
        agent_version=bindparam("b_version"),
        profile=bindparam("b_profile"),
        config_hash=bindparam("b_hash"),
        backlog=bindparam("b_backlog"),
        oldest_pending_s=bindparam("b_oldest"),
        telemetry_dropped=bindparam("b_dropped"),
        heartbeat_interval_s=func.coalesce(bindparam("b_interval"), _T.heartbeat_interval_s),
    )
)


def apply_heartbeats(*, db_session: Session, beats: Sequence[dict[str, Any]]) -> None:
    """Heartbeat fields of many devices (the newest of a batch per device), in one go.

    Each dict: b_id, b_version, b_profile, b_hash, b_backlog, b_oldest, b_dropped, b_interval.
    """
    if beats:
        db_session.connection().execute(_HEARTBEAT, sorted(beats, key=lambda b: b["b_id"]))


_MARK_SEEN_SQLITE = (
    "UPDATE devices SET last_seen_at = ?2 WHERE id = ?1 "
    "AND (last_seen_at IS NULL OR last_seen_at < ?2)"
)
_MARK_SEEN_PG = (
    "UPDATE devices SET last_seen_at = v.at FROM unnest(%s::varchar[], %s::timestamptz[]) "
    "AS v(id, at) WHERE devices.id = v.id "
    "AND (devices.last_seen_at IS NULL OR devices.last_seen_at < v.at)"
)


def mark_seen(*, db_session: Session, newest: dict[str, datetime]) -> None:
    """last_seen_at = max(last_seen_at, at) for many devices at once (cloud.db.write_rows)."""
    if not newest:
        return
    connection = db_session.connection()
    stamp = db_time(connection.dialect.name)
    rows = [(device_id, stamp(at)) for device_id, at in sorted(newest.items())]
    write_rows(connection, sqlite=_MARK_SEEN_SQLITE, postgresql=_MARK_SEEN_PG, rows=rows)


def refresh_presence(device: Device, now: datetime, policy: PresencePolicy) -> bool:
    """Recompute presence; True when it changed."""
    current = presence(
        now,
        last_seen=device.last_seen_at,
        status=device.status,
        heartbeat_s=device.heartbeat_interval_s,
        policy=policy,
    )
    if current.value == device.presence:
        return False
    device.presence = current.value
    device.presence_since = now
    return True


# -- faults -----------------------------------------------------------------------------


def fault(*, db_session: Session, device_id: str, code: str) -> DeviceFault:
    """The fault record of a device and code (created inactive)."""
    record = db_session.get(DeviceFault, (device_id, code))
    if record is None:
        record = DeviceFault(
            device_id=device_id,
            code=code,
            active=False,
            severity="warning",
            summary="",
            readings={},
            raises=0,
            seq=-1,
        )
        db_session.add(record)
    return record


def record_fault(
    *,
    db_session: Session,
    record: DeviceFault,
    raised: bool,
    at: datetime,
    seq: int,
    severity: str,
    summary: str,
    readings: dict[str, float],
) -> bool:
    """Apply a raise or clear; False when it is older than what is known, or changes nothing."""
    if seq >= 0 and seq <= record.seq:
        return False
    record.seq = max(record.seq, seq)
    if record.active == raised:
        return False
    record.active = raised
    if raised:
        record.raised_at, record.raises = at, record.raises + 1
        record.severity, record.summary, record.readings = severity, summary, dict(readings)
    else:
        record.cleared_at = at
    db_session.add(
        FaultTransition(
            device_id=record.device_id,
            code=record.code,
            state="raised" if raised else "cleared",
            at=at,
        )
    )
    return True


def raise_times(
    *, db_session: Session, device_id: str, code: str, since: datetime
) -> list[datetime]:
    """When this fault was raised since a moment (for flapping)."""
    return list(
        db_session.scalars(
            select(FaultTransition.at).where(
                FaultTransition.device_id == device_id,
                FaultTransition.code == code,
                FaultTransition.state == "raised",
                FaultTransition.at >= since,
            )
        )
    )


def active_faults(*, db_session: Session, device_id: str) -> Sequence[DeviceFault]:
    """The device's raised faults."""
    return db_session.scalars(
        select(DeviceFault)
        .where(DeviceFault.device_id == device_id, DeviceFault.active.is_(True))
        .order_by(DeviceFault.raised_at)
    ).all()


def faults_of(*, db_session: Session, device_id: str) -> Sequence[DeviceFault]:
    """Every fault the device ever reported, active first."""
    return db_session.scalars(
        select(DeviceFault)
        .where(DeviceFault.device_id == device_id)
        .order_by(DeviceFault.active.desc(), DeviceFault.raised_at.desc())
    ).all()


def prune_fault_history(*, db_session: Session, before: datetime) -> None:
    """Forget transitions older than any flapping window needs."""
    from sqlalchemy import delete

    db_session.execute(delete(FaultTransition).where(FaultTransition.at < before))


def window_start(now: datetime, minutes: float) -> datetime:
    """now minus minutes."""
    return now - timedelta(minutes=minutes)
