"""The city simulation behind `python -m bench dispatch`, on a small city: deterministic,
and the real dispatcher serves every ticket when people are plentiful."""

from __future__ import annotations

import math

import pytest

from bench.dispatch import (
    NAIVE,
    TICK,
    Answers,
    City,
    CrowdfixRun,
    build_city,
    run_chained,
    run_naive,
    simulate,
)
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


def test_skipping_the_rounds_with_nothing_to_do_leaves_the_day_as_it_was(tmp_path) -> None:
    """A short-handed crowd that lets offers lapse: tickets wait, cascade, escalate and look
    again, technicians are paused and reviewed. Every round run, or only those with work
    (dispatcher.next_work_at): the same offers, answers, jobs and times, to the digit."""
    city = build_city(SEED, 12, staff=1, sites=10, daily=60, hours=HOURS, answering=(3, 1))
    runs = []
    for name, every_round in (("every", True), ("skipping", False)):
        (tmp_path / name).mkdir()
        runs.append(CrowdfixRun(city, SEED, tmp_path / name, name, DispatchPolicy(),
                                every_round=every_round))  # fmt: skip
    every, skipping = (run.run(HOURS) for run in runs)
    assert max(every.offers) > 2 and max(every.to_site) > 60, "nobody waits: this tests nothing"
    assert every.jobs and every.jobs == skipping.jobs
    assert (every.to_accept, every.to_site, every.offers, every.tickets) == (
        skipping.to_accept, skipping.to_site, skipping.offers, skipping.tickets,
    )  # fmt: skip
    assert runs[1].rounds < runs[0].rounds / 2, (runs[1].rounds, runs[0].rounds)


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
    ceiling = simulate(city, SEED, HOURS, "ceiling", DispatchPolicy(), Answers.ALL_YES)
    assert ceiling.offers == [1] * len(city.arrivals)
    assert all(m <= TICK.total_seconds() / 60 for m in ceiling.to_accept)
    real = simulate(city, SEED, HOURS, "crowdfix", DispatchPolicy())
    assert sum(real.offers) > len(city.arrivals), "some real answers are a no or none at all"


def test_answers_at_once_keep_each_persons_yes_or_no_without_the_wait() -> None:
    """The 'answers at once' row: the same people say yes to the same jobs, only without
    the minutes of reading and the deadlines that lapse."""
    city = small_city(40)
    real = simulate(city, SEED, HOURS, "crowdfix", DispatchPolicy())
    at_once = simulate(city, SEED, HOURS, "at once", DispatchPolicy(), Answers.AT_ONCE)
    tick = TICK.total_seconds() / 60
    assert sum(m <= tick for m in at_once.to_accept) > sum(m <= tick for m in real.to_accept)
    assert sum(at_once.offers) > len(city.arrivals), "the no's are still there"
    assert sum(m for m in at_once.to_accept) < sum(m for m in real.to_accept)


def test_a_less_responsive_crowd_is_the_same_city_with_people_who_answer_less() -> None:
    default = build_city(SEED, 200, staff=2, sites=10, daily=60, hours=HOURS)
    slack = build_city(SEED, 200, staff=2, sites=10, daily=60, hours=HOURS, answering=(3, 1))
    assert default.sites == slack.sites and len(default.people) == len(slack.people)

    def crowd_mean(city: City) -> float:
        crowd = [p.reliability for p in city.people if p.kind == "crowd"]
        return sum(crowd) / len(crowd)

    assert crowd_mean(default) > 0.85 > 0.8 > crowd_mean(slack) > 0.65


def test_the_command_prints_every_row_and_does_not_judge_a_fixed_size(capsys) -> None:
    """`python -m bench dispatch` end to end on a small city: every dispatcher and bound is
    printed, and the goal (set where the naive baseline reaches 80%) is not called met at a
    size given by hand."""
    from bench.dispatch import AT_ONCE, CEILING, main

    argv = ["--seeds", str(SEED), "--crowd", "20", "--hours", "3", "--sites", "10"]
    assert main([*argv, "--daily", "60"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for row in ("naive, quick model ", "naive: nearest", "crowdfix ", AT_ONCE, CEILING):
        # once in the city's table, once in the pooled one
        assert sum(line.startswith(row) for line in lines) == 2, row
    assert "not judged at a fixed --crowd" in out and ": met" not in out
    # the oracle's table: the city and all cities, crowdfix beside what no dispatcher beats
    oracle = lines.index(next(line for line in lines if line.startswith("What no dispatcher")))
    assert [line.split()[0] for line in lines[oracle + 3 : oracle + 5]] == ["seed", "all"]
    assert "no dispatcher, knowing every ticket and answer in advance" in lines[-1]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--seeds", "7,x"], "expected whole numbers such as 7,3,11"),
        (["--crowd", "0"], "--crowd: must be above 0"),
        (["--hours", "-2"], "--hours: must be above 0"),
        (["--daily", "nan"], "--daily: must be above 0"),
        (["--step", "1.5"], "--step: expected a whole number"),
        (["--answering", "1"], "expected A,B such as 10,1"),
        (["--min-crowd", "50", "--max-crowd", "20"], "--min-crowd 50 is above --max-crowd 20"),
        (["--oracle-seconds", "-1"], "--oracle-seconds: must be 0 or more"),
    ],
)
def test_the_command_turns_bad_input_away_with_what_is_wrong(argv, says, capsys) -> None:
    from bench.dispatch import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
