"""The dispatcher-round benchmark runs, tells each technician once, and turns bad input away."""

from __future__ import annotations

import pytest

from bench import round as bench_round


def test_the_round_benchmark_prints_its_table_and_tells_each_technician_once(capsys) -> None:
    argv = ["--tickets", "1440", "--days", "2", "--rounds", "3", "--burst", "4", "--waiting", "3"]
    assert bench_round.main(argv) == 0
    out = capsys.readouterr().out
    assert "against the history it runs over" in out and "vs no history" in out
    rows = [r for r in (line.split() for line in out.splitlines()) if r[1:2] and r[1].isdigit()]
    # no history; 1,440 a day for one day; the same kept for two days
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("0", "1", "0"),
        ("1,440", "1", "1,440"),
        ("1,440", "2", "2,880"),
    ]
    # One ticket a minute, every 20th resolved by an operator (the 1st, 21st… back): the
    # sweep reads back 15 minutes, so one of them; that technician is told in the first
    # round only, however long the history.
    assert [int(r[9]) for r in rows] == [0, 1, 1]
    # The burst's round offers each of its four tickets (the benchmark checks it) and says
    # what that took, in all and a ticket; the storm's offers none (checked too: nobody is
    # free) and says what a round of three tickets looking again took.
    assert all(float(r[6]) > 0 and float(r[7]) > 0 and float(r[8]) > 0 for r in rows)
    assert "3 waiting, nobody free ms" in out


def test_a_crowd_spread_over_a_country_is_measured_and_too_thin_a_one_said_so(capsys) -> None:
    """300 technicians over 100 km: about 20 within reach of the shop, enough for 3 rounds
    and a burst of 4 (each ticket offered, which the benchmark checks). Over 2,000 km
    nobody is: the run stops and says why, rather than print a figure of nothing."""
    argv = ["--tickets", "0", "--rounds", "3", "--burst", "4", "--technicians", "300"]
    argv += ["--waiting", "0"]
    assert bench_round.main([*argv, "--spread", "100"]) == 0
    assert "300 technicians over 100 km" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        bench_round.main([*argv, "--spread", "2000"])
    assert "too few technicians within reach of the shop for --spread" in str(exit_.value.code)


@pytest.mark.parametrize(
    "args",
    [
        ["--tickets", "many"],
        ["--tickets", "-5"],
        ["--rounds", "0"],
        ["--days", "0"],
        ["--burst", "51"],  # more tickets at once than the 50 technicians
        ["--spread", "-1"],
        ["--waiting", "-2"],
    ],
)
def test_bad_input_is_turned_away(args: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        bench_round.main(args)
    assert exit_.value.code == 2 and "error:" in capsys.readouterr().err
