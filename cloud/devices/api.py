"""Device routes."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.deps import SessionDep
from cloud.devices import service
from cloud.devices.schemas import DeviceOut

router = APIRouter(prefix="/api/devices", tags=["devices"])


@router.get("", response_model=list[DeviceOut])
def list_devices(db_session: SessionDep) -> list[DeviceOut]:
    """Every registered device with its presence."""
    return [DeviceOut.model_validate(d) for d in service.list_all(db_session=db_session)]
