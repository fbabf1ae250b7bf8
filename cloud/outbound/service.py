"""Outbound use cases: enqueue in the caller's transaction; the relay publishes and marks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

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
    *, db_session: Session, topic: str, message: BaseModel, now: datetime, retain: bool = False
) -> None:
    """Publish after this transaction commits (never if it rolls back)."""
    db_session.add(
        OutboundMessage(topic=topic, payload=encode(message), retain=retain, created_at=now)
    )


def claim(*, db_session: Session, limit: int = 100) -> Sequence[OutboundMessage]:
    """Unsent messages, oldest first; locked so concurrent relays do not both send them."""
    query = (
        select(OutboundMessage)
        .where(OutboundMessage.sent_at.is_(None))
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


def prune(*, db_session: Session, now: datetime, keep: timedelta) -> None:
    """Forget sent messages older than keep."""
    db_session.execute(
        delete(OutboundMessage).where(
            OutboundMessage.sent_at.is_not(None), OutboundMessage.sent_at < now - keep
        )
    )
