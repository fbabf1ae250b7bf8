"""Ticket use cases: find, create, join, transition (with audit and device feedback), list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.errors import Conflict, NotFound
from cloud.outbound import service as outbound
from cloud.tickets.lifecycle import FEEDBACK, OPEN, TicketState, allowed_next, can_transition
from cloud.tickets.models import Ticket, TicketEvent
from cloud.tickets.rules import TicketView, dispatched
from cloud.tickets.taxonomy import Priority, ResolvedCategory
from contracts import Command, Feedback, command_topic

SYSTEM = "system"


def get(*, db_session: Session, ticket_id: int, lock: bool = False) -> Ticket | None:
    """The ticket with this id, if any."""
    return db_session.get(Ticket, ticket_id, with_for_update=lock)


def get_or_raise(*, db_session: Session, ticket_id: int, lock: bool = False) -> Ticket:
    """The ticket with this id; NotFound otherwise."""
    ticket = get(db_session=db_session, ticket_id=ticket_id, lock=lock)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    return ticket


def find_open(*, db_session: Session, device_id: str, problem_key: str) -> Ticket | None:
    """The device's open ticket for this problem, if any."""
    return db_session.scalars(
        select(Ticket).where(
            Ticket.device_id == device_id,
            Ticket.problem_key == problem_key,
            Ticket.is_site.is_(False),
            Ticket.state.in_([s.value for s in OPEN]),
        )
    ).first()


def find_last(*, db_session: Session, device_id: str, problem_key: str) -> Ticket | None:
    """The device's most recent ticket for this problem, open or not."""
    return db_session.scalars(
        select(Ticket)
        .where(
            Ticket.device_id == device_id,
            Ticket.problem_key == problem_key,
            Ticket.is_site.is_(False),
        )
        .order_by(Ticket.id.desc())
    ).first()


def view(ticket: Ticket | None) -> TicketView | None:
    """What the pure rules see of a ticket."""
    if ticket is None:
        return None
    state = TicketState(ticket.state)
    return TicketView(
        id=ticket.id,
        state=state,
        priority=Priority.parse(ticket.priority),
        requested=ticket.requested,
        active_faults=frozenset(ticket.active_faults),
        dispatched=dispatched(state, ticket.dispatched_at),
        flapping=ticket.flapping,
        resolved_at=ticket.resolved_at,
        resolution=ticket.resolution,
    )


@dataclass(frozen=True, slots=True)
class NewTicket:
    """Everything a new ticket says."""

    category: ResolvedCategory
    priority: Priority
    source: str
    title: str
    description: str
    snapshot: dict[str, Any]
    opened_at: datetime
    device_id: str | None = None
    site_id: str | None = None
    is_site: bool = False
    requested: bool = False
    urgent: bool = False
    active_faults: tuple[str, ...] = ()
    flapping: bool = False
    source_message_id: str | None = None


def create(*, db_session: Session, new: NewTicket, reasons: Sequence[str], now: datetime) -> Ticket:
    """Open a ticket in state `new`, SLA deadlines from the device's event time."""
    sla = new.category.sla
    ticket = Ticket(
        device_id=new.device_id,
        site_id=new.site_id,
        is_site=new.is_site,
        category=new.category.name,
        problem_key=new.category.name,
        priority=new.priority.label,
        state=TicketState.NEW.value,
        source=new.source,
        title=new.title,
        description=new.description,
        snapshot=new.snapshot,
        skills=list(new.category.skills),
        requested=new.requested,
        urgent=new.urgent,
        active_faults=list(new.active_faults),
        flapping=new.flapping,
        occurrences=1,
        last_occurrence_at=new.opened_at,
        opened_at=new.opened_at,
        sla_accept_by=new.opened_at + timedelta(minutes=sla.accept_min),
        sla_arrive_by=new.opened_at + timedelta(minutes=sla.arrive_min),
        sla_resolve_by=new.opened_at + timedelta(minutes=sla.resolve_min),
        created_at=now,
        updated_at=now,
        source_message_id=new.source_message_id,
    )
    db_session.add(ticket)
    db_session.flush()  # the open-problem unique index speaks here on a race
    record(
        db_session=db_session,
        ticket=ticket,
        actor=SYSTEM,
        kind="opened",
        now=now,
        reason="; ".join(reasons),
        to_state=TicketState.NEW.value,
        data={"priority": new.priority.label, "source": new.source},
    )
    return ticket


def record(
    *,
    db_session: Session,
    ticket: Ticket,
    actor: str,
    kind: str,
    now: datetime,
    reason: str = "",
    from_state: str | None = None,
    to_state: str | None = None,
    data: dict[str, Any] | None = None,
    assigned_to: str | None = None,
) -> None:
    """Add an entry to the audit trail."""
    db_session.add(
        TicketEvent(
            ticket_id=ticket.id,
            at=now,
            actor=actor,
            kind=kind,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            data=data or {},
            assigned_to=assigned_to,
        )
    )


def occurrence(
    *,
    db_session: Session,
    ticket: Ticket,
    at: datetime,
    what: str,
    now: datetime,
    priority: Priority | None = None,
) -> None:
    """Another report of the same problem joins the ticket."""
    ticket.occurrences += 1
    ticket.last_occurrence_at = max(ticket.last_occurrence_at, at)
    ticket.updated_at = now
    data: dict[str, Any] = {"occurrences": ticket.occurrences}
    if priority is not None:
        data["priority"] = {"from": ticket.priority, "to": priority.label}
        ticket.priority = priority.label
    record(
        db_session=db_session,
        ticket=ticket,
        actor=SYSTEM,
        kind="occurrence",
        now=now,
        reason=what,
        data=data,
    )


