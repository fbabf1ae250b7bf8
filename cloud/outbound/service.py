"""Outbound use cases: enqueue in the caller's transaction; the relay publishes and marks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from cloud.outbound.delivery import Outcome, Result, Webhook
from cloud.outbound.models import OutboundMessage
from contracts import encode

# Outbound rows whose "topic" starts with this are POSTed to a technician's URL, not
# published: `webhook:<technician id>:<url>` (an id has no colon).
WEBHOOK_PREFIX = "webhook:"


def webhook_topic(technician_id: str, url: str) -> str:
    """The outbound "topic" of a POST to this technician's webhook."""
    return f"{WEBHOOK_PREFIX}{technician_id}:{url}"


def parse_webhook(topic: str) -> tuple[str | None, str] | None:
    """(technician id, url) of a webhook row (None: a plain MQTT topic). Rows queued before
    webhooks were signed name no technician."""
    if not topic.startswith(WEBHOOK_PREFIX):
        return None
    rest = topic.removeprefix(WEBHOOK_PREFIX)
    if rest.startswith(("http://", "https://")):
        return None, rest
    technician_id, _, url = rest.partition(":")
    return technician_id, url


def enqueue(
    *,
    db_session: Session,
    topic: str,
    message: BaseModel,
    now: datetime,
    retain: bool = False,
    expires_at: datetime | None = None,
) -> None:
    """Publish after this transaction commits (never if it rolls back); not after expires_at."""
    db_session.add(
        OutboundMessage(
            topic=topic, payload=encode(message), retain=retain, created_at=now,
            expires_at=expires_at, attempts=0,
        )
    )  # fmt: skip


def _is_webhook() -> ColumnElement[bool]:
    return OutboundMessage.topic.startswith(WEBHOOK_PREFIX)


def _unsent() -> ColumnElement[bool]:
    return (OutboundMessage.sent_at.is_(None)) & (OutboundMessage.failed_at.is_(None))


def claim(*, db_session: Session, limit: int = 100) -> Sequence[OutboundMessage]:
    """Unsent MQTT messages, oldest first; locked so concurrent relays do not both send them.
    (Webhooks have their own lane, `lease_webhooks`: a dead URL never holds these up.)"""
    query = (
        select(OutboundMessage)
        .where(_unsent(), ~_is_webhook())
        .order_by(OutboundMessage.id)
        .limit(limit)
    )
    if db_session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return db_session.scalars(query).all()


def mark_sent(*, db_session: Session, ids: Sequence[int], now: datetime) -> None:
    """Record that these went out."""
    if ids:
        db_session.execute(
            update(OutboundMessage).where(OutboundMessage.id.in_(ids)).values(sent_at=now)
        )


def give_up(*, db_session: Session, ids: Sequence[int], now: datetime, error: str) -> None:
    """These will never be sent (out of date): kept a day, with why (the last failed try's
    error, if it was tried), for the record."""
    if ids:
        db_session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id.in_(ids))
            .values(
                failed_at=now, last_error=func.coalesce(OutboundMessage.last_error, error[:300])
            )
        )


# A relay that leased webhooks has this long to POST them before another relay may; a POST
# times out long before, so only a relay that died mid-batch lets its lease run out.
LEASE = timedelta(seconds=60)


def lease_webhooks(*, db_session: Session, now: datetime, limit: int = 100) -> list[Webhook]:
    """Webhook POSTs due now, oldest first, leased to this relay (their next try moves past
    the lease), so the POSTs are made outside any transaction. A webhook (its topic: one
    technician's URL) with a notice leased or waiting for its next try gives none: its
    notices go out in the order they were made, whichever relay sends them. On PostgreSQL an
    advisory lock per webhook keeps two relays from leasing the same one at once; SQLite's
    writes are serial anyway."""
    leased: list[int] = []
    for topic in _ready_topics(db_session, now, limit):
        if not _lock_topic(db_session, topic):
            continue  # another relay is leasing it right now
        ids = db_session.scalars(
            select(OutboundMessage.id)
            .where(_ready(now), OutboundMessage.topic == topic)  # read again, under the lock
            .order_by(OutboundMessage.id)
            .limit(limit - len(leased))
        ).all()
        if ids:
            db_session.execute(
                update(OutboundMessage)
                .where(OutboundMessage.id.in_(ids))
                .values(next_attempt_at=now + LEASE)
            )
            leased += ids
        if len(leased) >= limit:
            break
    rows = db_session.scalars(
        select(OutboundMessage).where(OutboundMessage.id.in_(leased)).order_by(OutboundMessage.id)
    )
    return [_webhook(row) for row in rows]


