"""Device shapes of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.topics import DEVICE_ID_PATTERN


class DeviceIn(BaseModel):
    """A device to register or update (its id is its MQTT username)."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    site_id: Annotated[str, Field(max_length=64)] | None = None
    name: Annotated[str, Field(max_length=200)] = ""
    profile: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    criticality: Literal["low", "normal", "high", "critical"] | None = None
    maintenance: bool = False


class FaultOut(BaseModel):
    """A fault of a device."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    active: bool
    severity: str
    summary: str
    readings: dict[str, Any]
    raised_at: datetime | None
    cleared_at: datetime | None
    raises: int


class ReadingOut(BaseModel):
    """A latest reading."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    value: float
    unit: str
    at: datetime


class DeviceOut(DeviceIn):
    """A device as operators see it."""

    model_config = ConfigDict(from_attributes=True)

    presence: str
    presence_since: datetime | None
    last_seen_at: datetime | None
    heartbeat_interval_s: float | None
    agent_version: str | None
    config_hash: str | None
    backlog: int | None
    oldest_pending_s: float | None
    telemetry_dropped: int | None
    registered_at: datetime


class FaultTransitionOut(BaseModel):
    """A raise or clear of a fault."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    state: str
    at: datetime


class DeviceDetail(DeviceOut):
    """A device page: health and why, its faults (current and history), latest readings."""

    health: Literal["ok", "warning", "fault"]
    health_reasons: list[str]
    faults: list[FaultOut]
    fault_history: list[FaultTransitionOut]
    readings: list[ReadingOut]


class ActiveFaultOut(BaseModel):
    """An active fault, as a fleet row lists it."""

    code: str
    severity: str
    summary: str


class SparkOut(BaseModel):
    """The key signal of a fleet row: its latest value and the recent window's shape."""

    name: str
    unit: str
    latest: float
    at: datetime
    points: list[float]


class FleetDeviceOut(BaseModel):
    """One row of the fleet view."""

    id: str
    name: str
    site_id: str | None
    profile: str | None
    presence: str
    presence_since: datetime | None
    last_seen_at: datetime | None
    agent_version: str | None
    health: Literal["ok", "warning", "fault"]
    health_reasons: list[str]
    active_faults: list[ActiveFaultOut]
    open_tickets: int
    spark: SparkOut | None


class FleetOut(BaseModel):
    """Counts over the whole fleet (by presence and health, and open tickets) and the rows
    that match the filter."""

    counts: dict[str, int]
    devices: list[FleetDeviceOut]
