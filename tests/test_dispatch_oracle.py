"""The oracle behind the dispatch bench's "no dispatcher can beat" figure (bench/oracle.py):
its schedule keeps the simulation's rules, and no dispatcher the simulation runs, crowdfix's,
the naive one or their idealised versions, ever gets more tickets on site in time."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest

from bench.dispatch import (
    CATEGORIES,
    CENTRE,
    NAIVE,
    START,
    Answers,
    City,
    Outcome,
    Person,
    build_city,
    on_duty,
    respond,
    run_chained,
    run_naive,
    simulate,
    travel_minutes,
    work_minutes,
)
from bench.oracle import AFTER_SHIFT_MIN, ON_SITE_MIN, Gap, clairvoyant, gap
from cloud.dispatch import matching
from cloud.dispatch.policy import DispatchPolicy

SEED, HOURS = 5, 3.0


def person(pid: str, skills=("printers",), shift=(6, 23), radius=30.0) -> Person:
    return Person(pid, "crowd", list(skills), CENTRE, radius, 1.0, 1.0, 4.8, shift)


def city_of(people: list[Person], site_km: float, arrivals: int) -> City:
    """One site site_km north of everyone's home, arrivals printer tickets at 08:00."""
    site = (CENTRE[0] + site_km / 111.0, CENTRE[1])
    at = START + timedelta(hours=2)
    return City([("far", site)], people, [(at, "far", "receipt-printer")] * arrivals)


def test_one_person_cannot_be_at_two_far_jobs_opened_together_in_time() -> None:
    city = city_of([person("c-1")], site_km=12, arrivals=2)
    trips = [travel_minutes(SEED, n, city.people[0], 12) for n in (0, 1)]
    assert trips[0] + 20 + trips[1] > ON_SITE_MIN, "the premise: no time for both"
    assert min(trips) < ON_SITE_MIN, "the premise: time for one"
    assert clairvoyant(city, SEED, Answers.ALL_YES).at_most == 1
    two = city_of([person("c-1"), person("c-2")], site_km=12, arrivals=2)
    assert clairvoyant(two, SEED, Answers.ALL_YES).at_most == 2


@pytest.mark.parametrize(
    "who",
    [
        person("c-1", skills=("network",)),  # lacks the skill
        person("c-1", radius=5),  # the site is beyond their radius
        person("c-1", shift=(14, 23)),  # off duty until well after the hour is up
    ],
)
def test_nobody_who_may_take_the_job_means_no_ticket_on_time(who: Person) -> None:
    city = city_of([who], site_km=8, arrivals=1)
    assert clairvoyant(city, SEED, Answers.ALL_YES).at_most == 0


def check_schedule(city: City, answers: Answers) -> int:
    """The oracle's schedule keeps every rule of the simulation; returns its size."""
    bound = clairvoyant(city, SEED, answers)
    assert bound.optimal and bound.on_time == bound.at_most == len(bound.schedule)
    site_at = dict(city.sites)
    busy: dict[int, list[tuple[float, float]]] = {}
    assert len({slot.ticket for slot in bound.schedule}) == len(bound.schedule)
    for slot in bound.schedule:
        opened, site, category = city.arrivals[slot.ticket]
        who = city.people[slot.person]
        km = matching.distance_km(who.home, site_at[site])
        assert CATEGORIES[category][0] in who.skills and km <= who.radius_km
        yes, delay = respond(answers, SEED, slot.ticket, who, km)
        assert yes
        waited = slot.start + 1 - (opened - START).total_seconds() / 60
        assert waited >= delay  # not before their answer (starts are rounded down)
        trip = travel_minutes(SEED, slot.ticket, who, km)
        assert waited - 1 + trip <= ON_SITE_MIN
        ends = (slot.start - AFTER_SHIFT_MIN, slot.start + 1)
        assert any(on_duty(who, START + timedelta(minutes=m)) for m in ends)
        busy.setdefault(slot.person, []).append((slot.start, slot.start + slot.busy))
        assert trip + work_minutes(SEED, slot.ticket) >= slot.busy
    for spans in busy.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in pairwise(spans))
    return bound.at_most


def on_time(minutes: list[float]) -> int:
    return sum(m <= ON_SITE_MIN for m in minutes)


@pytest.mark.parametrize("crowd", [4, 7])
def test_no_dispatcher_beats_the_oracle_in_a_short_handed_city(crowd: int) -> None:
    city = build_city(SEED, crowd, staff=1, sites=10, daily=90, hours=HOURS)
    real = check_schedule(city, Answers.REAL)
    every_yes = check_schedule(city, Answers.ALL_YES)
    assert real <= every_yes
    runs = [
        simulate(city, SEED, HOURS, "crowdfix", DispatchPolicy()),
        simulate(city, SEED, HOURS, "naive", NAIVE),
        run_naive(city, SEED, HOURS),
    ]
    idealised = [
        simulate(city, SEED, HOURS, "at once", DispatchPolicy(), Answers.AT_ONCE),
        simulate(city, SEED, HOURS, "ceiling", DispatchPolicy(), Answers.ALL_YES),
        run_naive(city, SEED, HOURS, Answers.ALL_YES),
        run_chained(city, SEED, HOURS),
    ]
    for run in runs:
        assert on_time(run.to_site) <= real, run.name
    crowdfix, bound = runs[0], clairvoyant(city, SEED, Answers.REAL)
    assert sorted(crowdfix.tickets) == list(range(len(city.arrivals)))
    late = {n for n, m in zip(crowdfix.tickets, crowdfix.to_site, strict=True) if m > ON_SITE_MIN}
    why = gap(bound, city, crowdfix)
    assert why.busy + why.free == sum(slot.ticket in late for slot in bound.schedule)
    for run in idealised:
        assert on_time(run.to_site) <= every_yes, run.name
    # Short-handed: the bound is not simply every ticket, so it says something.
    assert real < len(city.arrivals)


def test_a_ticket_lost_against_the_oracle_is_told_busy_or_free() -> None:
    city = city_of([person("c-1")], site_km=8, arrivals=1)
    bound = clairvoyant(city, SEED, Answers.ALL_YES)
    (slot,) = bound.schedule

    def run(to_site: float, jobs: list[tuple[str, int, float, float]]) -> Outcome:
        return Outcome("run", to_site=[to_site], tickets=[0], jobs=jobs)

    elsewhere = [("c-1", 99, slot.start - 30.0, slot.start + 30.0)]
    assert gap(bound, city, run(75, elsewhere)) == Gap(1, 0)
    assert gap(bound, city, run(75, [("c-1", 99, slot.start + 5.0, slot.start + 30.0)])) == Gap(
        0, 1
    )
    assert gap(bound, city, run(40, elsewhere)) == Gap(0, 0)  # not lost at all
