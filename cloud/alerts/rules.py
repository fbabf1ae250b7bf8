"""Which open tickets an operator must be told about now, and how to say it (pure).

An alert is raised once per ticket, kind and episode: a ticket escalated, taken back into
dispatch and escalated again raises a second `escalated` (its episode is the escalation's
audit entry); its on-site clock warns once and breaches once. A ticket first seen already
past its target gets the breach alone, not a warning that came too late.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from cloud.dispatch.policy import DispatchPolicy, sla_clock
from cloud.tickets.lifecycle import TicketState


class AlertKind(StrEnum):
    """What an operator is told about."""

    ESCALATED = "escalated"  # crowd and staff were asked in vain: an operator must assign
    ONSITE_WARNING = "onsite_warning"  # most of the on-site time gone, nobody there yet
    ONSITE_BREACHED = "onsite_breached"  # the on-site target passed, nobody there


ALL_KINDS = frozenset(AlertKind)


@dataclass(frozen=True)
class AlertChannel:
    """What is raised and where it goes (from the settings)."""

    kinds: frozenset[AlertKind] = ALL_KINDS
    url: str | None = None  # the alert webhook; None: raised and listed, not sent
    chat: bool = False  # POST {"text": ...} alone
    public_url: str | None = None  # the dashboard's address, for links to the tickets

    def ticket_url(self) -> str | None:
        """The ticket page's address with `{id}` to fill in (None: no address known)."""
        return f"{self.public_url.rstrip('/')}/ui/ticket?id={{id}}" if self.public_url else None

    def webhook_to(self) -> str | None:
        """The webhook's scheme and host, to show without giving its secret path away."""
        if not self.url:
            return None
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


@dataclass(frozen=True)
class Watched:
    """An open top-level ticket nobody has reached yet, as the alert rules see it."""

    ticket_id: int
    title: str
    category: str
    site_id: str | None
    state: str
    opened_at: datetime
    arrive_by: datetime
    technician_id: str | None
    escalation: tuple[int, str] | None = None  # (audit entry id, reason) when escalated


@dataclass(frozen=True)
class Alert:
    """One thing to tell: about which ticket, why, and in words."""

    kind: AlertKind
    ticket_id: int
    episode: int
    summary: str

    @property
    def key(self) -> tuple[int, str, int]:
        """What makes it once: ticket, kind, episode."""
        return self.ticket_id, self.kind.value, self.episode


def due(
    tickets: Iterable[Watched],
    *,
    now: datetime,
    rules: DispatchPolicy,
    kinds: frozenset[AlertKind] = ALL_KINDS,
    sent: set[tuple[int, str, int]] | frozenset[tuple[int, str, int]] = frozenset(),
) -> list[Alert]:
    """The alerts to raise now that were not raised before, by ticket, in kind order."""
    raised = []
    for ticket in sorted(tickets, key=lambda t: t.ticket_id):
        for alert in _alerts_of(ticket, now, rules):
            if alert.kind in kinds and alert.key not in sent:
                raised.append(alert)
    return raised


def _alerts_of(ticket: Watched, now: datetime, rules: DispatchPolicy) -> list[Alert]:
    alerts = []
    if ticket.state == TicketState.ESCALATED and ticket.escalation is not None:
        entry, reason = ticket.escalation
        why = f": {reason}" if reason else ""
        alerts.append(
            Alert(AlertKind.ESCALATED, ticket.ticket_id, entry,
                  f"{_name(ticket)} is escalated{why}. Assign someone.")
        )  # fmt: skip
    clock = sla_clock("arrive", ticket.opened_at, ticket.arrive_by, None, now, rules)
    held = _held(ticket)
    due_at = f"{ticket.arrive_by:%H:%M} UTC"
    if clock.breached:
        late = _minutes(-clock.remaining_s)
        alerts.append(
            Alert(AlertKind.ONSITE_BREACHED, ticket.ticket_id, 0,
                  f"{_name(ticket)}: nobody on site, {late} past the target ({due_at}){held}.")
        )  # fmt: skip
    elif clock.warning:
        left = _minutes(clock.remaining_s)
        said = f"{_name(ticket)}: nobody on site yet, {left} left to the target ({due_at}){held}."
        alerts.append(Alert(AlertKind.ONSITE_WARNING, ticket.ticket_id, 0, said))
    return alerts


def _name(ticket: Watched) -> str:
    return f"#{ticket.ticket_id} {ticket.title}"  # the title says what and where


def _held(ticket: Watched) -> str:
    if ticket.technician_id is None:
        return "; nobody holds it"
    return f"; {ticket.technician_id} holds it ({ticket.state.replace('_', ' ')})"


def _minutes(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


LISTED = 10  # lines a chat message lists; the rest are counted


def headline(alerts: Sequence[Alert], ticket_url: str | None) -> str:
    """One chat message for the alerts of one sweep: a line each (with the ticket's link when
    the dashboard's address is known), up to LISTED, then how many more."""
    count = len(alerts)
    lines = [f"crowdfix: {count} ticket alert{'s' if count != 1 else ''}"]
    for alert in alerts[:LISTED]:
        link = f" {ticket_url.format(id=alert.ticket_id)}" if ticket_url else ""
        lines.append(f"• {alert.summary}{link}")
    if count > LISTED:
        lines.append(f"…and {count - LISTED} more: see the operator desk.")
    return "\n".join(lines)
