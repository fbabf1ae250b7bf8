"""Ticket routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.deps import SessionDep
from cloud.tickets import service
from cloud.tickets.schemas import TicketOut

router = APIRouter(prefix="/api/tickets", tags=["tickets"])


@router.get("", response_model=list[TicketOut])
def list_tickets(
    db_session: SessionDep,
    state: str | None = None,
    device_id: str | None = None,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[TicketOut]:
    """Tickets, newest first; filter by state, device or category."""
    tickets = service.list_tickets(
        db_session=db_session,
        state=state,
        device_id=device_id,
        category=category,
        limit=limit,
        offset=offset,
    )
    return [TicketOut.model_validate(t) for t in tickets]


@router.get("/{ticket_id}", response_model=TicketOut)
def get_ticket(ticket_id: int, db_session: SessionDep) -> TicketOut:
    """One ticket."""
    return TicketOut.model_validate(
        service.get_or_raise(db_session=db_session, ticket_id=ticket_id)
    )
