"""Quarantine use cases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.quarantine.models import QuarantinedMessage
from contracts import Rejection, parse_uplink_topic

KEEP_BYTES = 4096  # of each refused payload


def add(
    *,
    db_session: Session,
    topic: str,
    payload: bytes,
    reason: Rejection,
    detail: str,
    now: datetime,
) -> None:
    """Keep a refused message (its first KEEP_BYTES) with the reason."""
    address = parse_uplink_topic(topic)
    db_session.add(
        QuarantinedMessage(
            received_at=now,
            topic=topic[:300],
            device_id=address.device_id if address else None,
            reason=reason.value,
            detail=detail[:2000],
            payload=payload[:KEEP_BYTES],
            size=len(payload),
        )
    )


def list_recent(
    *,
    db_session: Session,
    reason: str | None = None,
    device_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[QuarantinedMessage]:
    """Newest first, optionally filtered."""
    query = select(QuarantinedMessage).order_by(QuarantinedMessage.id.desc())
    if reason:
        query = query.where(QuarantinedMessage.reason == reason)
    if device_id:
        query = query.where(QuarantinedMessage.device_id == device_id)
    return db_session.scalars(query.limit(limit).offset(offset)).all()


def counts(*, db_session: Session) -> dict[str, int]:
    """How many messages were refused, by reason."""
    rows = db_session.execute(
        select(QuarantinedMessage.reason, func.count()).group_by(QuarantinedMessage.reason)
    )
    return {reason: int(n) for reason, n in rows}
