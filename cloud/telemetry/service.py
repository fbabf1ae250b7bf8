"""Telemetry use cases: store a batch (latest + bucketed recent window), read it back, prune."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cloud.dbtools import insert_ignore, upsert_newer
from cloud.telemetry.models import LatestReading, RecentReading

# One value per signal per bucket in the recent window (sparklines, descriptions).
RECENT_BUCKET_S = 10


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one device."""

    device_id: str
    name: str
    value: float
    unit: str
    at: datetime


def bucket(at: datetime, seconds: int = RECENT_BUCKET_S) -> datetime:
    """The start of the bucket `at` falls in."""
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def store(*, db_session: Session, samples: Iterable[Sample]) -> int:
    """Latest value per signal and one value per bucket; idempotent for redelivered batches."""
    latest: dict[tuple[str, str], Sample] = {}
    recent: dict[tuple[str, str, datetime], float] = {}
    count = 0
    for s in samples:
        count += 1
        key = (s.device_id, s.name)
        if key not in latest or s.at > latest[key].at:
            latest[key] = s
        recent[(s.device_id, s.name, bucket(s.at))] = s.value
    upsert_newer(
        db_session,
        LatestReading.__table__,  # type: ignore[arg-type]
        [
            {"device_id": s.device_id, "name": s.name, "value": s.value, "unit": s.unit, "at": s.at}
            for s in latest.values()
        ],
        keys=("device_id", "name"),
        newer="at",
    )
    insert_ignore(
        db_session,
        RecentReading.__table__,  # type: ignore[arg-type]
        [{"device_id": d, "name": n, "bucket": b, "value": v} for (d, n, b), v in recent.items()],
        keys=("device_id", "name", "bucket"),
    )
    return count


def latest(*, db_session: Session, device_id: str) -> Sequence[LatestReading]:
    """The newest value of each of a device's signals."""
    return db_session.scalars(
        select(LatestReading)
        .where(LatestReading.device_id == device_id)
        .order_by(LatestReading.name)
    ).all()


def recent(
    *, db_session: Session, device_id: str, since: datetime, name: str | None = None
) -> Sequence[RecentReading]:
    """The recent window of a device (one signal or all), oldest first."""
    query = select(RecentReading).where(
        RecentReading.device_id == device_id, RecentReading.bucket >= since
    )
    if name:
        query = query.where(RecentReading.name == name)
    return db_session.scalars(query.order_by(RecentReading.name, RecentReading.bucket)).all()


def prune(*, db_session: Session, now: datetime, keep: timedelta) -> None:
    """Forget buckets older than the recent window."""
    db_session.execute(delete(RecentReading).where(RecentReading.bucket < now - keep))
