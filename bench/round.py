"""The dispatcher's round against the history it runs over.

Every worker runs a dispatcher round once a second: expire offers past their deadline, offer
waiting tickets (ranking every technician by, among others, their last 20 answers and the
week's skill demand), and tidy loose ends (withdraw offers whose ticket stopped waiting, tell a
technician a job was taken from them). The loose ends are read from the ticket changes since
the sweep's mark (5 to 15 minutes back in steady running; the benchmark puts the mark as old
as it gets), so a round's cost should follow how many tickets a deployment handles per hour,
not how much history it keeps. Measured: a round's time (median and p95 of repeated rounds) and
its loose-ends part, on SQLite, with 50 technicians (--technicians), a new ticket to offer in
every round, over a history of so many resolved tickets a day (each with its accepted offer and
five state changes, one in twenty resolved by an operator: a technician to tell) kept for one
day or for a week, beside the baseline of the same round over no history, in the same run.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from bench.common import median, number, numbers, percentile, positive_int, table
from cloud.db import make_engine, make_sessionmaker, migrate, transaction
from cloud.devices import service as devices
from cloud.devices.schemas import DeviceIn
from cloud.dispatch import csvimport
from cloud.dispatch import service as dispatcher
from cloud.dispatch.models import Offer, SweepMark, Technician
from cloud.dispatch.policy import DispatchPolicy
from cloud.dispatch.schemas import TechnicianIn
from cloud.sites import service as sites
from cloud.sites.schemas import SiteIn
from cloud.tickets.models import Ticket, TicketEvent

STEPS = ("new", "dispatching", "assigned", "en_route", "on_site", "resolved")
TECHNICIANS = 50  # the default crowd
SHOP = (47.3779, 8.5403)
KM_PER_DEGREE = 111.19  # of latitude


def homes(technicians: int, spread_km: float) -> list[tuple[float, float]]:
    """Where the technicians live: all in the shop's town (spread 0), else scattered at
    random (seeded) over a square `spread_km` wide around it, as a country-wide crowd."""
    if not spread_km:
        return [(47.38, 8.54)] * technicians
    rng = random.Random(7)
    per_lon_km = 1 / (KM_PER_DEGREE * math.cos(math.radians(SHOP[0])))
    return [
        (
            SHOP[0] + rng.uniform(-spread_km, spread_km) / 2 / KM_PER_DEGREE,
            SHOP[1] + rng.uniform(-spread_km, spread_km) / 2 * per_lon_km,
        )
        for _ in range(technicians)
    ]


def history(
    sessions: sessionmaker[Session],
    per_day: int,
    days: int,
    now: datetime,
    technicians: int,
    spread_km: float = 0.0,
) -> None:
    """Days of resolved tickets, spread evenly, and the technicians who held them."""
    tickets = per_day * days
    with transaction(sessions) as db:
        for n, (lat, lon) in enumerate(homes(technicians, spread_km)):
            body = TechnicianIn.model_validate(
                {"name": f"t{n}", "home_lat": lat, "home_lon": lon, "skills": ["printers"]}
            )
            csvimport.upsert(db_session=db, technician_id=f"t{n}", body=body, now=now)
        site = SiteIn(id="shop", name="Shop", latitude=SHOP[0], longitude=SHOP[1])
        sites.upsert(db_session=db, site_in=site, now=now)
        devices.register(db_session=db, device_in=DeviceIn(id="pos-1", site_id="shop"), now=now)
        rows, changes, offers = [], [], []
        for i in range(1, tickets + 1):
            at = now - timedelta(minutes=1440 * i / per_day)
            holder = f"t{i % technicians}"
            rows.append(
                {
                    "id": i, "category": "receipt-printer", "problem_key": f"p{i}",
                    "priority": "normal", "state": "resolved", "source": "button", "title": "t",
                    "opened_at": at, "last_occurrence_at": at, "sla_accept_by": at,
                    "sla_arrive_by": at, "sla_resolve_by": at, "created_at": at,
                    "updated_at": at, "technician_id": holder, "is_site": False,
                    "requested": True, "urgent": False, "flapping": False, "occurrences": 1,
                    "resolution": "fixed", "skills": [], "active_faults": [], "snapshot": {},
                    "description": "",
                }
            )  # fmt: skip
            offers.append(
                {
                    "ticket_id": i, "technician_id": holder, "stage": "crowd",
                    "state": "accepted", "offered_at": at, "deadline": at + timedelta(minutes=5),
                    "answered_at": at, "changed_at": at, "reason": "", "eta_min": 10.0,
                    "score": 0.5, "candidates": [],
                }
            )  # fmt: skip
            for before, after in itertools.pairwise(STEPS):
                actor = "olga" if after == "resolved" and i % 20 == 1 else holder
                changes.append(
                    {
                        "ticket_id": i, "at": at, "actor": actor, "kind": "transition",
                        "from_state": before, "to_state": after, "reason": "", "data": {},
                        "assigned_to": holder if after == "assigned" else None,
                    }
                )  # fmt: skip
        if rows:
            db.execute(insert(Ticket), rows)
            db.execute(insert(TicketEvent), changes)
            db.execute(insert(Offer), offers)


def new_ticket(sessions: sessionmaker[Session], n: int, now: datetime) -> None:
    """A printer ticket at the shop, waiting for an offer."""
    with transaction(sessions) as db:
        db.add(
            Ticket(
                device_id="pos-1", site_id="shop", category="receipt-printer",
                problem_key=f"new-{n}", priority="normal", state="new", source="button",
                title="Receipt printer", skills=["printers"], opened_at=now,
                last_occurrence_at=now, sla_accept_by=now + timedelta(minutes=5),
                sla_arrive_by=now + timedelta(minutes=60),
                sla_resolve_by=now + timedelta(hours=4), created_at=now, updated_at=now,
            )
        )  # fmt: skip


def settle(sessions: sessionmaker[Session], now: datetime) -> None:
    """The tickets made so far resolved, and their offers with them: the next burst starts
    from a crowd with every technician free, as the first did (not measured)."""
    with transaction(sessions) as db:
        db.execute(
            update(Offer).where(Offer.state == "pending").values(state="withdrawn", changed_at=now)
        )
        db.execute(update(Ticket).where(Ticket.state != "resolved").values(state="resolved"))


def measure(
    per_day: int,
    days: int,
    rounds: int,
    technicians: int = TECHNICIANS,
    burst: int = 0,
    spread_km: float = 0.0,
    waiting: int = 0,
) -> list[object]:
    """A table row: the round's and the loose ends' times over this much history, a round's
    when `burst` tickets arrive at once (5 such rounds), and one's when `waiting` tickets
    all look again while nobody is free (3 such rounds)."""
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'round.sqlite3'}")
        migrate(engine)
        sessions = make_sessionmaker(engine)
        history(sessions, per_day, days, now, technicians, spread_km)
        with transaction(sessions) as db:  # the sweep's mark as old as it gets in steady running
            mark = now - dispatcher.SWEEP_MARK_EVERY + timedelta(seconds=1)
            db.add(SweepMark(name=dispatcher.LOOSE_ENDS, at=mark))
        rules = DispatchPolicy()
        # As a worker keeps them across its rounds.
        book, profiles = dispatcher.AnswerBook(), dispatcher.ProfileBook()
        whole, loose = [], []
        for n in range(rounds):
            new_ticket(sessions, n, now)
            start = time.perf_counter()
            dispatcher.run_round(
                sessions=sessions, now=lambda: now, rules=rules, book=book, profiles=profiles
            )
            whole.append((time.perf_counter() - start) * 1000)
            with sessions() as db:
                start = time.perf_counter()
                dispatcher.loose_ends(db_session=db, now=now)
                loose.append((time.perf_counter() - start) * 1000)
        bursts = []
        for n in range(5 if burst else 0):
            settle(sessions, now)
            for k in range(burst):
                new_ticket(sessions, rounds + n * burst + k, now)
            start = time.perf_counter()
            dispatcher.run_round(
                sessions=sessions, now=lambda: now, rules=rules, book=book, profiles=profiles
            )
            bursts.append((time.perf_counter() - start) * 1000)
        with sessions() as db:
            offered = db.scalar(select(func.count()).where(Offer.state == "pending"))
        stuck = storm(sessions, now, waiting, rules, book, profiles) if waiting else []
        with sessions() as db:
            told = db.scalar(select(func.count()).where(TicketEvent.kind == dispatcher.CALLED_OFF))
        engine.dispose()
    expected = burst if burst else rounds
    if offered != expected:
        raise SystemExit(
            f"expected an offer for each of the {expected} new tickets, {offered} made"
            + (": too few technicians within reach of the shop for --spread" if spread_km else "")
        )
    return [
        f"{per_day:,}",
        days,
        f"{per_day * days:,}",
        f"{median(whole):.1f}",
        f"{percentile(whole, 95):.1f}",
        f"{median(loose):.1f}",
        f"{median(bursts):.1f}" if burst else "-",
        f"{median(bursts) / burst:.1f}" if burst else "-",
        f"{median(stuck):.1f}" if waiting else "-",
        told,
    ]


def storm(
    sessions: sessionmaker[Session],
    now: datetime,
    waiting: int,
    rules: DispatchPolicy,
    book: dispatcher.AnswerBook,
    profiles: dispatcher.ProfileBook,
) -> list[float]:
    """Rounds (ms) in a storm: `waiting` tickets wait while every technician is busy, and
    each time someone comes free (and is taken at once) they all look again."""
    settle(sessions, now)
    with transaction(sessions) as db:
        db.execute(update(Technician).values(available=False))  # each update moves a revision
    for k in range(waiting):
        new_ticket(sessions, 10**6 + k, now)
    times = []
    for _ in range(3):
        with transaction(sessions) as db:
            waits = update(Ticket).where(Ticket.state != "resolved")
            db.execute(waits.values(next_dispatch_at=now))
        start = time.perf_counter()
        dispatcher.run_round(
            sessions=sessions, now=lambda: now, rules=rules, book=book, profiles=profiles
        )
        times.append((time.perf_counter() - start) * 1000)
    with sessions() as db:
        if db.scalar(select(func.count()).where(Offer.state == "pending")):
            raise SystemExit("an offer was made in the storm, where nobody was free")
    return times


def main(argv: list[str]) -> int:
    """Run it; print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench round", description=__doc__)
    parser.add_argument(
        "--tickets",
        type=numbers(number(int, "whole numbers", zero=True)),
        default="5000,20000,80000",
        help="resolved tickets a day to measure over, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--days",
        type=positive_int,
        default=7,
        help="the longer history kept (default: %(default)s)",
    )
    parser.add_argument(
        "--technicians",
        type=positive_int,
        default=TECHNICIANS,
        help="technicians in the crowd, each with their share of the history (default: "
        "%(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=30,
        help="rounds measured each (default: %(default)s)",
    )
    parser.add_argument(
        "--burst",
        type=number(int, "a whole number", zero=True),
        default=20,
        help="tickets arriving at once, as in a storm, for the burst's round (median of 5; "
        "at most --technicians; 0: none) (default: %(default)s)",
    )
    parser.add_argument(
        "--spread",
        type=number(float, "a number of km", zero=True),
        default=0.0,
        help="scatter the technicians over a square this many km wide around the shop (a "
        "country-wide crowd: most are beyond their 15 km service radius); 0: all in the "
        "shop's town (default: %(default)s)",
    )
    parser.add_argument(
        "--waiting",
        type=number(int, "a whole number", zero=True),
        default=50,
        help="tickets waiting in a storm while every technician is busy, all looking again in "
        "the round measured (median of 3; 0: none) (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.burst > args.technicians:
        parser.error(f"--burst {args.burst} is more than the {args.technicians} technicians")
    rows = []
    for per_day, days in [(0, 1), *((n, d) for n in args.tickets for d in sorted({1, args.days}))]:
        print(f"{per_day:,} resolved tickets a day for {days} day(s)…", flush=True)
        rows.append(
            measure(
                per_day, days, args.rounds, args.technicians, args.burst, args.spread, args.waiting
            )
        )
    base = float(str(rows[0][3]))
    for row in rows:
        row.append(f"{float(str(row[3])) / base:.1f}x" if base else "-")
    print(
        table(
            "The dispatcher's round (SQLite), against the history it runs over"
            + (
                f", {args.technicians:,} technicians over {args.spread:g} km" if args.spread else ""
            ),
            [
                "tickets a day",
                "days kept",
                "tickets kept",
                "round ms (median)",
                "round ms (p95)",
                "loose ends ms",
                f"{args.burst} at once ms",
                "a ticket of them ms",
                f"{args.waiting} waiting, nobody free ms",
                "technicians told",
                "vs no history",
            ],
            rows,
        )
    )
    print(
        "a technician told: the first round tells each job an operator resolved since the "
        "sweep's mark (less its margin), once; later rounds find nothing left"
    )
    return 0
