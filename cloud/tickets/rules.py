"""Pure ticket rules: events and the current state in, decisions out. No session, no clock.

One open ticket per device and problem (the ticket category): repeats join it; a fault
that clears before anyone is dispatched resolves it (per the category's policy); a fault
that keeps coming back is flapping and holds one ticket open; the cancel gesture cancels
the requester's open request; several devices of one site with the same problem become
one site-level ticket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloud.tickets.lifecycle import DISPATCHED, OPEN, TicketState
from cloud.tickets.taxonomy import (
    AutoResolve,
    BusinessHours,
    Flapping,
    Priority,
    ResolvedCategory,
    SiteGrouping,
)
from contracts import Action, Severity

# States a requester may still cancel from (not once the technician is on site).
CANCELLABLE = frozenset(
    {
        TicketState.NEW,
        TicketState.DISPATCHING,
        TicketState.ESCALATED,
        TicketState.ASSIGNED,
        TicketState.EN_ROUTE,
    }
)
_SEVERITY_STEP = {Severity.INFO: -1, Severity.WARNING: 0, Severity.MAJOR: 1, Severity.CRITICAL: 2}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class TicketView:
    """What the rules need to know about an existing ticket."""

    id: int
    state: TicketState
    priority: Priority
    requested: bool = False
    active_faults: frozenset[str] = frozenset()
    dispatched: bool = False
    flapping: bool = False
    resolved_at: datetime | None = None
    resolution: str = ""

    @property
    def open(self) -> bool:
        """Still being worked on."""
        return self.state in OPEN


# -- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Open:
    """Open a new ticket."""

    priority: Priority
    reasons: tuple[str, ...]
    flapping: bool = False


@dataclass(frozen=True, slots=True)
class Join:
    """Another occurrence of an open ticket's problem; raise its priority if needed."""

    ticket_id: int
    priority: Priority | None = None  # the new priority when it goes up
    flapping: bool = False


@dataclass(frozen=True, slots=True)
class Reopen:
    """A fault came back soon after it resolved its ticket: the same ticket, reopened."""

    ticket_id: int
    priority: Priority
    flapping: bool


@dataclass(frozen=True, slots=True)
class Cancel:
    """The requester cancelled their request."""

    ticket_id: int


@dataclass(frozen=True, slots=True)
class FaultCleared:
    """A fault of the ticket cleared; resolve the ticket or just note it."""

    ticket_id: int
    resolve: bool
    note: str


@dataclass(frozen=True, slots=True)
class Note:
    """Record something on a ticket without changing its state."""

    ticket_id: int
    text: str


@dataclass(frozen=True, slots=True)
class Ignore:
    """Nothing to do (said why)."""

    reason: str


Decision = Open | Join | Reopen | Cancel | FaultCleared | Note | Ignore


# -- priority -------------------------------------------------------------------------------


def in_business_hours(now: datetime, hours: BusinessHours, timezone: str | None = None) -> bool:
    """True when `now` falls in the business hours, in the site's (or the taxonomy's) zone."""
    try:
        local = now.astimezone(ZoneInfo(timezone or hours.timezone))
    except (ZoneInfoNotFoundError, ValueError):
        local = now.astimezone(ZoneInfo(hours.timezone))
    if _DAYS[local.weekday()] not in hours.days:
        return False
    return hours.start <= local.time().replace(tzinfo=None) < hours.end


def priority(
    category: ResolvedCategory,
    *,
    severity: Severity | None = None,
    urgent: bool = False,
    site_criticality: Priority | None = None,
    business_hours: bool = True,
) -> tuple[Priority, tuple[str, ...]]:
    """Combine category, fault severity, the urgent gesture, site criticality and the hour;
    return the priority and why, step by step."""
    level = int(category.priority)
    reasons = [f"{category.name} is {category.priority.label} by default"]
    if severity is not None and _SEVERITY_STEP[severity]:
        level += _SEVERITY_STEP[severity]
        reasons.append(f"{severity.value} fault: {_SEVERITY_STEP[severity]:+d}")
    if urgent:
        level = max(level + 1, Priority.HIGH)
        reasons.append("urgent press: +1, at least high")
    if site_criticality is not None and site_criticality != Priority.NORMAL:
        step = 1 if site_criticality > Priority.NORMAL else -1
        level += step
        reasons.append(f"{site_criticality.label} site: {step:+d}")
    if not business_hours and category.after_hours == "lower" and not urgent:
        level -= 1
        reasons.append("outside business hours: -1")
    return Priority(min(Priority.CRITICAL, max(Priority.LOW, level))), tuple(reasons)


def _higher(current: Priority, candidate: Priority) -> Priority | None:
    return candidate if candidate > current else None


