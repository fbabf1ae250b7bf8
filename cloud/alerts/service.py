"""Alert use cases: sweep the open tickets, clear what no longer holds and raise what is due,
each once, queue it for the alert webhook in the same transaction; list the latest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cloud.alerts import rules
from cloud.alerts.models import RaisedAlert
from cloud.alerts.rules import Alert, AlertChannel, AlertKind, Cleared, Standing, Watched
from cloud.alerts.schemas import (
    AlertmanagerNotice,
    AlertOut,
    AlertsNotice,
    ChatNotice,
    ClearedOut,
    PostableAlert,
)
from cloud.dispatch.policy import DispatchPolicy
from cloud.dispatch.service import unreached
from cloud.outbound import service as outbound
from cloud.tickets import service as tickets
from cloud.tickets.lifecycle import TicketState
from cloud.tickets.models import Ticket

# The alert webhook's lane in the outbox: `webhook:@alerts:<url>` (no technician id starts
# with "@"); its POSTs are signed with CROWDFIX_ALERT_WEBHOOK_SECRET when set.
SENDER = "@alerts"
# An alert not delivered within this is history (the desk shows where things stand now).
WORTH_SENDING = timedelta(hours=1)
ESCALATED = TicketState.ESCALATED.value
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
    entries = _escalations(db_session, [row.id for row in rows if row.state == ESCALATED])
    return [Watched(*row, escalation=entries.get(row.id)) for row in rows]


def _escalations(db_session: Session, ticket_ids: list[int]) -> dict[int, tuple[int, str]]:
    """Of escalated tickets, the escalation (audit entry, reason): their latest change."""
    return tickets.latest_changes(db_session=db_session, ticket_ids=ticket_ids)


@dataclass(frozen=True)
class Swept:
    """What one sweep raised and cleared."""

    raised: list[RaisedAlert] = field(default_factory=list)
    cleared: list[Cleared] = field(default_factory=list)


def sweep(
    *,
    db_session: Session,
    now: datetime,
    rules_: DispatchPolicy,
    channel: AlertChannel,
    resend: bool = False,
) -> Swept:
    """Clear the alerts that no longer hold and raise those due now (each once), and queue
    one POST of it all for the webhook; nothing while another worker's sweep holds the turn.
    resend (Alertmanager): send every alert that still holds again, so it stays firing."""
    if not channel.kinds or not _sweeping_alone(db_session):
        return Swept()
    settled, fresh = _decide(db_session, now, rules_, channel)
    if settled:
        db_session.execute(
            update(RaisedAlert)
            .where(RaisedAlert.id.in_([c.alert_id for c in settled]))
            .values(cleared_at=now)
        )
    raised = [_record(db_session, alert, now) for alert in fresh]
    if channel.format == "alertmanager":
        _post_to_alertmanager(db_session, channel, raised, settled, now, resend)
        return Swept(raised, settled)
    told = [_cleared_view(c, channel) for c in settled if c.summary]
    if raised or told:
        text = rules.headline(fresh, channel.ticket_url(), settled)
        _post(db_session, channel, text, [view(row, channel) for row in raised], now, told)
    return Swept(raised, settled)


def anything_due(
    *, db_session: Session, now: datetime, rules_: DispatchPolicy, channel: AlertChannel
) -> bool:
    """Whether a sweep now would raise or clear an alert: a read, so the steady sweep of a
    deployment with thousands of open tickets never takes the write lock for nothing."""
    if not channel.kinds:
        return False
    settled, fresh = _decide(db_session, now, rules_, channel)
    return bool(settled or fresh)


def _decide(
    db_session: Session, now: datetime, rules_: DispatchPolicy, channel: AlertChannel
) -> tuple[list[Cleared], list[Alert]]:
    """The alerts that no longer hold, and those to raise now (PER_SWEEP at most)."""
    settled = rules.cleared(standing(db_session=db_session), now=now)
    unreached_now = watched(db_session=db_session)
    sent = _sent(db_session, [t.ticket_id for t in unreached_now])
    tz = ZoneInfo(channel.timezone)
    fresh = rules.due(unreached_now, now=now, rules=rules_, kinds=channel.kinds, sent=sent, tz=tz)
    return settled, fresh[:PER_SWEEP]


def standing(*, db_session: Session) -> list[Standing]:
    """The alerts not cleared yet, and their tickets now."""
    rows = db_session.execute(
        select(
            RaisedAlert.id, RaisedAlert.kind, RaisedAlert.episode, Ticket.id, Ticket.title,
            Ticket.state, Ticket.sla_arrive_by, Ticket.on_site_at, Ticket.technician_id,
            Ticket.parent_id,
        )
        .join(Ticket, Ticket.id == RaisedAlert.ticket_id)
        .where(RaisedAlert.cleared_at.is_(None))
    ).all()  # fmt: skip
    entries = _escalations(db_session, [row[3] for row in rows if row[5] == ESCALATED])
    return [
        Standing(
            alert_id, AlertKind(kind), episode, ticket_id, title, state, arrive_by, on_site_at,
            technician_id, entries[ticket_id][0] if ticket_id in entries else None, parent_id,
        )
        for (
            alert_id, kind, episode, ticket_id, title, state, arrive_by, on_site_at,
            technician_id, parent_id,
        ) in rows
    ]  # fmt: skip


def _sent(db_session: Session, ticket_ids: Sequence[int]) -> set[tuple[int, str, int]]:
    if not ticket_ids:
        return set()
    rows = db_session.execute(
        select(RaisedAlert.ticket_id, RaisedAlert.kind, RaisedAlert.episode).where(
            RaisedAlert.ticket_id.in_(ticket_ids)
        )
    )
    return {(ticket_id, kind, episode) for ticket_id, kind, episode in rows}


def _record(db_session: Session, alert: Alert, now: datetime) -> RaisedAlert:
    row = RaisedAlert(
        ticket_id=alert.ticket_id, kind=alert.kind.value, episode=alert.episode, at=now,
        summary=alert.summary,
    )  # fmt: skip
    db_session.add(row)
    db_session.flush()  # its id, for the notice
    return row


def _post(
    db_session: Session,
    channel: AlertChannel,
    text: str,
    alerts: list[AlertOut],
    now: datetime,
    cleared: list[ClearedOut] | None = None,
) -> bool:
    """Queue one POST to the alert webhook, if there is one."""
    if not channel.url:
        return False
    notice: BaseModel = (
        ChatNotice(text=text)
        if channel.format == "chat"
        else AlertsNotice(text=text, alerts=alerts, cleared=cleared or [])
    )
    _enqueue(db_session, channel, notice, now, now + WORTH_SENDING)
    return True


def _enqueue(
    db_session: Session, channel: AlertChannel, notice: BaseModel, now: datetime, until: datetime
) -> None:
    assert channel.url is not None
    topic = outbound.webhook_topic(SENDER, channel.url)
    outbound.enqueue(db_session=db_session, topic=topic, message=notice, now=now, expires_at=until)


# Alertmanager resolves an alert nobody sends again before its endsAt: crowdfix sends those
# that hold every RESEND, each with endsAt HOLD ahead (as Prometheus does: 4 x its resend).
RESEND = timedelta(minutes=1)
HOLD = 4 * RESEND


def _post_to_alertmanager(
    db_session: Session,
    channel: AlertChannel,
    raised: list[RaisedAlert],
    settled: list[Cleared],
    now: datetime,
    resend: bool,
) -> None:
    """Queue the alerts for Alertmanager: those raised (and, on a resend, all that hold) as
    firing until now + HOLD, those cleared as ended now. Its own retries end at HOLD: a later
    send supersedes it."""
    if not channel.url:
        return
    firing = list(raised)
    if resend:
        firing = list(
            db_session.scalars(select(RaisedAlert).where(RaisedAlert.cleared_at.is_(None)))
        )
    ended = [c.alert_id for c in settled]
    ended_rows = db_session.scalars(select(RaisedAlert).where(RaisedAlert.id.in_(ended))).all()
    postable = [_postable(row, channel, now + HOLD) for row in firing]
    postable += [_postable(row, channel, now, settled_by=settled) for row in ended_rows]
    if postable:
        _enqueue(db_session, channel, AlertmanagerNotice(postable), now, now + HOLD)


def _postable(
    row: RaisedAlert, channel: AlertChannel, ends: datetime, settled_by: Sequence[Cleared] = ()
) -> PostableAlert:
    annotations = {"summary": row.summary}
    said = next((c.summary for c in settled_by if c.alert_id == row.id and c.summary), None)
    if said:
        annotations["resolution"] = said
    return PostableAlert(
        labels=rules.labels(AlertKind(row.kind), row.ticket_id, row.episode),
        annotations=annotations, startsAt=row.at, endsAt=ends,
        generatorURL=_link(channel, row.ticket_id),
    )  # fmt: skip


def _link(channel: AlertChannel, ticket_id: int) -> str | None:
    template = channel.ticket_url()
    return template.format(id=ticket_id) if template else None


def view(row: RaisedAlert, channel: AlertChannel) -> AlertOut:
    """An alert as the API and the webhook show it."""
    return AlertOut(
        id=row.id, ticket_id=row.ticket_id, kind=row.kind, at=row.at, summary=row.summary,
        url=_link(channel, row.ticket_id), cleared_at=row.cleared_at,
    )  # fmt: skip


def _cleared_view(cleared: Cleared, channel: AlertChannel) -> ClearedOut:
    return ClearedOut(
        id=cleared.alert_id, ticket_id=cleared.ticket_id, kind=cleared.kind.value,
        summary=cleared.summary or "", url=_link(channel, cleared.ticket_id),
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
    if channel.format == "alertmanager" and channel.url:
        test = PostableAlert(
            labels={"alertname": "CrowdfixTest", "severity": "info", "service": "crowdfix"},
            annotations={"summary": text}, startsAt=now, endsAt=now + RESEND,
        )  # fmt: skip
        _enqueue(db_session, channel, AlertmanagerNotice([test]), now, now + RESEND)
        return True
    return _post(db_session, channel, text, [], now)


def _sweeping_alone(db_session: Session) -> bool:
    """Whether this transaction may sweep: on PostgreSQL one worker at a time (a try-lock,
    so a second one skips its turn instead of waiting); SQLite's writes are serial anyway."""
    if db_session.get_bind().dialect.name != "postgresql":
        return True
    return bool(db_session.scalar(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK))))
