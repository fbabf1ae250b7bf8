"""The dispatch-board benchmark runs, checks what it counted, and turns bad input away."""

from __future__ import annotations

import pytest

from bench import board as bench_board


def test_the_board_benchmark_prints_its_table(capsys) -> None:
    """60 technicians with working hours and without (everyone counted and listed: checked),
    the board and the list each measured beside its baseline."""
    assert bench_board.main(["--technicians", "60", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "What the desk reads of the crowd" in out and "crowd list (GET /api/technicians)" in out
    [row] = [line.split() for line in out.splitlines() if line.startswith("60 ")]
    board, _p95, board_base, board_ratio, listed, _lp95, list_base, list_ratio = row[1:]
    assert min(map(float, (board, board_base, listed, list_base))) > 0
    assert board_ratio.endswith("x") and list_ratio.endswith("x")


@pytest.mark.parametrize(
    "argv", [["--technicians", "0"], ["--technicians", "x"], ["--repeat", "-1"]]
)
def test_bad_figures_are_refused(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit):
        bench_board.main(argv)
    assert "error" in capsys.readouterr().err
