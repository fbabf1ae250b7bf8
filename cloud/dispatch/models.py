"""Technicians and the offers made to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from cloud.db import Base, UTCDateTime


class Technician(Base):
    """A person who fixes things: crowd (freelance, gets offers) or staff."""

    __tablename__ = "technicians"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))  # crowd | staff
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    # skill → ISO date the certification for it expires
    certifications: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    home_lat: Mapped[float] = mapped_column(Float)
    home_lon: Mapped[float] = mapped_column(Float)
    radius_km: Mapped[float] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    position_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    available: Mapped[bool] = mapped_column(Boolean, default=True)  # the manual toggle
    # Weekly working hours (`mon-fri 07:00-19:00`, cloud/dispatch/shifts.py) in their time
    # zone; none: the toggle alone says when they work.
    shifts: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Time off (`2026-12-22..2027-01-05`, local dates, both included): no offers on those
    # days, whatever the shifts and the toggle say.
    time_off: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    rating_sum: Mapped[float] = mapped_column(Float, default=0.0)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_reason: Mapped[str] = mapped_column(Text, default="")
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    # Every POST to the webhook is signed (cloud/outbound/signing.py) with a secret derived
    # from the deployment's key, the id and this version (0: none made yet): the database
    # alone cannot sign. Shown only when made (POST /api/technicians/{id}/webhook-secret).
    webhook_secret_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A secret stored as is, from before secrets were derived; used until the next rotation.
    webhook_secret: Mapped[str | None] = mapped_column(String(100))
    last_job_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Left the crowd or the staff: no offers, no jobs, accounts closed; history kept.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Moves on with every change of the row (_next_revision): a dispatcher keeps the
    # technicians' profiles from round to round and reads again only those whose moved.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


@event.listens_for(Technician, "before_update")
def _next_revision(_mapper: Mapper[Technician], _connection: Connection, tech: Technician) -> None:
    """Every update of a technician through the ORM (the only way the service writes them)
    moves their revision on, in SQL (`revision = revision + 1`): two transactions changing
    the same technician at once move it on twice, where each adding one to what it had
    read would leave the second change unseen."""
    tech.revision = Technician.revision + 1  # an SQL expression: set by the UPDATE itself


class Offer(Base):
    """One ticket offered to one technician, with a deadline; the candidates considered and
    each one's score are kept with it, so the choice can be explained."""

    __tablename__ = "offers"
    __table_args__ = (
        # At most one pending offer per ticket: two dispatchers cannot both offer it.
        Index(
            "uq_offers_pending_ticket",
            "ticket_id",
            unique=True,
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
        Index("ix_offers_pending_deadline", "state", "deadline"),
        Index("ix_offers_technician", "technician_id", "offered_at"),
        Index("ix_offers_changed_at", "changed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    technician_id: Mapped[str] = mapped_column(ForeignKey("technicians.id"))
    stage: Mapped[str] = mapped_column(String(8))  # crowd | staff | manual
    state: Mapped[str] = mapped_column(String(12))  # pending accepted declined expired withdrawn
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    eta_min: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The candidates the explanation does not list, counted by why (matching.explain).
    left_out: Mapped[dict[str, int]] = mapped_column(JSON, default=dict, server_default="{}")
    # When its state last changed (made, answered, lapsed, withdrawn): a dispatcher re-reads
    # the answers of only the technicians whose offers changed since its last round.
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RatingLink(Base):
    """A one-time link for the requester (the person at the device) to rate a job. Only the
    token's SHA-256 is kept; a new link for the ticket replaces the old one."""

    __tablename__ = "rating_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TechnicianEvent(Base):
    """One entry of a technician's own audit trail: paused by policy, reviewed, retired,
    reinstated; who did it, when and why."""

    __tablename__ = "technician_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    technician_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")


class SweepMark(Base):
    """How far a recurring sweep of the audit trail has got: after every worker was down, the
    next sweep reads back to here, so nothing that changed meanwhile is missed."""

    __tablename__ = "sweep_marks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
