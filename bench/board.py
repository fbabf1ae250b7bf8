"""What the desk reads of the crowd: the dispatch board and the crowd list.

At every scrape, `/metrics` counts every technician by standing (available, paused, on
leave, off, retired) and their certifications due (cloud.dispatch.service.board). The crowd
page reads the list of technicians (`GET /api/technicians`, each with their KPIs and when
their shift next changes) whenever something changes. Whether a technician is on shift or on
leave is worked out in their own time zone, from their weekly shifts and their time off.
Measured on SQLite, for crowds of so many technicians (--technicians), each with two weekly
shifts in Europe/Zurich and every third with two stretches of time off ahead: board() and
the list (median and p95 of --repeat runs), each beside the baseline of the same crowd
without working hours (reading the rows and the rest), in the same run, and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bench.common import Progress, median, numbers, percentile, positive_int, table
from cloud.auth.roles import Principal, Role
from cloud.db import make_engine, make_sessionmaker, migrate, transaction
from cloud.dispatch import api, csvimport
from cloud.dispatch import service as dispatcher
from cloud.dispatch.policy import DispatchPolicy
from cloud.dispatch.schemas import TechnicianIn

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday, 11:00 in Zurich
HOURS = {"shifts": ["mon-fri 07:00-19:00", "sat 08:00-12:00"], "timezone": "Europe/Zurich"}
TIME_OFF = {"time_off": ["2026-12-22..2027-01-05", "2027-02-12"]}
ADMIN = Principal(user_id=1, username="bench", role=Role.ADMIN)


def add_crowd(sessions: sessionmaker[Session], count: int, hours: bool) -> None:
    """So many technicians; with hours: two weekly shifts each, time off for every third."""
    progress = Progress(f"{count:,} technicians{' with working hours' if hours else ''}", count)
    with transaction(sessions) as db:
        for n in range(count):
            extra = (HOURS | (TIME_OFF if n % 3 == 0 else {})) if hours else {}
            body = TechnicianIn.model_validate(
                {"name": f"t{n}", "home_lat": 47.38, "home_lon": 8.54, "skills": ["printers"]}
                | extra
            )
            csvimport.upsert(db_session=db, technician_id=f"t{n}", body=body, now=NOW)
            progress.update(n + 1)


def read_times(count: int, hours: bool, repeat: int, folder: Path) -> list[list[float]]:
    """Milliseconds of each of `repeat` board() reads, and of as many reads of the crowd
    list, over a new crowd of `count`."""
    engine = make_engine(f"sqlite:///{folder / f'board-{count}-{hours}.sqlite3'}")
    migrate(engine)
    sessions = make_sessionmaker(engine)
    add_crowd(sessions, count, hours)
    rules = DispatchPolicy()
    boards, lists = [], []
    for _ in range(repeat):
        with sessions() as db:
            started = time.perf_counter()
            counted = dispatcher.board(db_session=db, now=NOW, rules=rules)
            boards.append((time.perf_counter() - started) * 1000)
        with sessions() as db:
            started = time.perf_counter()
            listed = api.list_technicians(ADMIN, db, rules)
            lists.append((time.perf_counter() - started) * 1000)
    engine.dispose()
    if len(listed) != count or counted.technicians["paused"] + counted.technicians["retired"]:
        raise SystemExit(f"expected {count} technicians, counted {counted.technicians}")
    return [boards, lists]


def measure(count: int, repeat: int, folder: Path) -> list[object]:
    """One row of the table."""
    board, crowd_list = read_times(count, True, repeat, folder)
    board_base, list_base = read_times(count, False, repeat, folder)
    return [
        f"{count:,}",
        median(board), percentile(board, 95), median(board_base),
        f"{median(board) / median(board_base):.1f}x",
        median(crowd_list), percentile(crowd_list, 95), median(list_base),
        f"{median(crowd_list) / median(list_base):.1f}x",
    ]  # fmt: skip


def main(argv: list[str]) -> int:
    """Run and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench board", description=__doc__)
    parser.add_argument(
        "--technicians",
        type=numbers(positive_int),
        default=[1000, 5000],
        help="crowd sizes, comma-separated (default 1000,5000)",
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=7, help="runs of each measurement (default 7)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crowdfix-bench-board-") as folder:
        rows = [measure(int(n), int(args.repeat), Path(folder)) for n in args.technicians]
    print(
        table(
            "What the desk reads of the crowd (SQLite, ms; baseline: the same crowd without "
            "working hours)",
            [
                "technicians",
                "board (/metrics): median", "p95", "baseline", "vs baseline",
                "crowd list (GET /api/technicians): median", "p95", "baseline", "vs baseline",
            ],
            rows,
        )
    )  # fmt: skip
    return 0