# -- the rules ------------------------------------------------------------------------------


def decide_button(
    action: Action,
    open_ticket: TicketView | None,
    *,
    wanted: Priority,
    reasons: tuple[str, ...],
    cancelled_later: bool = False,
) -> Decision:
    """A press: open, join, or cancel the requester's open request."""
    if action is Action.CANCEL:
        if open_ticket is None:
            return Ignore("cancel pressed with no open request")
        if open_ticket.state in CANCELLABLE and not open_ticket.active_faults:
            return Cancel(open_ticket.id)
        why = "faults are still active" if open_ticket.active_faults else "a technician is on site"
        return Note(open_ticket.id, f"The requester pressed cancel; kept open because {why}.")
    if cancelled_later:
        return Ignore("a later cancel press from the same button already withdrew this request")
    if open_ticket is not None:
        return Join(open_ticket.id, _higher(open_ticket.priority, wanted))
    return Open(wanted, reasons)


def is_flapping(raise_times: Sequence[datetime], now: datetime, policy: Flapping) -> bool:
    """Raised `policy.raises` times or more within the window."""
    since = now - timedelta(minutes=policy.window_min)
    return sum(1 for t in raise_times if t >= since) >= policy.raises


def decide_fault_raised(
    open_ticket: TicketView | None,
    last_ticket: TicketView | None,
    *,
    now: datetime,
    raise_times: Sequence[datetime],
    flapping_policy: Flapping,
    wanted: Priority,
    reasons: tuple[str, ...],
) -> Decision:
    """A fault raised: join the open ticket, reopen one it resolved moments ago, or open one."""
    flapping = is_flapping(raise_times, now, flapping_policy)
    if open_ticket is not None:
        return Join(open_ticket.id, _higher(open_ticket.priority, wanted), flapping)
    window = timedelta(minutes=flapping_policy.window_min)
    if (
        last_ticket is not None
        and last_ticket.state is TicketState.RESOLVED
        and last_ticket.resolution == "auto"
        and last_ticket.resolved_at is not None
        and now - last_ticket.resolved_at <= window
    ):
        return Reopen(last_ticket.id, max(wanted, last_ticket.priority), flapping)
    return Open(wanted, reasons, flapping)


def decide_fault_cleared(
    code: str, open_ticket: TicketView | None, policy: AutoResolve
) -> Decision:
    """A fault cleared: resolve its ticket if nobody is needed any more, else note it."""
    if open_ticket is None or code not in open_ticket.active_faults:
        return Ignore(f"no open ticket waits for {code} to clear")
    if open_ticket.active_faults - {code}:
        return FaultCleared(open_ticket.id, False, f"{code} cleared; other faults remain active.")
    if open_ticket.requested:
        return FaultCleared(open_ticket.id, False, f"{code} cleared; a person asked for help.")
    if open_ticket.flapping:
        return FaultCleared(open_ticket.id, False, f"{code} cleared, but it is flapping.")
    if policy is AutoResolve.ALWAYS or (
        policy is AutoResolve.WHEN_UNDISPATCHED and not open_ticket.dispatched
    ):
        return FaultCleared(open_ticket.id, True, f"{code} cleared before anyone was needed.")
    return FaultCleared(
        open_ticket.id, False, f"{code} cleared after dispatch: the technician should check it."
    )


@dataclass(frozen=True, slots=True)
class SiteCandidate:
    """An open device ticket of a site with the problem in question."""

    ticket_id: int
    device_id: str
    opened_at: datetime
    parent_id: int | None


@dataclass(frozen=True, slots=True)
class SiteDecision:
    """Open a site ticket (site_ticket_id None) or use one; link these device tickets."""

    site_ticket_id: int | None
    link: tuple[int, ...] = field(default_factory=tuple)


def decide_site_grouping(
    candidates: Sequence[SiteCandidate],
    open_site_ticket: int | None,
    *,
    now: datetime,
    policy: SiteGrouping,
) -> SiteDecision | None:
    """Several devices of one site with the same problem at once: one site-level ticket."""
    unlinked = tuple(sorted(c.ticket_id for c in candidates if c.parent_id is None))
    if open_site_ticket is not None:
        return SiteDecision(open_site_ticket, unlinked) if unlinked else None
    since = now - timedelta(minutes=policy.window_min)
    recent_devices = {c.device_id for c in candidates if c.opened_at >= since}
    if len(recent_devices) >= policy.devices:
        return SiteDecision(None, unlinked)
    return None


def dispatched(state: TicketState, dispatched_at: datetime | None) -> bool:
    """Someone was sent (now or earlier in the ticket's life)."""
    return state in DISPATCHED or dispatched_at is not None
