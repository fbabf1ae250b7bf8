"""Alert use cases: sweep the open tickets, raise what is due once, queue it for the alert
webhook in the same transaction; list the latest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.alerts import rules
from cloud.alerts.models import RaisedAlert
from cloud.alerts.rules import Alert, AlertChannel, Watched
from cloud.alerts.schemas import AlertOut, AlertsNotice, ChatNotice
from cloud.dispatch.policy import DispatchPolicy
from cloud.dispatch.service import unreached
from cloud.outbound import service as outbound
from cloud.tickets.lifecycle import TicketState
from cloud.tickets.models import Ticket, TicketEvent

# The alert webhook's lane in the outbox: `webhook:@alerts:<url>` (no technician id starts
# with "@"); its POSTs are signed with CROWDFIX_ALERT_WEBHOOK_SECRET when set.
SENDER = "@alerts"
# An alert not delivered within this is history (the desk shows where things stand now).
WORTH_SENDING = timedelta(hours=1)
PER_SWEEP = 100  # alerts raised by one sweep at most; the rest at the next
SWEEP_LOCK = 0x637266616C7274  # the PostgreSQL advisory lock of the sweep ("crfalrt")


def watched(*, db_session: Session) -> list[Watched]:
    """The open top-level tickets nobody has reached, with their latest escalation."""
    rows = db_session.execute(
        select(
            Ticket.id, Ticket.title, Ticket.category, Ticket.site_id, Ticket.state,
            Ticket.opened_at, Ticket.sla_arrive_by, Ticket.technician_id,
        ).where(unreached())
    ).all()  # fmt: skip
    escalated = [row.id for row in rows if row.state == TicketState.ESCALATED]
    entries = _latest_escalations(db_session, escalated)
    return [Watched(*row, escalation=entries.get(row.id)) for row in rows]


def _latest_escalations(db_session: Session, ticket_ids: list[int]) -> dict[int, tuple[int, str]]:
    """Each ticket's latest move to escalated: (its audit entry, its reason)."""
    if not ticket_ids:
        return {}
    latest = (
        select(func.max(TicketEvent.id))
        .where(
            TicketEvent.ticket_id.in_(ticket_ids),
            TicketEvent.to_state == TicketState.ESCALATED.value,
        )
        .group_by(TicketEvent.ticket_id)
    )
    rows = db_session.execute(
        select(TicketEvent.ticket_id, TicketEvent.id, TicketEvent.reason).where(
            TicketEvent.id.in_(latest)
        )
    )
    return {ticket_id: (entry, reason) for ticket_id, entry, reason in rows}


def sweep(
    *, db_session: Session, now: datetime, rules_: DispatchPolicy, channel: AlertChannel
) -> list[RaisedAlert]:
    """Raise the alerts due now (each once) and queue one POST of them all for the webhook;
    nothing while another worker's sweep holds the turn."""
    if not channel.kinds or not _sweeping_alone(db_session):
        return []
    tickets = watched(db_session=db_session)
    sent = _sent(db_session, [t.ticket_id for t in tickets])
    fresh = rules.due(tickets, now=now, rules=rules_, kinds=channel.kinds, sent=sent)
    raised = [_record(db_session, alert, now) for alert in fresh[:PER_SWEEP]]
    if raised:
        text = rules.headline(fresh[:PER_SWEEP], channel.ticket_url())
        _post(db_session, channel, text, [view(row, channel) for row in raised], now)
    return raised


def _sent(db_session: Session, ticket_ids: Sequence[int]) -> set[tuple[int, str, int]]:
    if not ticket_ids:
        return set()
    rows = db_session.execute(
        select(RaisedAlert.ticket_id, RaisedAlert.kind, RaisedAlert.episode).where(
            RaisedAlert.ticket_id.in_(ticket_ids)
        )
    )
    return {tuple(row) for row in rows}  # type: ignore[misc]


def _record(db_session: Session, alert: Alert, now: datetime) -> RaisedAlert:
    row = RaisedAlert(
        ticket_id=alert.ticket_id, kind=alert.kind.value, episode=alert.episode, at=now,
        summary=alert.summary,
    )  # fmt: skip
    db_session.add(row)
    db_session.flush()  # its id, for the notice
    return row


def _post(
    db_session: Session, channel: AlertChannel, text: str, alerts: list[AlertOut], now: datetime
) -> bool:
    """Queue one POST to the alert webhook, if there is one."""
    if not channel.url:
        return False
    notice = ChatNotice(text=text) if channel.chat else AlertsNotice(text=text, alerts=alerts)
    outbound.enqueue(
        db_session=db_session,
        topic=outbound.webhook_topic(SENDER, channel.url),
        message=notice,
        now=now,
        expires_at=now + WORTH_SENDING,
    )
    return True


def view(row: RaisedAlert, channel: AlertChannel) -> AlertOut:
    """An alert as the API and the webhook show it."""
    template = channel.ticket_url()
    url = template.format(id=row.ticket_id) if template else None
    return AlertOut(
        id=row.id, ticket_id=row.ticket_id, kind=row.kind, at=row.at, summary=row.summary,
        url=url,
    )  # fmt: skip


def latest(
    *, db_session: Session, limit: int, ticket_id: int | None = None
) -> Sequence[RaisedAlert]:
    """The newest alerts first (of one ticket, if given)."""
    query = select(RaisedAlert).order_by(RaisedAlert.id.desc()).limit(limit)
    if ticket_id is not None:
        query = query.where(RaisedAlert.ticket_id == ticket_id)
    return db_session.scalars(query).all()


def webhook_health(*, db_session: Session, channel: AlertChannel) -> outbound.WebhookHealth | None:
    """How POSTs to the alert webhook are going (None: there is none)."""
    if not channel.url:
        return None
    return outbound.webhook_health(
        db_session=db_session, topic=outbound.webhook_topic(SENDER, channel.url)
    )


def send_test(*, db_session: Session, channel: AlertChannel, now: datetime, by: str) -> bool:
    """Queue a test POST to the alert webhook (False: there is none), to check the receiver."""
    text = f"crowdfix: a test alert, sent by {by}. crowdfix's alerts reach this channel."
    return _post(db_session, channel, text, [], now)


def _sweeping_alone(db_session: Session) -> bool:
    """Whether this transaction may sweep: on PostgreSQL one worker at a time (a try-lock,
    so a second one skips its turn instead of waiting); SQLite's writes are serial anyway."""
    if db_session.get_bind().dialect.name != "postgresql":
        return True
    return bool(db_session.scalar(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK))))
