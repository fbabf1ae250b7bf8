"""The ticket state machine (pure): which transitions are legal, and what the device is told."""

from __future__ import annotations

from enum import StrEnum

from contracts import FeedbackState


class TicketState(StrEnum):
    """Where a ticket is in its life."""

    NEW = "new"
    DISPATCHING = "dispatching"
    ESCALATED = "escalated"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


S = TicketState
TRANSITIONS: dict[TicketState, frozenset[TicketState]] = {
    S.NEW: frozenset({S.DISPATCHING, S.ASSIGNED, S.ESCALATED, S.RESOLVED, S.CANCELLED}),
    S.DISPATCHING: frozenset({S.NEW, S.ASSIGNED, S.ESCALATED, S.RESOLVED, S.CANCELLED}),
    S.ESCALATED: frozenset({S.DISPATCHING, S.ASSIGNED, S.RESOLVED, S.CANCELLED}),
    S.ASSIGNED: frozenset({S.EN_ROUTE, S.ON_SITE, S.DISPATCHING, S.RESOLVED, S.CANCELLED}),
    S.EN_ROUTE: frozenset({S.ON_SITE, S.DISPATCHING, S.RESOLVED, S.CANCELLED}),
    S.ON_SITE: frozenset({S.RESOLVED, S.DISPATCHING, S.CANCELLED}),
    # A resolved ticket is closed after review, or reopened when its fault comes back.
    S.RESOLVED: frozenset({S.CLOSED, S.NEW}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}
OPEN = frozenset({S.NEW, S.DISPATCHING, S.ESCALATED, S.ASSIGNED, S.EN_ROUTE, S.ON_SITE})
DISPATCHED = frozenset({S.ASSIGNED, S.EN_ROUTE, S.ON_SITE})
# What the person at the device is shown when a ticket enters a state.
FEEDBACK: dict[TicketState, FeedbackState] = {
    S.ASSIGNED: FeedbackState.TECHNICIAN_ASSIGNED,
    S.EN_ROUTE: FeedbackState.EN_ROUTE,
    S.ON_SITE: FeedbackState.ON_SITE,
    S.RESOLVED: FeedbackState.RESOLVED,
    S.CANCELLED: FeedbackState.CANCELLED,
}


def can_transition(current: TicketState, target: TicketState) -> bool:
    """True when target may follow current."""
    return target in TRANSITIONS[current]


def allowed_next(current: TicketState) -> list[TicketState]:
    """The states that may follow current, for error messages and the API."""
    return sorted(TRANSITIONS[current])
