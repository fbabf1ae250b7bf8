"""Ticket routes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.auth.roles import Role
from cloud.clock import utc_now
from cloud.deps import IdPath, SessionDep, StaffDep, WriterSessionDep, require
from cloud.errors import Conflict
from cloud.tickets import service
from cloud.tickets.lifecycle import TicketState
from cloud.tickets.models import Ticket
from cloud.tickets.schemas import TicketDetail, TicketEventOut, TicketOut, TicketPage, TransitionIn

router = APIRouter(
    prefix="/api/tickets",
    tags=["tickets"],
    dependencies=[Depends(require(Role.ADMIN, Role.OPERATOR))],
)


@router.get("", response_model=TicketPage)
def list_tickets(
    db_session: SessionDep,
    state: str | None = None,
    status: Annotated[
        Literal["open", "closed"] | None,
        Query(description="open: still being worked on; closed: resolved, closed or cancelled"),
    ] = None,
    device_id: str | None = None,
    site_id: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> TicketPage:
    """Tickets, newest first, with filters and paging."""
    where = service.TicketFilter(
        state=state,
        open=None if status is None else status == "open",
        device_id=device_id,
        site_id=site_id,
        category=category,
        priority=priority,
    )
    rows, total = service.list_tickets(
        db_session=db_session, where=where, limit=limit, offset=offset
    )
    reasons = service.state_reasons(db_session=db_session, tickets=rows)
    items = [TicketOut.model_validate(t).model_copy(update={"state_reason": reasons.get(t.id, "")})
             for t in rows]  # fmt: skip
    return TicketPage(total=total, items=items)


@router.get("/{ticket_id}", response_model=TicketDetail)
def get_ticket(ticket_id: IdPath, db_session: SessionDep) -> TicketDetail:
    """One ticket with its description, snapshot, audit trail and linked device tickets."""
    ticket = service.get_or_raise(db_session=db_session, ticket_id=ticket_id)
    return detail(db_session, ticket)


@router.post("/{ticket_id}/transitions", response_model=TicketDetail)
def transition_ticket(
    ticket_id: IdPath, body: TransitionIn, caller: StaffDep, db_session: WriterSessionDep
) -> TicketDetail:
    """Move a ticket to another state; illegal moves are refused with 409 and the options.
    Giving it to a technician is POST /api/tickets/{id}/assign: a bare move to assigned would
    name nobody, tell nobody, and count in no one's record."""
    if body.to is TicketState.ASSIGNED:
        raise Conflict(
            f"a ticket is assigned to a technician: POST /api/tickets/{ticket_id}/assign "
            '{"technician_id": "…", "reason": "…"}'
        )
    ticket = service.get_or_raise(db_session=db_session, ticket_id=ticket_id, lock=True)
    service.transition(
        db_session=db_session,
        ticket=ticket,
        to=body.to,
        actor=caller.username,  # by name, as every other step staff take
        reason=body.reason,
        now=utc_now(),
        eta_minutes=body.eta_minutes,
    )
    db_session.commit()
    return detail(db_session, ticket)


def detail(db_session: Session, ticket: Ticket) -> TicketDetail:
    """The full view of a ticket."""
    children = db_session.scalars(select(Ticket.id).where(Ticket.parent_id == ticket.id)).all()
    return TicketDetail.model_validate(
        {
            **TicketOut.model_validate(ticket).model_dump(),
            "snapshot": ticket.snapshot,
            "events": [
                TicketEventOut.model_validate(e)
                for e in service.events(db_session=db_session, ticket_id=ticket.id)
            ],
            "children": list(children),
        }
    )
