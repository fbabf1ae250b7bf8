"""Telemetry tables: the latest value of each signal, and a bucketed recent window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, UTCDateTime


class LatestReading(Base):
    """The newest value of one signal of one device."""

    __tablename__ = "telemetry_latest"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class RecentReading(Base):
    """One value per signal per bucket (RECENT_BUCKET_S) for the recent window."""

    __tablename__ = "telemetry_recent"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    value: Mapped[float] = mapped_column(Float)
