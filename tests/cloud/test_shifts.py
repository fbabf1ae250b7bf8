"""Working hours (pure): shifts read and written, on shift at an instant in the technician's
own time zone (across midnight and daylight saving changes), and when that next changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.dispatch.shifts import Shift, ShiftError, next_change, on_shift, parse, zone

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