def state_reasons(*, db_session: Session, tickets: Sequence[Ticket]) -> dict[int, str]:
    """Why each ticket is in its state now: the reason of its latest change of state."""
    changes = latest_changes(db_session=db_session, ticket_ids=[t.id for t in tickets])
    return {ticket_id: reason for ticket_id, (_entry, reason) in changes.items()}


def latest_changes(*, db_session: Session, ticket_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
    """Each ticket's latest change of state: (its audit entry's id, its reason); one query
    for the lot, a row per ticket."""
    if not ticket_ids:
        return {}
    latest = (
        select(func.max(TicketEvent.id))
        .where(TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.kind == "transition")
        .group_by(TicketEvent.ticket_id)
    )
    rows = db_session.execute(
        select(TicketEvent.ticket_id, TicketEvent.id, TicketEvent.reason).where(
            TicketEvent.id.in_(latest)
        )
    )
    return {ticket_id: (entry, reason) for ticket_id, entry, reason in rows}


def transition(
    *,
    db_session: Session,
    ticket: Ticket,
    to: TicketState,
    actor: str,
    reason: str,
    now: datetime,
    data: dict[str, Any] | None = None,
    eta_minutes: int | None = None,
    assigned_to: str | None = None,
) -> None:
    """Move a ticket to a new state: checked, audited, and told to the device. assigned_to:
    the technician an assignment gives the ticket to (their history reads it; a site's device
    tickets follow it without naming them)."""
    current = TicketState(ticket.state)
    if not can_transition(current, to):
        options = ", ".join(s.value for s in allowed_next(current)) or "none (it is final)"
        raise Conflict(
            f"ticket {ticket.id} is {current.value}: it cannot become {to.value} "
            f"(possible: {options})"
        )
    ticket.state, ticket.updated_at = to.value, now
    if to in (TicketState.ASSIGNED, TicketState.EN_ROUTE, TicketState.ON_SITE):
        ticket.dispatched_at = ticket.dispatched_at or now
    if to is TicketState.RESOLVED:
        ticket.resolved_at = now
    if to is TicketState.CLOSED:
        ticket.closed_at = now
    if to is TicketState.NEW:
        ticket.resolved_at, ticket.resolution = None, ""
    if eta_minutes is not None:  # the technician's own estimate, in the trail as on the device
        data = {**(data or {}), "eta_minutes": eta_minutes}
    record(
        db_session=db_session,
        ticket=ticket,
        actor=actor,
        kind="transition",
        now=now,
        reason=reason,
        from_state=current.value,
        to_state=to.value,
        data=data,
        assigned_to=assigned_to,
    )
    tell_device(db_session=db_session, ticket=ticket, state=to, now=now, eta=eta_minutes)
    for child in children(db_session=db_session, ticket=ticket):
        if can_transition(TicketState(child.state), to):
            transition(
                db_session=db_session,
                ticket=child,
                to=to,
                now=now,
                eta_minutes=eta_minutes,
                actor=f"site ticket {ticket.id}",
                reason=reason,
            )


def tell_device(
    *,
    db_session: Session,
    ticket: Ticket,
    state: TicketState,
    now: datetime,
    eta: int | None = None,
) -> None:
    """Queue the feedback command the device shows for this state, if any."""
    feedback_state = FEEDBACK.get(state)
    if feedback_state is None or ticket.device_id is None:
        return
    message = Feedback(
        device_id=ticket.device_id,
        timestamp=now,
        state=feedback_state,
        ticket_id=ticket.id,
        eta_minutes=eta,
    )
    outbound.enqueue(
        db_session=db_session,
        topic=command_topic(ticket.device_id, Command.FEEDBACK),
        message=message,
        now=now,
    )


def children(*, db_session: Session, ticket: Ticket) -> Sequence[Ticket]:
    """Open device tickets linked to a site ticket."""
    if not ticket.is_site:
        return []
    return db_session.scalars(
        select(Ticket).where(
            Ticket.parent_id == ticket.id, Ticket.state.in_([s.value for s in OPEN])
        )
    ).all()


def events(
    *, db_session: Session, ticket_id: int, kind: str | None = None
) -> Sequence[TicketEvent]:
    """A ticket's audit trail (of one kind, when given), oldest first."""
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
    if kind is not None:
        query = query.where(TicketEvent.kind == kind)
    return db_session.scalars(query.order_by(TicketEvent.id)).all()


@dataclass(frozen=True, slots=True)
class TicketFilter:
    """What to list."""

    state: str | None = None
    open: bool | None = None
    device_id: str | None = None
    site_id: str | None = None
    category: str | None = None
    priority: str | None = None


def list_tickets(
    *, db_session: Session, where: TicketFilter, limit: int = 100, offset: int = 0
) -> tuple[Sequence[Ticket], int]:
    """Tickets newest first, and how many match in all."""
    query = select(Ticket)
    for column, value in (
        (Ticket.state, where.state),
        (Ticket.device_id, where.device_id),
        (Ticket.site_id, where.site_id),
        (Ticket.category, where.category),
        (Ticket.priority, where.priority),
    ):
        if value:
            query = query.where(column == value)
    if where.open is not None:
        states = [s.value for s in OPEN]
        query = query.where(Ticket.state.in_(states) if where.open else Ticket.state.not_in(states))
    total = db_session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db_session.scalars(query.order_by(Ticket.id.desc()).limit(limit).offset(offset)).all()
    return rows, total