def _ready(now: datetime) -> ColumnElement[bool]:
    """Unsent webhook notices due now, of webhooks with nothing leased or resting."""
    busy = select(OutboundMessage.topic).where(
        _unsent(), _is_webhook(), OutboundMessage.next_attempt_at > now
    )
    due = or_(OutboundMessage.next_attempt_at.is_(None), OutboundMessage.next_attempt_at <= now)
    return and_(_unsent(), _is_webhook(), due, OutboundMessage.topic.not_in(busy))


def _ready_topics(db_session: Session, now: datetime, limit: int) -> Sequence[str]:
    """Webhooks with notices ready, the one with the oldest notice first."""
    return db_session.scalars(
        select(OutboundMessage.topic)
        .where(_ready(now))
        .group_by(OutboundMessage.topic)
        .order_by(func.min(OutboundMessage.id))
        .limit(limit)
    ).all()


def _lock_topic(db_session: Session, topic: str) -> bool:
    """This transaction alone leases this webhook's notices (PostgreSQL: a try-lock)."""
    if db_session.get_bind().dialect.name != "postgresql":
        return True
    return bool(db_session.scalar(select(func.pg_try_advisory_xact_lock(func.hashtext(topic)))))


def _webhook(row: OutboundMessage) -> Webhook:
    parsed = parse_webhook(row.topic)
    assert parsed is not None  # leased from the webhook lane
    technician_id, url = parsed
    return Webhook(row.id, technician_id, url, row.payload, row.attempts, row.expires_at)


def settle(*, db_session: Session, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Record a batch's outcomes: sent, given up, or scheduled for another try."""
    delivered = [o.id for o in outcomes if o.result is Result.DELIVERED]
    mark_sent(db_session=db_session, ids=delivered, now=now)
    stale = [o.id for o in outcomes if o.result is Result.GIVEN_UP]
    give_up(db_session=db_session, ids=stale, now=now, error="out of date before delivery")
    for outcome in outcomes:
        if outcome.result in (Result.FAILED, Result.WAITING):
            values: dict[str, object] = {"next_attempt_at": outcome.retry_at}
            if outcome.result is Result.FAILED:
                values["attempts"] = OutboundMessage.attempts + 1
                values["last_error"] = (outcome.error or "")[:300]
            db_session.execute(
                update(OutboundMessage).where(OutboundMessage.id == outcome.id).values(values)
            )


@dataclass(frozen=True)
class WebhookHealth:
    """How one technician's webhook is doing, from what is not delivered yet."""

    waiting: int  # notices not delivered yet
    given_up: int  # notices given up as out of date (kept a day)
    failing_since: datetime | None  # queued time of the oldest notice that failed and waits
    last_error: str | None  # of the latest failed try


def webhook_health(*, db_session: Session, topic: str) -> WebhookHealth:
    """Read from the webhook's undelivered notices (a day's at most: the rest are pruned)."""
    rows = db_session.execute(
        select(
            OutboundMessage.created_at, OutboundMessage.attempts,
            OutboundMessage.failed_at, OutboundMessage.last_error,
        )
        .where(OutboundMessage.sent_at.is_(None), OutboundMessage.topic == topic)
        .order_by(OutboundMessage.id)
    ).all()  # fmt: skip
    waiting = [r for r in rows if r.failed_at is None]
    failed = [r for r in waiting if r.attempts]
    errors = [r.last_error for r in rows if r.attempts and r.last_error]
    return WebhookHealth(
        waiting=len(waiting),
        given_up=len(rows) - len(waiting),
        failing_since=failed[0].created_at if failed else None,
        last_error=errors[-1] if errors else None,
    )


def backlog(*, db_session: Session) -> dict[str, int]:
    """Messages waiting to go out, by lane (mqtt, webhook), and those given up lately."""
    counts = {"mqtt": 0, "webhook": 0, "given_up": 0}
    lane = _is_webhook()
    for is_webhook, failed, count in db_session.execute(
        select(lane, OutboundMessage.failed_at.is_not(None), func.count())
        .where(OutboundMessage.sent_at.is_(None))
        .group_by(lane, OutboundMessage.failed_at.is_not(None))
    ):
        key = "given_up" if failed else "webhook" if is_webhook else "mqtt"
        counts[key] += count
    return counts


def prune(*, db_session: Session, now: datetime, keep: timedelta) -> None:
    """Forget sent (and given up) messages older than keep."""
    cutoff = now - keep
    db_session.execute(
        delete(OutboundMessage).where(
            or_(OutboundMessage.sent_at < cutoff, OutboundMessage.failed_at < cutoff)
        )
    )
