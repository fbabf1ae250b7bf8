"""Device table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, UTCDateTime


class Device(Base):
    """A field device with an edge agent."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile: Mapped[str | None] = mapped_column(String(64))
    presence: Mapped[str] = mapped_column(String(16), default="unknown")
    agent_version: Mapped[str | None] = mapped_column(String(32))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
