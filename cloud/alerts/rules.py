"""Which open tickets an operator must be told about now, and how to say it (pure).

An alert is raised once per ticket, kind and episode: a ticket escalated, taken back into
dispatch and escalated again raises a second `escalated` (its episode is the escalation's
audit entry); its on-site clock warns once and breaches once. A ticket first seen already
past its target gets the breach alone, not a warning that came too late.

An alert is cleared, once, when what it said no longer holds: the ticket is no longer
escalated, someone is on site, or it was resolved or cancelled. Operators are told so, that
nobody acts on an alert already dealt with; an alert a later one replaces (a warning whose
breach came, an escalation escalated again) is cleared without a word.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from urllib.parse import urlsplit

from cloud.dispatch.policy import DispatchPolicy, sla_clock
from cloud.tickets.lifecycle import OPEN, TicketState


class AlertKind(StrEnum):
    """What an operator is told about."""

    ESCALATED = "escalated"  # crowd and staff were asked in vain: an operator must assign
    ONSITE_WARNING = "onsite_warning"  # most of the on-site time gone, nobody there yet
    ONSITE_BREACHED = "onsite_breached"  # the on-site target passed, nobody there


ALL_KINDS = frozenset(AlertKind)
URGENCY = {AlertKind.ESCALATED: 0, AlertKind.ONSITE_BREACHED: 1, AlertKind.ONSITE_WARNING: 2}


@dataclass(frozen=True)
class AlertChannel:
    """What is raised and where it goes (from the settings)."""

    kinds: frozenset[AlertKind] = ALL_KINDS
    url: str | None = None  # the alert webhook; None: raised and listed, not sent
    # crowdfix: its JSON (text and lists); chat: {"text": ...} alone; alertmanager: the
    # alerts for Alertmanager's API (POST /api/v2/alerts), firing ones sent again each minute.
    format: str = "crowdfix"
    timezone: str = "UTC"  # the operators' (IANA): the times an alert's words give
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
    tz: tzinfo = UTC,
) -> list[Alert]:
    """The alerts to raise now that were not raised before, most urgent first: escalations,
    then breaches, then warnings, each kind by on-site target (so when a storm raises more
    than a sweep sends, the first message names those that waited longest)."""
    raised = []
    for ticket in tickets:
        for alert in _alerts_of(ticket, now, rules, tz):
            if alert.kind in kinds and alert.key not in sent:
                raised.append((URGENCY[alert.kind], ticket.arrive_by, ticket.ticket_id, alert))
    return [alert for *_order, alert in sorted(raised, key=lambda r: r[:3])]


def _alerts_of(ticket: Watched, now: datetime, rules: DispatchPolicy, tz: tzinfo) -> list[Alert]:
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
    due_at = f"{ticket.arrive_by.astimezone(tz):%H:%M %Z}"
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


def _name(ticket: Watched | Standing) -> str:
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


@dataclass(frozen=True)
class Standing:
    """An alert raised and not cleared yet, and where its ticket stands now."""

    alert_id: int
    kind: AlertKind
    episode: int
    ticket_id: int
    title: str
    state: str
    arrive_by: datetime
    on_site_at: datetime | None
    technician_id: str | None
    escalation: int | None = None  # the ticket's latest escalation entry
    parent_id: int | None = None  # the site ticket it became part of (its alerts go there)


@dataclass(frozen=True)
class Cleared:
    """An alert that no longer holds, and what to say of it (None: nothing, a later alert
    says it)."""

    alert_id: int
    ticket_id: int
    kind: AlertKind
    summary: str | None


def cleared(standing: Iterable[Standing], *, now: datetime) -> list[Cleared]:
    """The alerts that no longer hold, by ticket."""
    done = (_cleared(alert, now) for alert in sorted(standing, key=lambda s: s.alert_id))
    return sorted((c for c in done if c is not None), key=lambda c: (c.ticket_id, c.alert_id))


def _cleared(alert: Standing, now: datetime) -> Cleared | None:
    def said(summary: str | None) -> Cleared:
        return Cleared(alert.alert_id, alert.ticket_id, alert.kind, summary)

    if alert.parent_id is not None:
        return said(f"{_name(alert)}: now part of site ticket #{alert.parent_id}.")
    if alert.kind is AlertKind.ESCALATED:
        if alert.state != TicketState.ESCALATED:
            return said(f"{_name(alert)}: no longer escalated; {_standing(alert)}.")
        return None if alert.escalation == alert.episode else said(None)
    if alert.state in OPEN and not _reached(alert):
        breach_came = alert.kind is AlertKind.ONSITE_WARNING and now > alert.arrive_by
        return said(None) if breach_came else None
    return said(f"{_name(alert)}: {_standing(alert)}.")


def _reached(alert: Standing) -> bool:
    # A site's device ticket is moved on site with its site ticket, with no time of its own.
    return alert.on_site_at is not None or alert.state == TicketState.ON_SITE


def _standing(alert: Standing) -> str:
    """Where the ticket stands, in words."""
    if alert.state in OPEN and _reached(alert):
        if alert.on_site_at is None:
            return "someone is on site"
        late = (alert.on_site_at - alert.arrive_by).total_seconds()
        when = f"{_minutes(late)} after the target" if late > 0 else "in time"
        return f"{alert.technician_id or 'someone'} is on site, {when}"
    if alert.state in (TicketState.ASSIGNED, TicketState.EN_ROUTE):
        return f"{alert.technician_id} holds it ({alert.state.replace('_', ' ')})"
    if alert.state in (TicketState.NEW, TicketState.DISPATCHING):
        return "back in dispatch"
    return str(alert.state)  # resolved, closed, cancelled


# For Alertmanager: each kind's alertname and severity; an alert is told apart by its labels.
ALERTNAMES = {
    AlertKind.ESCALATED: "CrowdfixTicketEscalated",
    AlertKind.ONSITE_WARNING: "CrowdfixOnSiteWarning",
    AlertKind.ONSITE_BREACHED: "CrowdfixOnSiteBreached",
}
SEVERITY = {
    AlertKind.ESCALATED: "critical",
    AlertKind.ONSITE_WARNING: "warning",
    AlertKind.ONSITE_BREACHED: "critical",
}


def labels(kind: AlertKind, ticket_id: int, episode: int) -> dict[str, str]:
    """An alert's labels for Alertmanager: the same when it fires, is sent again and ends."""
    return {
        "alertname": ALERTNAMES[kind], "severity": SEVERITY[kind], "service": "crowdfix",
        "kind": kind.value, "ticket": str(ticket_id), "episode": str(episode),
    }  # fmt: skip


LISTED = 10  # lines a chat message lists; the rest are counted


def headline(
    alerts: Sequence[Alert], ticket_url: str | None, settled: Sequence[Cleared] = ()
) -> str:
    """One chat message for one sweep: a line for each alert raised (•) and each cleared (✓),
    with the ticket's link when the dashboard's address is known, up to LISTED, then how many
    more."""
    told = [c for c in settled if c.summary]
    raised = f"{len(alerts)} ticket alert{'s' if len(alerts) != 1 else ''}"
    if not alerts:  # only some that are over
        title = f"{len(told)} ticket alert{'s' if len(told) != 1 else ''} cleared"
    else:
        title = f"{raised}, {len(told)} cleared" if told else raised
    lines = [f"crowdfix: {title}"]
    items = [("•", a.ticket_id, a.summary) for a in alerts]
    items += [("✓", c.ticket_id, c.summary or "") for c in told]
    for mark, ticket_id, summary in items[:LISTED]:
        link = f" {ticket_url.format(id=ticket_id)}" if ticket_url else ""
        lines.append(f"{mark} {summary}{link}")
    if len(items) > LISTED:
        lines.append(f"…and {len(items) - LISTED} more: see the operator desk.")
    return "\n".join(lines)
