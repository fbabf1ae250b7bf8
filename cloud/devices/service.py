"""Device use cases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.devices.models import Device


def get(*, db_session: Session, device_id: str) -> Device | None:
    """The device with this id, if registered."""
    return db_session.get(Device, device_id)


def list_all(*, db_session: Session) -> Sequence[Device]:
    """Every device, by id."""
    return db_session.scalars(select(Device).order_by(Device.id)).all()


def seen(
    *, db_session: Session, device_id: str, at: datetime, profile: str | None = None
) -> Device:
    """Record that a device spoke; registers it on first contact."""
    device = db_session.get(Device, device_id, with_for_update=True)
    if device is None:
        device = Device(id=device_id, registered_at=at, presence="online")
        db_session.add(device)
    if device.last_seen_at is None or at > device.last_seen_at:
        device.last_seen_at = at
    if profile:
        device.profile = profile
    return device
