"""The transactional outbox of the cloud: commands for devices (and technicians) to publish."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, UTCDateTime


class OutboundMessage(Base):
    """A message to publish (or POST to a technician's webhook); the relay marks it sent, or
    given up when it went out of date first (`failed_at`, with the last error)."""

    __tablename__ = "outbound_messages"
    __table_args__ = (Index("ix_outbound_messages_unsent", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(300))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    retain: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Not worth sending after this (an offer's deadline); None: a device command, kept until sent.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Webhooks: failed tries so far, when the next one may be made (or a relay's lease ends).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
