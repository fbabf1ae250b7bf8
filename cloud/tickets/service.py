"""Ticket use cases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.errors import NotFound
from cloud.tickets.models import Ticket
from cloud.tickets.rules import TicketDraft


def get(*, db_session: Session, ticket_id: int) -> Ticket | None:
    """The ticket with this id, if any."""
    return db_session.get(Ticket, ticket_id)


def get_or_raise(*, db_session: Session, ticket_id: int) -> Ticket:
    """The ticket with this id; NotFound otherwise."""
    ticket = get(db_session=db_session, ticket_id=ticket_id)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    return ticket


def list_tickets(
    *,
    db_session: Session,
    state: str | None = None,
    device_id: str | None = None,
    category: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Ticket]:
    """Tickets, newest first, optionally filtered."""
    query = select(Ticket).order_by(Ticket.id.desc()).limit(limit).offset(offset)
    if state:
        query = query.where(Ticket.state == state)
    if device_id:
        query = query.where(Ticket.device_id == device_id)
    if category:
        query = query.where(Ticket.category == category)
    return db_session.scalars(query).all()


def open_ticket(
    *,
    db_session: Session,
    draft: TicketDraft,
    device_id: str,
    opened_at: datetime,
    source_message_id: str,
    now: datetime,
) -> Ticket:
    """Record a new ticket in state `new`."""
    ticket = Ticket(
        device_id=device_id,
        category=draft.category,
        priority=draft.priority,
        state="new",
        source=draft.source,
        title=draft.title,
        description=draft.description,
        opened_at=opened_at,
        created_at=now,
        updated_at=now,
        source_message_id=source_message_id,
    )
    db_session.add(ticket)
    db_session.flush()
    return ticket
