"""Telemetry use cases: store a batch (latest + bucketed recent window), read it back, prune.

The write path is the hottest code of the cloud: it goes past SQLAlchemy's per-value
processing with values already in the column's stored form (cloud.db.write_rows), and
a worker remembers which recent buckets it already wrote so a device reporting every second
costs one recent row per bucket, not ten.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cloud.db import db_time, write_rows
from cloud.telemetry.models import LatestReading, RecentReading

# One value per signal per bucket in the recent window (sparklines, descriptions).
RECENT_BUCKET_S = 10
BucketKey = tuple[str, str, int]  # device, signal, bucket start (epoch seconds)

_LATEST_SQLITE = (
    "INSERT INTO telemetry_latest (device_id, name, value, unit, at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (device_id, name) DO UPDATE SET value = excluded.value, "
    "unit = excluded.unit, at = excluded.at WHERE excluded.at > telemetry_latest.at"
)
_RECENT_SQLITE = (
    "INSERT INTO telemetry_recent (device_id, name, bucket, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (device_id, name, bucket) DO NOTHING"
)
# PostgreSQL: one statement per batch, its columns as arrays (see cloud.db.write_rows).
_LATEST_PG = (
    "INSERT INTO telemetry_latest (device_id, name, value, unit, at) SELECT * FROM "
    "unnest(%s::varchar[], %s::varchar[], %s::float8[], %s::varchar[], %s::timestamptz[]) "
    "ORDER BY 1, 2 ON CONFLICT (device_id, name) DO UPDATE SET value = excluded.value, "
    "unit = excluded.unit, at = excluded.at WHERE excluded.at > telemetry_latest.at"
)
_RECENT_PG = (
    "INSERT INTO telemetry_recent (device_id, name, bucket, value) SELECT * FROM "
    "unnest(%s::varchar[], %s::varchar[], %s::timestamptz[], %s::float8[]) "
    "ORDER BY 1, 2, 3 ON CONFLICT (device_id, name, bucket) DO NOTHING"
)


class Sample(NamedTuple):
    """One reading of one device (a tuple: a batch makes thousands of them)."""

    device_id: str
    name: str
    value: float
    unit: str
    at: datetime


def bucket(at: datetime, seconds: int = RECENT_BUCKET_S) -> datetime:
    """The start of the bucket `at` falls in."""
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


class WrittenBuckets:
    """The recent buckets this worker already wrote (bounded; forgetting only costs a no-op
    insert). Keys are added after the transaction commits."""

    def __init__(self, limit: int = 500_000) -> None:
        self._keys: OrderedDict[BucketKey, None] = OrderedDict()
        self._limit = limit

    def __contains__(self, key: BucketKey) -> bool:
        return key in self._keys

    def add(self, keys: Iterable[BucketKey]) -> None:
        """Remember keys that are now in the database."""
        for key in keys:
            self._keys[key] = None
        while len(self._keys) > self._limit:
            self._keys.popitem(last=False)


def store(
    *, db_session: Session, samples: Iterable[Sample], written: WrittenBuckets | None = None
) -> list[BucketKey]:
    """Latest value per signal and one value per bucket; idempotent for redelivered batches.
    Returns the recent buckets it wrote (for WrittenBuckets.add after the commit)."""
    latest: dict[tuple[str, str], Sample] = {}
    recent: dict[BucketKey, float] = {}
    for s in samples:
        key = (s.device_id, s.name)
        if key not in latest or s.at > latest[key].at:
            latest[key] = s
        epoch = int(s.at.timestamp())
        slot = (s.device_id, s.name, epoch - epoch % RECENT_BUCKET_S)
        if written is None or slot not in written:
            recent[slot] = s.value
    connection = db_session.connection()
    stamp = db_time(connection.dialect.name)
    if latest:
        # In key order, as every worker does: two batches lock shared rows in the same
        # order, so on PostgreSQL one waits for the other instead of deadlocking.
        latest_rows = [
            (s.device_id, s.name, s.value, s.unit, stamp(s.at)) for _, s in sorted(latest.items())
        ]
        write_rows(connection, sqlite=_LATEST_SQLITE, postgresql=_LATEST_PG, rows=latest_rows)
    if recent:
        starts = {b: stamp(datetime.fromtimestamp(b, UTC)) for b in {b for _, _, b in recent}}
        recent_rows = [(d, n, starts[b], v) for (d, n, b), v in sorted(recent.items())]
        write_rows(connection, sqlite=_RECENT_SQLITE, postgresql=_RECENT_PG, rows=recent_rows)
    return list(recent)


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
