"""`python -m bench [NAME] [options]`: run one benchmark, or every one in turn."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "footprint": "bench.footprint",
    "ingest": "bench.ingest",
    "faults": "bench.faults",
    "scale": "bench.scale",
    "dispatch": "bench.dispatch",
    "round": "bench.round",
    "alerts": "bench.alerts",
    "board": "bench.board",
}


def main(argv: list[str]) -> int:
    """Dispatch to a benchmark's own main()."""
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks:", ", ".join(BENCHMARKS))
        return 0
    names = [argv[0]] if argv and argv[0] in BENCHMARKS else list(BENCHMARKS)
    rest = argv[1:] if argv and argv[0] in BENCHMARKS else argv
    status = 0
    for name in names:
        status |= importlib.import_module(BENCHMARKS[name]).main(rest)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
