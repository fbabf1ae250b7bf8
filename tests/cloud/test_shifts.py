"""Working hours (pure): shifts and time off read and written, on shift at an instant in the
technician's own time zone (across midnight and daylight saving changes, and around time off),
and when that next changes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.dispatch.shifts import (
    Hours,
    Leave,
    Shift,
    ShiftError,
    next_change,
    not_over,
    on_shift,
    parse,
    parse_leave,
    zone,
)

ZURICH = zone("Europe/Zurich")


def local(*args: int) -> datetime:
    """A wall-clock time in Zurich, as the instant it is."""
    return datetime(*args, tzinfo=ZURICH).astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("mon-fri 07:00-19:00", "mon-fri 07:00-19:00"),
        ("Sat 8:00 - 12:30", "sat 08:00-12:30"),
        ("mon,wed,fri 06:00-14:00", "mon,wed,fri 06:00-14:00"),
        ("fri-mon 22:00-06:00", "mon,fri-sun 22:00-06:00"),
        ("sat,sun 00:00-24:00", "sat,sun 00:00-24:00"),
    ],
)
def test_a_shift_is_read_and_written_the_short_way(text: str, canonical: str) -> None:
    assert str(parse(text)) == canonical
    assert parse(canonical) == parse(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("weekdays 07:00-19:00", "days are mon, tue"),
        ("mon-fri 7-19", "e.g. 'mon-fri 07:00-19:00'"),
        ("mon 25:00-26:00", "not a time of day"),
        ("mon 08:60-09:00", "not a time of day"),
        ("mon 08:00-08:00", "same time"),
        ("mon 24:00-06:00", "24:00 only ends one"),
    ],
)
def test_a_bad_shift_says_how_to_write_one(text: str, says: str) -> None:
    with pytest.raises(ShiftError, match=says):
        parse(text)


def test_a_bad_time_zone_says_what_to_use() -> None:
    with pytest.raises(ShiftError, match="IANA name like 'Europe/Zurich'"):
        zone("Mars/Olympus")


def test_day_shift_in_the_technicians_own_time_zone() -> None:
    week = [parse("mon-fri 07:00-19:00")]
    assert on_shift(week, ZURICH, local(2026, 11, 23, 7, 0))  # Monday, from 07:00
    assert on_shift(week, ZURICH, local(2026, 11, 27, 18, 59))
    assert not on_shift(week, ZURICH, local(2026, 11, 27, 19, 0))  # till 19:00, not after
    assert not on_shift(week, ZURICH, local(2026, 11, 28, 10, 0))  # Saturday
    # 06:30 UTC is 07:30 in Zurich in winter: the hours are Zurich's, not UTC's
    assert on_shift(week, ZURICH, datetime(2026, 11, 23, 6, 30, tzinfo=UTC))
    assert on_shift([], ZURICH, local(2026, 11, 28, 3, 0))  # no shifts: the toggle alone


def test_a_night_shift_runs_past_midnight_into_the_next_day() -> None:
    nights = [parse("fri,sat 22:00-06:00")]
    assert on_shift(nights, ZURICH, local(2026, 11, 27, 23, 0))  # Friday night
    assert on_shift(nights, ZURICH, local(2026, 11, 28, 5, 59))  # Saturday morning, same shift
    assert not on_shift(nights, ZURICH, local(2026, 11, 28, 6, 0))  # till 06:00
    assert on_shift(nights, ZURICH, local(2026, 11, 29, 3, 0))  # Saturday's night
    assert not on_shift(nights, ZURICH, local(2026, 11, 30, 3, 0))  # Sunday's is not a shift
    assert not on_shift(nights, ZURICH, local(2026, 11, 27, 3, 0))  # nor Thursday's


def test_hours_keep_to_the_wall_clock_across_daylight_saving() -> None:
    week = [parse("mon-sun 07:00-19:00")]
    for y, m, d in ((2027, 3, 28), (2026, 10, 25)):  # spring forward, fall back
        assert not on_shift(week, ZURICH, local(y, m, d, 6, 59))
        assert on_shift(week, ZURICH, local(y, m, d, 7, 0))
        assert on_shift(week, ZURICH, local(y, m, d, 18, 59))
        assert not on_shift(week, ZURICH, local(y, m, d, 19, 0))
    friday_evening = local(2027, 3, 26, 20, 0)
    assert next_change(week, ZURICH, friday_evening) == local(2027, 3, 27, 7, 0)


def test_when_the_next_shift_starts_or_ends() -> None:
    week = [parse("mon-fri 07:00-19:00")]
    assert next_change(week, ZURICH, local(2026, 11, 27, 18, 0)) == local(2026, 11, 27, 19, 0)
    assert next_change(week, ZURICH, local(2026, 11, 27, 19, 30)) == local(2026, 11, 30, 7, 0)
    assert next_change([], ZURICH, local(2026, 11, 27, 19, 30)) is None
    always = [parse("mon-sun 00:00-24:00")]
    assert next_change(always, ZURICH, local(2026, 11, 27, 19, 30)) is None  # never off


shifts_drawn = st.builds(
    lambda days, start, length: Shift(frozenset(days), start, (start + length - 1) % 1440 + 1),
    st.sets(st.integers(0, 6), min_size=1),
    st.integers(0, 1439),
    st.integers(1, 1439),
)


@given(shifts_drawn)
def test_any_shift_reads_back_as_written(shift: Shift) -> None:
    assert parse(str(shift)) == shift


@given(
    st.lists(shifts_drawn, min_size=1, max_size=3),
    st.datetimes(datetime(2026, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC)),
    st.lists(st.floats(0, 1), min_size=1, max_size=5),
)
def test_nothing_changes_before_the_next_change(shifts, now, fractions) -> None:
    """Whatever the shifts and the instant: on_shift holds until next_change, and flips there."""
    now = now.replace(second=0, microsecond=0)
    change = next_change(shifts, ZURICH, now)
    current = on_shift(shifts, ZURICH, now)
    until = change or now + timedelta(days=8)
    for fraction in fractions:
        between = now + (until - now) * fraction
        if between < until:
            assert on_shift(shifts, ZURICH, between) == current
    if change is not None:
        assert change > now and on_shift(shifts, ZURICH, change) != current


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2026-12-22..2027-01-05", "2026-12-22..2027-01-05"),
        (" 2026-12-22 .. 2027-01-05 ", "2026-12-22..2027-01-05"),
        ("2026-12-22/2027-01-05", "2026-12-22..2027-01-05"),  # ISO 8601's interval
        ("2026-12-24", "2026-12-24"),
        ("2026-12-24..2026-12-24", "2026-12-24"),
    ],
)
def test_time_off_is_read_and_written_the_short_way(text: str, canonical: str) -> None:
    assert str(parse_leave(text)) == canonical


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("24.12.2026", "e.g. '2026-12-22..2027-01-05'"),
        ("christmas", "or one day, '2026-12-24'"),
        ("2026-02-30", "day is out of range for month; days are written YYYY-MM-DD"),
        ("2027-01-05..2026-12-22", "comes before the first; swap them"),
        ("2026-01-01..2027-01-02", "at most 366 days"),
    ],
)
def test_bad_time_off_says_how_to_write_it(text: str, says: str) -> None:
    with pytest.raises(ShiftError, match=re.escape(says)):
        parse_leave(text)


def test_time_off_runs_from_midnight_to_midnight_where_they_work() -> None:
    week = (parse("mon-fri 07:00-19:00"),)
    hours = Hours(week, ZURICH, (parse_leave("2026-12-23..2026-12-28"),))
    assert hours.on_shift(local(2026, 12, 22, 18, 0))  # the Tuesday before
    assert hours.next_change(local(2026, 12, 22, 18, 0)) == local(2026, 12, 22, 19, 0)
    # Off from Tuesday 19:00 until the first shift after the leave: Tuesday the 29th, 07:00
    # (Monday the 28th is the leave's last day).
    assert hours.next_change(local(2026, 12, 22, 19, 0)) == local(2026, 12, 29, 7, 0)
    assert hours.on_leave(local(2026, 12, 23, 0, 0)) == parse_leave("2026-12-23..2026-12-28")
    assert hours.on_leave(local(2026, 12, 22, 23, 59)) is None
    assert not hours.on_shift(local(2026, 12, 23, 10, 0))  # a Wednesday, within its shift
    assert hours.next_change(local(2026, 12, 24, 10, 0)) == local(2026, 12, 29, 7, 0)
    assert hours.on_leave(local(2026, 12, 29, 0, 0)) is None
    assert hours.on_shift(local(2026, 12, 29, 7, 0))


def test_time_off_without_shifts_is_the_only_change() -> None:
    hours = Hours((), ZURICH, (parse_leave("2026-12-24"),))
    assert hours.on_shift(local(2026, 12, 1, 3, 0))
    assert hours.next_change(local(2026, 12, 1, 3, 0)) == local(2026, 12, 24, 0, 0)
    assert hours.next_change(local(2026, 12, 24, 0, 0)) == local(2026, 12, 25, 0, 0)
    assert hours.next_change(local(2026, 12, 25, 0, 0)) is None  # nothing after it
    # A leave that starts on the day the last ends: off through both.
    joined = Hours((), ZURICH, (parse_leave("2026-12-24"), parse_leave("2026-12-25..2026-12-26")))
    assert joined.next_change(local(2026, 12, 24, 9, 0)) == local(2026, 12, 27, 0, 0)


def test_time_off_over_for_a_day_is_dropped_from_the_list() -> None:
    """Over in every time zone: a stretch whose last day was before yesterday (UTC)."""
    texts = ["2026-11-20", "2026-11-18..2026-11-22", "2026-11-23", "2026-12-24..2026-12-26"]
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert not_over(texts, now) == texts[1:]  # the 22nd: still today at UTC-12
    assert not_over(texts, now + timedelta(days=1)) == texts[2:]


leaves_drawn = st.builds(
    lambda first, days: Leave(first, first + timedelta(days=days)),
    st.dates(date(2026, 1, 1), date(2028, 1, 1)),
    st.integers(0, 40),
)


@given(leaves_drawn)
def test_any_time_off_reads_back_as_written(leave: Leave) -> None:
    assert parse_leave(str(leave)) == leave


@settings(max_examples=300, deadline=None)
@given(
    st.lists(shifts_drawn, max_size=3),
    st.lists(leaves_drawn, min_size=1, max_size=3),
    st.datetimes(datetime(2026, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC)),
    st.lists(st.floats(0, 1), min_size=1, max_size=5),
)
def test_nothing_changes_before_the_next_change_around_time_off(
    shifts, leaves, now, fractions
) -> None:
    """Whatever the shifts, the time off and the instant: on_shift holds until next_change,
    flips there, and is never true on a day off."""
    hours = Hours(tuple(shifts), ZURICH, tuple(leaves))
    now = now.replace(second=0, microsecond=0)
    change = hours.next_change(now)
    current = hours.on_shift(now)
    assert not (current and hours.on_leave(now))
    until = change or now + timedelta(days=60)
    for fraction in fractions:
        between = now + (until - now) * fraction
        if between < until:
            assert hours.on_shift(between) == current
    if change is not None:
        assert change > now and hours.on_shift(change) != current
