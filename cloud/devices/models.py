"""Device registry, presence and faults."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, UTCDateTime


class Device(Base):
    """A field device with an edge agent."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    profile: Mapped[str | None] = mapped_column(String(64))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    criticality: Mapped[str | None] = mapped_column(String(16))
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    presence: Mapped[str] = mapped_column(String(16), default="unknown")
    presence_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The newest status message: "online" (birth) or "offline" (last will, goodbye), stamped
    # with the start of its MQTT session (see cloud/devices/presence.py).
    status: Mapped[str | None] = mapped_column(String(16))
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_interval_s: Mapped[float | None] = mapped_column(Float)
    agent_version: Mapped[str | None] = mapped_column(String(32))
    config_hash: Mapped[str | None] = mapped_column(String(64))
    backlog: Mapped[int | None] = mapped_column(Integer)
    oldest_pending_s: Mapped[float | None] = mapped_column(Float)
    telemetry_dropped: Mapped[int | None] = mapped_column(Integer)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeviceFault(Base):
    """The state of one fault code on one device (device-reported, or `device-offline`)."""

    __tablename__ = "device_faults"

    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    summary: Mapped[str] = mapped_column(String(500), default="")
    readings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    raises: Mapped[int] = mapped_column(Integer, default=0)
    seq: Mapped[int] = mapped_column(BigInteger, default=-1)  # newest applied transition


class FaultTransition(Base):
    """History of raises and clears (flapping is counted here)."""

    __tablename__ = "fault_transitions"
    __table_args__ = (Index("ix_fault_transitions_device_code_at", "device_id", "code", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
