"""The operators' alert sweep against the open tickets it looks at.

Every 10 seconds a worker looks at the open tickets nobody has reached and at the alerts not
cleared yet, to raise and clear operator alerts. On SQLite a writing transaction holds the
one write lock for as long as it runs, and devices' events wait behind it, so the worker
first looks in a plain read and takes the write lock only when something is due. Measured on
SQLite, with so many open tickets (--open; a third of them escalated, opened over the last
two hours, every alert already raised: the steady state), each repeated: the read-only look
(what a steady sweep costs now; it holds no lock, so no device event waits for it), beside
the same sweep in a writing transaction (the baseline: how long each steady sweep held the
write lock without the look, and so the longest a device's event could wait behind it), and
a sweep that raises a full batch of alerts (PER_SWEEP) for a burst of new escalations.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, update
from sqlalchemy.orm import Session, sessionmaker

from bench.common import Progress, median, numbers, percentile, positive_int, table
from cloud.alerts import service as alerts
from cloud.alerts.rules import AlertChannel
from cloud.db import make_engine, make_sessionmaker, migrate, transaction
from cloud.dispatch.policy import DispatchPolicy
from cloud.tickets.models import Ticket, TicketEvent

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RULES = DispatchPolicy()
CHANNEL = AlertChannel(url="https://chat.example/hooks/bench", public_url="https://desk.example")


def open_tickets(sessions: sessionmaker[Session], count: int) -> None:
    """Open printer tickets opened over the last two hours, every third escalated."""
    rows = []
    for n in range(count):
        opened = NOW - timedelta(minutes=n % 120)
        rows.append(
            {
                "category": "receipt-printer", "problem_key": f"bench-{n}", "priority": "normal",
                "state": "escalated" if n % 3 == 0 else "dispatching", "source": "button",
                "title": f"Receipt printer at Shop {n}", "skills": ["printers"],
                "last_occurrence_at": opened, "opened_at": opened,
                "sla_accept_by": opened + timedelta(minutes=5),
                "sla_arrive_by": opened + timedelta(minutes=60),
                "sla_resolve_by": opened + timedelta(minutes=240),
                "created_at": opened, "updated_at": opened,
            }
        )  # fmt: skip
    with transaction(sessions) as db:
        db.execute(insert(Ticket), rows)
        escalate(db, [n + 1 for n in range(0, count, 3)])


def escalate(db_session: Session, ticket_ids: list[int]) -> None:
    """The dispatcher's move of these tickets to escalated, as the audit trail has it."""
    db_session.execute(update(Ticket).where(Ticket.id.in_(ticket_ids)).values(state="escalated"))
    db_session.execute(
        insert(TicketEvent),
        [
            {"ticket_id": i, "at": NOW, "actor": "dispatcher", "kind": "transition",
             "from_state": "dispatching", "to_state": "escalated", "reason": "nobody could"}
            for i in ticket_ids
        ],
    )  # fmt: skip


def raise_all(sessions: sessionmaker[Session], progress: Progress, done: int) -> None:
    """Sweep until every alert due is raised: the steady state."""
    while True:
        with transaction(sessions) as db:
            swept = alerts.sweep(db_session=db, now=NOW, rules_=RULES, channel=CHANNEL)
        if not swept.raised:
            return
        done += len(swept.raised)
        progress.update(done)


def timed(work: Callable[[], None], repeat: int) -> list[float]:
    """Milliseconds of each of `repeat` runs of work()."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure(count: int, repeat: int, folder: Path) -> list[object]:
    """One row of the table: the look, the baseline sweep, a burst's sweep."""
    engine = make_engine(f"sqlite:///{folder / f'alerts-{count}.sqlite3'}")
    migrate(engine)
    sessions = make_sessionmaker(engine)
    open_tickets(sessions, count)
    # Each escalated ticket's alert, and a clock alert for those open 48 minutes or more.
    expected = sum((n % 3 == 0) + (n % 120 >= 48) for n in range(count))
    raise_all(sessions, Progress(f"raising alerts of {count:,}", expected), 0)

    def look() -> None:
        with sessions() as db:
            assert not alerts.anything_due(db_session=db, now=NOW, rules_=RULES, channel=CHANNEL)

    def locked_sweep() -> None:
        with transaction(sessions) as db:
            assert not alerts.sweep(db_session=db, now=NOW, rules_=RULES, channel=CHANNEL).raised

    looks, sweeps = timed(look, repeat), timed(locked_sweep, repeat)
    bursts = []
    for n in range(repeat):  # PER_SWEEP tickets escalated anew, then one sweep raises them
        with transaction(sessions) as db:
            first = n * alerts.PER_SWEEP  # escalated anew: a new escalation, a new alert
            escalate(db, sorted({(first + k) % count + 1 for k in range(alerts.PER_SWEEP)}))
        bursts += timed(lambda: transaction_sweep(sessions), 1)
    engine.dispose()
    return [
        f"{count:,}",
        median(looks), percentile(looks, 95), 0.0,
        median(sweeps), percentile(sweeps, 95),
        median(bursts),
    ]  # fmt: skip


def transaction_sweep(sessions: sessionmaker[Session]) -> None:
    """One sweep in a writing transaction (what the worker does when something is due)."""
    with transaction(sessions) as db:
        alerts.sweep(db_session=db, now=NOW, rules_=RULES, channel=CHANNEL)


def main(argv: list[str]) -> int:
    """Run and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench alerts", description=__doc__)
    parser.add_argument(
        "--open",
        type=numbers(positive_int),
        default=[1000, 5000],
        help="open tickets nobody has reached, comma-separated (default 1000,5000)",
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=5, help="runs of each measurement (default 5)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crowdfix-bench-alerts-") as folder:
        rows = [measure(int(count), int(args.repeat), Path(folder)) for count in args.open]
    print(
        table(
            "The alert sweep on SQLite, every 10 s (ms; steady: every alert raised already)",
            [
                "open tickets",
                "look: median", "p95", "write lock held",
                "baseline, lock held by the sweep: median", "p95",
                f"sweep raising {alerts.PER_SWEEP} (lock held): median",
            ],
            rows,
        )
    )  # fmt: skip
    return 0
