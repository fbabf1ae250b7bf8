"""Working hours, pure: a technician's weekly shifts in their own time zone, whether they are
on shift at an instant, and when that next changes.

A shift is written `mon-fri 07:00-19:00` (days: a day, a range, or a comma list such as
`mon,wed,fri`; `24:00` ends at midnight). One that ends at or before it starts runs past
midnight into the next day: `fri,sat 22:00-06:00` is Friday and Saturday nights. Times are
wall-clock times where the technician works, so a shift keeps its hours across daylight
saving changes.

Time off is whole days in the same time zone: `2026-12-22..2027-01-05` (first and last day
off, both included) or a single day, `2026-12-24`. Off is off whatever the shifts say, from
the first day's midnight to the midnight after the last.
"""

from __future__ import annotations

import functools
import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
_LEAVE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*(?:(?:\.\.|/)\s*(\d{4}-\d{2}-\d{2}))?\s*$")
LEAVE_DAYS_MAX = 366  # one stretch of time off: at most a year
_SHIFT = re.compile(r"^\s*([a-z,\-\s]+?)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ShiftError(ValueError):
    """A shift or time zone that cannot be read; the message says how to write it."""


@dataclass(frozen=True)
class Shift:
    """Days of the week (0: Monday) and the minutes of the day it starts and ends."""

    days: frozenset[int]
    start: int  # 0 … 1439
    end: int  # 1 … 1440; at or before start: it ends the next day

    def __str__(self) -> str:
        return f"{_days_text(self.days)} {_hhmm(self.start)}-{_hhmm(self.end)}"

    def covers(self, weekday: int, minute: int) -> bool:
        """On shift at this minute of this day of the week (local time)."""
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        return (weekday in self.days and minute >= self.start) or (
            (weekday - 1) % 7 in self.days and minute < self.end
        )


def parse(text: str) -> Shift:
    """`mon-fri 07:00-19:00` as a Shift."""
    match = _SHIFT.match(text.lower())
    if not match:
        raise ShiftError(f"{text!r}: write a shift as days and hours, e.g. 'mon-fri 07:00-19:00'")
    days_text, h1, m1, h2, m2 = match.groups()
    start, end = _minutes(text, h1, m1), _minutes(text, h2, m2)
    if start == DAY_MINUTES:
        raise ShiftError(f"{text!r}: a shift starts at 00:00-23:59 (24:00 only ends one)")
    if start == end:
        raise ShiftError(f"{text!r}: a shift must not start and end at the same time")
    return Shift(_days(text, days_text), start, end)


@dataclass(frozen=True, order=True)
class Leave:
    """Time off: the first and the last day off (local dates, both included)."""

    first: date
    last: date

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"

    def span(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """From the first day's local midnight to the midnight after the last (in UTC)."""
        start = datetime.combine(self.first, datetime.min.time(), tz)
        end = datetime.combine(self.last + timedelta(days=1), datetime.min.time(), tz)
        return start.astimezone(UTC), end.astimezone(UTC)


def parse_leave(text: str) -> Leave:
    """`2026-12-22..2027-01-05` (or one day, `2026-12-24`) as a Leave."""
    match = _LEAVE.match(text)
    if not match:
        raise ShiftError(
            f"{text!r}: write time off as its first and last day, e.g. '2026-12-22..2027-01-05',"
            " or one day, '2026-12-24'"
        )
    try:
        first = date.fromisoformat(match.group(1))
        last = date.fromisoformat(match.group(2) or match.group(1))
    except ValueError as exc:
        raise ShiftError(f"{text!r}: {exc}; days are written YYYY-MM-DD") from exc
    if last < first:
        raise ShiftError(f"{text!r}: the last day off comes before the first; swap them")
    if (last - first).days >= LEAVE_DAYS_MAX:
        raise ShiftError(f"{text!r}: time off is at most {LEAVE_DAYS_MAX} days at a stretch")
    return Leave(first, last)


def not_over(texts: Sequence[str], now: datetime) -> list[str]:
    """The time off (as written) not over a day ago: the list keeps what is to come, not a
    record of every day off (a stretch over for a day is over in every time zone)."""
    yesterday = (now.astimezone(UTC) - timedelta(days=1)).date()
    return [text for text in texts if parse_leave(text).last >= yesterday]


@dataclass(frozen=True)
class Duty:
    """Working hours at an instant: on shift or not, the time off that keeps them off (None:
    none), and when on shift next flips (None: never)."""

    on_shift: bool = True
    on_leave: Leave | None = None
    changes_at: datetime | None = None


ALWAYS = Duty()  # no working hours: the toggle alone decides


@dataclass(frozen=True)
class Hours:
    """A technician's working hours: weekly shifts (none: whenever toggled available) and
    time off, in their time zone."""

    shifts: tuple[Shift, ...]
    tz: ZoneInfo
    leaves: tuple[Leave, ...] = ()

    @functools.cached_property
    def _spans(self) -> tuple[tuple[datetime, datetime, Leave], ...]:
        """Each leave's instants (worked out once: a round asks at every offer)."""
        return tuple((*leave.span(self.tz), leave) for leave in self.leaves)

    def on_leave(self, now: datetime) -> Leave | None:
        """The time off they are on at this instant (None: none)."""
        return next((leave for start, end, leave in self._spans if start <= now < end), None)

    def on_shift(self, now: datetime) -> bool:
        """Working at this instant: not on leave, and within a shift (no shifts: always)."""
        return self.on_leave(now) is None and on_shift(self.shifts, self.tz, now)

    def status(self, now: datetime) -> Duty:
        """On shift, on leave and the next change, at this instant."""
        return Duty(self.on_shift(now), self.on_leave(now), self.next_change(now))

    def next_change(self, now: datetime) -> datetime | None:
        """When on_shift next flips (in UTC; None: it never does). Besides the shifts' own
        edges near now, the ends of the time off still to come and the shifts' edges in the
        week after each are where it can flip."""
        current = self.on_shift(now)
        ends = {end for _, end, _ in self._spans if end > now}
        edges = [
            *_edges(self.shifts, self.tz, now),
            *(t for s, e, _ in self._spans for t in (s, e)),
        ]
        heapq.heapify(edges)
        while edges:  # in time order; a leave's end brings the shifts' edges after it
            edge = heapq.heappop(edges)
            if edge > now and self.on_shift(edge) != current:
                return edge
            if edge in ends:
                ends.discard(edge)
                for later in _edges(self.shifts, self.tz, edge):
                    heapq.heappush(edges, later)
        return None


def parse_all(texts: Sequence[str]) -> list[Shift]:
    """Several shifts (the API's list, or a CSV cell split at `;`)."""
    return [parse(t) for t in texts if t.strip()]


def zone(name: str) -> ZoneInfo:
    """An IANA time zone (`Europe/Zurich`)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ShiftError(
            f"{name!r} is not a time zone; use an IANA name like 'Europe/Zurich'"
        ) from exc


def on_shift(shifts: Sequence[Shift], tz: ZoneInfo, now: datetime) -> bool:
    """Within one of the shifts at this instant (no shifts: always)."""
    if not shifts:
        return True
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    return any(s.covers(local.weekday(), minute) for s in shifts)


def next_change(shifts: Sequence[Shift], tz: ZoneInfo, now: datetime) -> datetime | None:
    """When on_shift next flips (in UTC), within a week and a day (None: it never does)."""
    current = on_shift(shifts, tz, now)
    edges = sorted(_edges(shifts, tz, now))
    return next((e for e in edges if e > now and on_shift(shifts, tz, e) != current), None)


def _edges(shifts: Sequence[Shift], tz: ZoneInfo, around: datetime) -> tuple[datetime, ...]:
    """Every start and end of the shifts from the day before `around` to 8 days after."""
    return _edges_from(tuple(shifts), tz, around.astimezone(tz).date())


@functools.lru_cache(maxsize=4096)
def _edges_from(shifts: tuple[Shift, ...], tz: ZoneInfo, today: date) -> tuple[datetime, ...]:
    """_edges for a local day, kept: a crowd shares a few patterns of shifts, and the day
    changes once a day (the crowd list worked them out once a technician)."""
    midnight = datetime.combine(today, datetime.min.time(), tz)
    return tuple(
        _at(midnight, day, minute, tz)
        for day in range(-1, 9)
        for shift in shifts
        for minute in (shift.start, shift.end)
    )


def _at(midnight: datetime, day: int, minute: int, tz: ZoneInfo) -> datetime:
    """The instant (in UTC) of a wall-clock minute `day` days after this local midnight."""
    wall = (midnight.replace(tzinfo=None) + timedelta(days=day, minutes=minute)).replace(tzinfo=tz)
    return wall.astimezone(UTC)


def _minutes(text: str, hours: str, minutes: str) -> int:
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > DAY_MINUTES:
        raise ShiftError(f"{text!r}: {hours}:{minutes} is not a time of day (00:00-24:00)")
    return value


def _days(text: str, spec: str) -> frozenset[int]:
    days: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        first, _, last = (x.strip() for x in part.partition("-"))
        if first not in DAYS or (last and last not in DAYS):
            raise ShiftError(f"{text!r}: days are {', '.join(DAYS)}, a range (mon-fri) or a list")
        a, b = DAYS.index(first), DAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    if not days:
        raise ShiftError(f"{text!r}: name the days, e.g. 'mon-fri'")
    return frozenset(days)


def _days_text(days: frozenset[int]) -> str:
    """The shortest spelling: runs of three or more days as ranges (mon-fri), others listed."""
    ordered = sorted(days)
    runs: list[list[int]] = []
    for day in ordered:
        if runs and day == runs[-1][1] + 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    parts = [
        f"{DAYS[a]}-{DAYS[b]}" if b - a >= 2 else ",".join(DAYS[d] for d in range(a, b + 1))
        for a, b in runs
    ]
    return ",".join(parts)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
