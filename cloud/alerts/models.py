"""Alerts raised: each once per ticket, kind and episode (the unique key keeps it so when
several workers sweep)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, UTCDateTime


class RaisedAlert(Base):
    """An alert raised about a ticket, and what it said."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("ticket_id", "kind", "episode", name="uq_alerts_once"),
        Index("ix_alerts_at", "at"),
        Index("ix_alerts_cleared_at", "cleared_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(32))
    # The escalation's audit entry for `escalated` (one per escalation); 0 for the clocks.
    episode: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[str] = mapped_column(Text)
    # When what it said stopped holding (the ticket reached, no longer escalated, closed).
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
