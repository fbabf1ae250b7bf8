"""Ticket shapes of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from cloud.tickets.lifecycle import TicketState


class TicketOut(BaseModel):
    """A ticket as operators see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: str | None
    site_id: str | None
    is_site: bool
    parent_id: int | None
    category: str
    priority: str
    state: str
    source: str
    title: str
    description: str
    skills: list[str]
    requested: bool
    urgent: bool
    active_faults: list[str]
    flapping: bool
    occurrences: int
    resolution: str
    opened_at: datetime
    last_occurrence_at: datetime
    sla_accept_by: datetime
    sla_arrive_by: datetime
    sla_resolve_by: datetime
    dispatched_at: datetime | None
    resolved_at: datetime | None
    technician_id: str | None = None
    on_site_at: datetime | None = None
    rating: int | None = None
    rated_by: str | None = None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # Why it is in its state now: the reason given with the change that brought it there
    # (in lists; "" when none was given).
    state_reason: str = ""


class TicketEventOut(BaseModel):
    """One entry of the audit trail."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    kind: str
    from_state: str | None
    to_state: str | None
    reason: str
    data: dict[str, Any]
    assigned_to: str | None = Field(
        default=None,
        description="An assignment's technician; its actor is who decided (the technician "
        "accepting an offer, or the operator assigning by hand).",
    )


class TicketDetail(TicketOut):
    """A ticket with its snapshot, audit trail and linked device tickets."""

    snapshot: dict[str, Any]
    events: list[TicketEventOut]
    children: list[int]


class TicketPage(BaseModel):
    """One page of tickets and how many match in all."""

    total: int
    items: list[TicketOut]


class TransitionIn(BaseModel):
    """Move a ticket to another state, saying why."""

    model_config = ConfigDict(extra="forbid")

    to: TicketState
    reason: Annotated[str, Field(min_length=1, max_length=1000)]
    eta_minutes: Annotated[int, Field(ge=0, le=1440)] | None = None
