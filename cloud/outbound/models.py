"""The transactional outbox of the cloud: commands for devices (and technicians) to publish."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, UTCDateTime


class OutboundMessage(Base):
    """A message to publish; the relay marks it sent."""

    __tablename__ = "outbound_messages"
    __table_args__ = (Index("ix_outbound_messages_unsent", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(300))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    retain: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
