"""The city simulation behind `python -m bench dispatch`, on a small city: deterministic,
and the real dispatcher serves every ticket when people are plentiful."""

from __future__ import annotations

import math

from bench.dispatch import NAIVE, TICK, build_city, run_chained, run_naive, simulate
from cloud.dispatch.policy import DispatchPolicy

SEED, HOURS = 5, 3.0


def small_city(crowd: int):
    return build_city(SEED, crowd, staff=2, sites=10, daily=60, hours=HOURS)


def test_the_same_seed_gives_the_same_city_and_the_same_day() -> None:
    city = small_city(12)
    assert city == small_city(12)
    assert city.arrivals, "a city with no tickets tests nothing"
    first = simulate(city, SEED, HOURS, "crowdfix", DispatchPolicy())
    again = simulate(small_city(12), SEED, HOURS, "crowdfix", DispatchPolicy())
    assert first.to_site == again.to_site and first.offers == again.offers


def test_with_people_to_spare_every_ticket_gets_someone_on_site() -> None:
    city = small_city(40)
    for outcome in (
        simulate(city, SEED, HOURS, "crowdfix", DispatchPolicy()),
        simulate(city, SEED, HOURS, "naive", NAIVE),
        run_naive(city, SEED, HOURS),
        run_chained(city, SEED, HOURS),
        run_chained(city, SEED, HOURS, spare=True),
    ):
        assert len(outcome.to_site) == len(city.arrivals)
        assert all(m < math.inf for m in outcome.to_site), outcome.name
        assert all(a <= s for a, s in zip(outcome.to_accept, outcome.to_site, strict=True))


def test_the_ceiling_run_takes_every_first_offer_at_once() -> None:
    """crowdfix's ceiling row: the real dispatcher with every offer taken the moment it is
    made; with people to spare, one offer per ticket, accepted within the round it is made."""
    city = small_city(40)
    ceiling = simulate(city, SEED, HOURS, "ceiling", DispatchPolicy(), instant_yes=True)
    assert ceiling.offers == [1] * len(city.arrivals)
    assert all(m <= TICK.total_seconds() / 60 for m in ceiling.to_accept)
    real = simulate(city, SEED, HOURS, "crowdfix", DispatchPolicy())
    assert sum(real.offers) > len(city.arrivals), "some real answers are a no or none at all"
