"""The dispatch-board benchmark runs, checks what it counted, and turns bad input away."""

from __future__ import annotations

import pytest

from bench import board as bench_board


def test_the_board_benchmark_prints_its_table(capsys) -> None:
    """60 technicians with working hours (all on shift at the benchmark's instant: checked)
    and without, each measured."""
    assert bench_board.main(["--technicians", "60", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "The dispatch board /metrics reads" in out and "baseline, no working hours" in out
    [row] = [line.split() for line in out.splitlines() if line.startswith("60 ")]
    hours, _p95, baseline, _bp95 = map(float, row[1:5])
    assert hours > 0 and baseline > 0 and row[5].endswith("x")


@pytest.mark.parametrize(
    "argv", [["--technicians", "0"], ["--technicians", "x"], ["--repeat", "-1"]]
)
def test_bad_figures_are_refused(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit):
        bench_board.main(argv)
    assert "error" in capsys.readouterr().err
