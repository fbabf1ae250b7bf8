"""Tickets and their audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, UTCDateTime

# Open = not resolved, closed or cancelled. One open ticket per device and problem, and one
# open site ticket per site and problem: unique partial indexes, so concurrent workers
# cannot both open one (the loser fails on the index and joins instead).
OPEN_SQL = "state NOT IN ('resolved', 'closed', 'cancelled')"


class Ticket(Base):
    """A categorized service request about one device, or about a whole site."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index(
            "uq_tickets_open_device_problem",
            "device_id",
            "problem_key",
            unique=True,
            sqlite_where=text(f"{OPEN_SQL} AND is_site = 0"),
            postgresql_where=text(f"{OPEN_SQL} AND NOT is_site"),
        ),
        Index(
            "uq_tickets_open_site_problem",
            "site_id",
            "problem_key",
            unique=True,
            sqlite_where=text(f"{OPEN_SQL} AND is_site = 1"),
            postgresql_where=text(f"{OPEN_SQL} AND is_site"),
        ),
        Index("ix_tickets_site_problem_opened", "site_id", "problem_key", "opened_at"),
        # The latest tickets (the week's skill demand the dispatcher weighs every round).
        Index("ix_tickets_opened_at", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"), index=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"))
    is_site: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    category: Mapped[str] = mapped_column(String(64))
    problem_key: Mapped[str] = mapped_column(String(80))
    priority: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(24), index=True)
    source: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    requested: Mapped[bool] = mapped_column(Boolean, default=False)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    active_faults: Mapped[list[str]] = mapped_column(JSON, default=list)
    flapping: Mapped[bool] = mapped_column(Boolean, default=False)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    last_occurrence_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolution: Mapped[str] = mapped_column(String(32), default="")
    # The SLA clock starts at the device's own event time, not when the cloud heard of it.
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sla_accept_by: Mapped[datetime] = mapped_column(UTCDateTime)
    sla_arrive_by: Mapped[datetime] = mapped_column(UTCDateTime)
    sla_resolve_by: Mapped[datetime] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_message_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Dispatch: who has it, when dispatch began, when they arrived, how it was rated.
    technician_id: Mapped[str | None] = mapped_column(String(64), index=True)
    dispatch_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When nobody could take it: the dispatcher looks again at this time, not every second.
    next_dispatch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_site_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rating: Mapped[int | None] = mapped_column(Integer)
    rated_by: Mapped[str | None] = mapped_column(String(80))


class TicketEvent(Base):
    """One entry of a ticket's audit trail: who did what, when, why."""

    __tablename__ = "ticket_events"
    # A technician's history starts from the changes that assigned tickets to them.
    __table_args__ = (
        Index("ix_ticket_events_state_assigned_to", "to_state", "assigned_to"),
        # The dispatcher looks at the latest changes every round (technicians to tell).
        Index("ix_ticket_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str | None] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # An assignment's technician (the actor is who decided: them accepting an offer, or an
    # operator assigning by hand); None for every other entry.
    assigned_to: Mapped[str | None] = mapped_column(String(64))
