"""Messages already processed, by message id: what makes redelivery harmless."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, UTCDateTime


class IngestedMessage(Base):
    """One accepted event; its primary key is the idempotency key."""

    __tablename__ = "ingested_messages"
    __table_args__ = (
        Index("ix_ingested_messages_device_problem", "device_id", "problem_key", "seq"),
    )

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16), default="")
    problem_key: Mapped[str] = mapped_column(String(80), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ticket_id: Mapped[int | None] = mapped_column(Integer)
