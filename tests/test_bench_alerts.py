"""The alert-sweep benchmark runs, finds its steady state, and turns bad input away."""

from __future__ import annotations

import pytest

from bench import alerts as bench_alerts


def test_the_alert_benchmark_prints_its_table(capsys) -> None:
    """120 open tickets: every alert raised first (the look then finds nothing due, which the
    benchmark asserts), then each figure measured."""
    assert bench_alerts.main(["--open", "120", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "The alert sweep on SQLite" in out and "baseline, lock held by the sweep" in out
    [row] = [line.split() for line in out.splitlines() if line.startswith("120 ")]
    look, _p95, held, baseline, _bp95, burst = map(float, row[1:])
    assert held == 0 and look > 0 and baseline > 0 and burst > 0


@pytest.mark.parametrize("argv", [["--open", "0"], ["--open", "x"], ["--repeat", "-1"]])
def test_bad_figures_are_refused(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit):
        bench_alerts.main(argv)
    assert "error" in capsys.readouterr().err
