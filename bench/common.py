"""Shared bits of the benchmarks: process measurements, table printing, number options."""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    """The median, NaN for nothing."""
    return statistics.median(values) if values else float("nan")


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells[1:]]
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


class Progress:
    """A one-line progress bar on stderr for long measurements."""

    def __init__(self, label: str, total: float) -> None:
        self.label, self.total, self.started = label, total, time.monotonic()

    def update(self, done: float) -> None:
        """Redraw the bar."""
        import sys

        share = min(1.0, done / self.total) if self.total else 1.0
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r{self.label:<28} [{bar:<30}] {share:4.0%}")
        sys.stderr.flush()
        if share >= 1.0:
            sys.stderr.write("\n")


def number(cast: Callable[[str], float], what: str, zero: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number of the given kind, above 0 (or at least 0)."""

    def parse(text: str) -> float:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (value >= 0 if zero else value > 0) or not value < math.inf:
            raise argparse.ArgumentTypeError(
                f"must be {'0 or more' if zero else 'above 0'}, got {text!r}"
            )
        return value

    return parse


def numbers(single: Callable[[str], float]) -> Callable[[str], list[float]]:
    """An argparse type: a comma-separated list, each item checked by `single`."""

    def parse(text: str) -> list[float]:
        return [single(part.strip()) for part in text.split(",") if part.strip()]

    return parse


positive_int = number(int, "a whole number")
positive_float = number(float, "a number")
