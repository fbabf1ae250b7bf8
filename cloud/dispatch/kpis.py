"""Service KPIs over a period (pure): mean and median time to accept, to arrive and to
resolve, and how many tickets were opened per category and per site in each time bucket."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class TicketTimes:
    """What the KPIs need of a ticket."""

    opened_at: datetime
    category: str
    site_id: str | None
    accepted_at: datetime | None
    on_site_at: datetime | None
    resolved_at: datetime | None


def _minutes(pairs: Iterable[tuple[datetime, datetime | None]]) -> dict[str, Any]:
    values = [(end - start).total_seconds() / 60 for start, end in pairs if end is not None]
    if not values:
        return {"count": 0, "mean_min": None, "median_min": None}
    return {
        "count": len(values),
        "mean_min": round(statistics.fmean(values), 1),
        "median_min": round(statistics.median(values), 1),
    }


def bucket_start(at: datetime, size: timedelta) -> datetime:
    """The start of the bucket `at` falls in (buckets aligned to midnight UTC)."""
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + size * ((at - midnight) // size)


def buckets(now: datetime, days: float, size: timedelta) -> list[datetime]:
    """Every bucket start of the period, oldest first (empty buckets are part of a chart)."""
    first = bucket_start(now - timedelta(days=days), size)
    out = []
    at = first
    while at <= now:
        out.append(at)
        at += size
    return out


def series(
    rows: Sequence[TicketTimes], key: str, slots: list[datetime], size: timedelta, top: int = 6
) -> dict[str, list[int]]:
    """Tickets opened per bucket for the `top` most frequent values of `key` (category or
    site), the rest summed as "other"."""
    totals = Counter(getattr(r, key) or "(none)" for r in rows)
    kept = [name for name, _ in totals.most_common(top)]
    index = {slot: i for i, slot in enumerate(slots)}
    out: dict[str, list[int]] = defaultdict(lambda: [0] * len(slots))
    for r in rows:
        i = index.get(bucket_start(r.opened_at, size))
        if i is None:
            continue
        name = getattr(r, key) or "(none)"
        out[name if name in kept else "other"][i] += 1
    return {name: out[name] for name in [*kept, "other"] if name in out}


def kpis(rows: Sequence[TicketTimes], *, now: datetime, days: float) -> dict[str, Any]:
    """The KPIs of the tickets opened in the period (hourly buckets up to two days, daily
    beyond)."""
    size = timedelta(hours=1) if days <= 2 else timedelta(days=1)
    slots = buckets(now, days, size)
    return {
        "tickets": len(rows),
        "time_to_accept": _minutes((r.opened_at, r.accepted_at) for r in rows),
        "time_to_arrive": _minutes((r.opened_at, r.on_site_at) for r in rows),
        "time_to_resolve": _minutes((r.opened_at, r.resolved_at) for r in rows),
        "bucket": "hour" if size == timedelta(hours=1) else "day",
        "buckets": slots,
        "by_category": series(rows, "category", slots, size),
        "by_site": series(rows, "site_id", slots, size),
    }
