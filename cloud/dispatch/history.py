"""A technician's history, pure: the jobs they held, read from tickets' state changes.

A job is a spell of holding a ticket: from the change that assigned it to them (their
accepted offer, or an operator's assignment, whose actor is the operator) to the change that
ended it: resolved, cancelled, or the ticket going back to dispatch (given back, or reassigned
by an operator). The audit trail keeps every such change, so a job given back stays in the
history of the one who gave it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from cloud.tickets.lifecycle import TicketState


@dataclass(frozen=True)
class Change:
    """One state change of a ticket, from its audit trail."""

    ticket_id: int
    at: datetime
    actor: str  # who made it: an assignment's is the technician accepting, or an operator
    to_state: TicketState
    reason: str
    assigned_to: str | None = None  # an assignment's technician


class Ending(StrEnum):
    """How a job ended (open: it has not)."""

    OPEN = "open"
    RESOLVED = "resolved"
    HANDED_ON = "handed on"  # given back, or reassigned by an operator
    CANCELLED = "cancelled"


ENDS = {
    TicketState.RESOLVED: Ending.RESOLVED,
    TicketState.CANCELLED: Ending.CANCELLED,
    TicketState.DISPATCHING: Ending.HANDED_ON,
}


@dataclass(frozen=True)
class HeldJob:
    """One spell of a technician holding a ticket."""

    ticket_id: int
    assigned_at: datetime
    assigned_how: str  # the assignment's reason: "accepted offer 7", "assigned by …"
    en_route_at: datetime | None = None
    on_site_at: datetime | None = None
    ended_at: datetime | None = None
    ending: Ending = Ending.OPEN
    end_reason: str = ""
    ended_by: str = ""  # who made the change that ended it (the technician's own id: them)


def jobs_held(technician_id: str, changes: Sequence[Change]) -> list[HeldJob]:
    """Every spell this technician held a ticket, oldest first. changes: the tickets' state
    changes (any order; ties keep their given order)."""
    jobs: list[HeldJob] = []
    holding: dict[int, HeldJob] = {}  # ticket → the job being held
    for change in sorted(changes, key=lambda c: c.at):
        job = holding.pop(change.ticket_id, None)
        if change.to_state is TicketState.ASSIGNED:
            if job is not None:  # assigned on without going back to dispatch first
                jobs.append(_ended(job, change, Ending.HANDED_ON, ""))
            if change.assigned_to == technician_id:
                holding[change.ticket_id] = HeldJob(change.ticket_id, change.at, change.reason)
            continue
        if job is None:
            continue
        if change.to_state in ENDS:
            jobs.append(_ended(job, change, ENDS[change.to_state], change.reason))
            continue
        if change.to_state is TicketState.EN_ROUTE:
            job = replace(job, en_route_at=job.en_route_at or change.at)
        if change.to_state is TicketState.ON_SITE:
            job = replace(job, on_site_at=job.on_site_at or change.at)
        holding[change.ticket_id] = job
    jobs.extend(holding.values())
    return sorted(jobs, key=lambda j: (j.assigned_at, j.ticket_id))


def _ended(job: HeldJob, change: Change, ending: Ending, reason: str) -> HeldJob:
    """The job, ended by this change (who made it, when, and why)."""
    return replace(job, ended_at=change.at, ending=ending, end_reason=reason, ended_by=change.actor)


def in_time(job: HeldJob, arrive_by: datetime) -> bool | None:
    """On site by the ticket's target (None: they never got there on this job)."""
    return None if job.on_site_at is None else job.on_site_at <= arrive_by


@dataclass(frozen=True)
class JobTotals:
    """A technician's jobs counted by how they ended, and arrivals against the target."""

    held: int
    open: int
    resolved: int
    handed_on: int
    cancelled: int
    on_site_in_time: int
    on_site_late: int


def totals(jobs: Sequence[HeldJob], arrive_by: Mapping[int, datetime]) -> JobTotals:
    """The counts over every job (arrive_by: each ticket's on-site target)."""
    endings = [j.ending for j in jobs]
    arrivals = [in_time(j, arrive_by[j.ticket_id]) for j in jobs]
    return JobTotals(
        held=len(jobs),
        open=endings.count(Ending.OPEN),
        resolved=endings.count(Ending.RESOLVED),
        handed_on=endings.count(Ending.HANDED_ON),
        cancelled=endings.count(Ending.CANCELLED),
        on_site_in_time=arrivals.count(True),
        on_site_late=arrivals.count(False),
    )
