"""Device routes."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from cloud.auth.roles import Role
from cloud.clock import utc_now
from cloud.deps import AdminDep, SessionDep, WriterSessionDep, require
from cloud.devices import fleet, service
from cloud.devices.health import Health
from cloud.devices.schemas import (
    DeviceDetail,
    DeviceIn,
    DeviceOut,
    FaultOut,
    FaultTransitionOut,
    FleetOut,
    ReadingOut,
)
from cloud.errors import Conflict
from cloud.telemetry import service as telemetry

router = APIRouter(
    prefix="/api/devices",
    tags=["devices"],
    dependencies=[Depends(require(Role.ADMIN, Role.OPERATOR))],
)
fleet_router = APIRouter(
    prefix="/api/fleet",
    tags=["devices"],
    dependencies=[Depends(require(Role.ADMIN, Role.OPERATOR))],
)


@fleet_router.get("", response_model=FleetOut)
def get_fleet(
    db_session: SessionDep,
    site_id: str | None = None,
    profile: str | None = None,
    presence: Literal["unknown", "online", "stale", "offline"] | None = None,
    health: Health | None = None,
    minutes: Annotated[int, Query(ge=1, le=24 * 60, description="sparkline window")] = 30,
    sparklines: Annotated[bool, Query(description="false: leave the sparklines out")] = True,
) -> FleetOut:
    """The fleet at a glance: counts over all devices (presence, health, open tickets) and,
    per device matching the filters, health with its reasons, active faults, open tickets and
    a sparkline of its key signal (the first signal with a unit)."""
    where = fleet.FleetFilter(site_id=site_id, profile=profile, presence=presence, health=health)
    view = fleet.fleet(
        db_session=db_session,
        where=where,
        now=utc_now(),
        window=timedelta(minutes=minutes) if sparklines else None,
    )
    return FleetOut.model_validate(view)


@router.get("", response_model=list[DeviceOut])
def list_devices(
    db_session: SessionDep,
    site_id: str | None = None,
    presence: str | None = None,
    profile: str | None = None,
) -> list[DeviceOut]:
    """Registered devices with their presence; filter by site, presence or profile."""
    rows = service.list_all(
        db_session=db_session, site_id=site_id, presence=presence, profile=profile
    )
    return [DeviceOut.model_validate(d) for d in rows]


@router.get("/{device_id}", response_model=DeviceDetail)
def get_device(device_id: str, db_session: SessionDep) -> DeviceDetail:
    """One device with its health, faults (current and history) and latest readings."""
    device = service.get_or_raise(db_session=db_session, device_id=device_id)
    state, reasons = fleet.device_health(
        device, fleet.active_faults(db_session, device_id=device_id)
    )
    history = fleet.fault_history(db_session=db_session, device_id=device_id)
    return DeviceDetail.model_validate(
        {
            **DeviceOut.model_validate(device).model_dump(),
            "health": state.value,
            "health_reasons": reasons,
            "fault_history": [FaultTransitionOut.model_validate(t) for t in history],
            "faults": [
                FaultOut.model_validate(f)
                for f in service.faults_of(db_session=db_session, device_id=device_id)
            ],
            "readings": [
                ReadingOut.model_validate(r)
                for r in telemetry.latest(db_session=db_session, device_id=device_id)
            ],
        }
    )


@router.put("/{device_id}", response_model=DeviceOut)
def put_device(
    device_id: str, device_in: DeviceIn, _admin: AdminDep, db_session: WriterSessionDep
) -> DeviceOut:
    """Register a device or update its registry entry."""
    if device_in.id != device_id:
        raise Conflict(f"the body's id {device_in.id!r} differs from the path's {device_id!r}")
    device = service.register(db_session=db_session, device_in=device_in, now=utc_now())
    db_session.commit()
    return DeviceOut.model_validate(device)


@router.get("/{device_id}/telemetry")
def device_telemetry(
    device_id: str,
    db_session: SessionDep,
    minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60,
    name: str | None = None,
) -> dict[str, list[tuple[str, float]]]:
    """The recent window (10 s buckets) per signal: {signal: [[time, value], ...]}."""
    service.get_or_raise(db_session=db_session, device_id=device_id)
    rows = telemetry.recent(
        db_session=db_session,
        device_id=device_id,
        name=name,
        since=utc_now() - timedelta(minutes=minutes),
    )
    series: dict[str, list[tuple[str, float]]] = {}
    for row in rows:
        series.setdefault(row.name, []).append((row.bucket.isoformat(), row.value))
    return series
