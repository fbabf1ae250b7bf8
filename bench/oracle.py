"""What no dispatcher can beat in a simulated city: the most tickets any dispatcher could put
a technician on site for within 60 minutes, if it knew every ticket that will arrive, every
person's answer to every offer, every trip and every job's length in advance.

It is a scheduling problem solved exactly (a mixed-integer program, HiGHS through SciPy):
each ticket may be given to one person who would take it (has the skill, lives within their
radius, says yes to that offer), starting no earlier than the ticket's arrival plus that
person's answer delay and no later than lets them arrive within 60 minutes, while on duty;
nobody does two jobs at once (a job lasts the trip there plus the work, as in the
simulation). Tickets that cannot be on time are left out, so they cost the oracle nothing,
which makes it more generous still. Start times are whole minutes, rounded so that every
schedule the simulation allows is one the program allows (starts rounded down, durations
rounded down), so its optimum bounds every dispatcher from above, crowdfix's and the naive
one alike. With a time limit the solver reports a proven upper bound beside the best
schedule it found.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from bench.common import table
from bench.dispatch import (
    CATEGORIES,
    START,
    Answers,
    City,
    Outcome,
    Person,
    on_duty,
    pooled,
    respond,
    travel_minutes,
    work_minutes,
)
from cloud.dispatch import matching

ON_SITE_MIN = 60
# An offer made in a shift's last minute may be taken up to its deadline (at most 5
# minutes) after the shift ends, with an answer up to 9 minutes late: 10 covers both.
AFTER_SHIFT_MIN = 10


@dataclass(frozen=True)
class Slot:
    """One way to serve a ticket on time: this person, starting this minute, busy so long."""

    ticket: int
    person: int
    start: int  # minutes after START
    busy: int  # minutes (trip + work, rounded down)


@dataclass(frozen=True)
class Bound:
    """The oracle's result in one city."""

    tickets: int
    on_time: int  # the best schedule found
    at_most: int  # proven: no schedule does better
    optimal: bool
    schedule: tuple[Slot, ...] = ()  # the best schedule found, one slot per ticket on time

    def share(self) -> float:
        """The proven bound as a share of the tickets."""
        return pooled_share([self])


def pooled_share(bounds: Iterable[Bound]) -> float:
    """The proven bounds of several cities as a share of all their tickets."""
    bounds = list(bounds)
    return sum(b.at_most for b in bounds) / max(1, sum(b.tickets for b in bounds))


def slots(city: City, seed: int, answers: Answers) -> list[Slot]:
    """Every (ticket, person, start minute) that would put someone on site in time."""
    site_at = dict(city.sites)
    out = []
    for ticket, (opened, site, category) in enumerate(city.arrivals):
        skill, where = CATEGORIES[category][0], site_at[site]
        arrived = (opened - START).total_seconds() / 60
        for index, person in enumerate(city.people):
            km = matching.distance_km(person.home, where)
            if skill not in person.skills or km > person.radius_km:
                continue
            yes, delay = respond(answers, seed, ticket, person, km)
            if not yes:
                continue
            trip = travel_minutes(seed, ticket, person, km)
            busy = max(1, math.floor(trip + work_minutes(seed, ticket)))
            latest = math.floor(arrived + ON_SITE_MIN - trip)
            for start in range(math.floor(arrived + delay), latest + 1):
                if _on_duty_near(person, start):
                    out.append(Slot(ticket, index, start, busy))
    return out


def _on_duty_near(person: Person, start: int) -> bool:
    """On duty at some minute in [start - AFTER_SHIFT_MIN, start + 1]. A shift is one run of
    hours, longer than the window, so the window's ends are enough to look at."""
    ends = (start - AFTER_SHIFT_MIN, start + 1)
    return any(on_duty(person, START + timedelta(minutes=end)) for end in ends)


def clairvoyant(city: City, seed: int, answers: Answers, seconds: float = 120.0) -> Bound:
    """The most tickets on site within 60 minutes any dispatcher could reach in this city
    with these answers (REAL: as the people answer; ALL_YES: every offer a yes at once)."""
    options = slots(city, seed, answers)
    tickets = len(city.arrivals)
    if not options:
        return Bound(tickets, 0, 0, True)
    rows: list[int] = []
    cols: list[int] = []
    row = 0
    for ticket_cols in _group(options, lambda s: s.ticket).values():  # a ticket once
        rows += [row] * len(ticket_cols)
        cols += ticket_cols
        row += 1
    for person_cols in _group(options, lambda s: s.person).values():  # one job at a time
        for clique in _overlapping(options, person_cols):
            rows += [row] * len(clique)
            cols += clique
            row += 1
    matrix = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(row, len(options)))
    result = milp(
        c=-np.ones(len(options)),
        constraints=LinearConstraint(matrix.tocsr(), -np.inf, 1),
        integrality=np.ones(len(options)),
        bounds=Bounds(0, 1),
        options={"time_limit": seconds, "disp": False},
    )
    taken = [] if result.x is None else list(result.x)
    chosen = tuple(o for o, x in zip(options, taken, strict=True) if x > 0.5) if taken else ()
    dual = getattr(result, "mip_dual_bound", None)
    at_most = len(chosen) if result.status == 0 or dual is None else math.floor(-dual + 1e-6)
    return Bound(tickets, len(chosen), max(len(chosen), at_most), result.status == 0, chosen)


def _group(options: list[Slot], key: Callable[[Slot], int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for col, option in enumerate(options):
        groups.setdefault(key(option), []).append(col)
    return groups


def _overlapping(options: list[Slot], person_cols: list[int]) -> list[list[int]]:
    """The slots of one person busy at each minute some slot of theirs starts, where more
    than one is: for intervals these cliques are all the constraints needed."""
    ordered = sorted(person_cols, key=lambda c: options[c].start)
    cliques, active, i = [], [], 0
    for minute in sorted({options[c].start for c in ordered}):
        while i < len(ordered) and options[ordered[i]].start <= minute:
            active.append(ordered[i])
            i += 1
        active = [c for c in active if options[c].start + options[c].busy > minute]
        if len(active) > 1:
            cliques.append(list(active))
    return cliques


@dataclass(frozen=True)
class Gap:
    """The tickets the oracle puts on site in time and a run does not, by why not."""

    busy: int  # the oracle's technician was on another job in the run at that minute
    free: int  # they were free in the run, which did not get them (or anyone) there in time


def gap(bound: Bound, city: City, run: Outcome) -> Gap:
    """Where a simulated run (one with its jobs recorded) loses against the oracle."""
    late = {n for n, m in zip(run.tickets, run.to_site, strict=True) if m > ON_SITE_MIN}
    late |= set(range(len(city.arrivals))) - set(run.tickets)  # never even a ticket
    busy = free = 0
    for slot in bound.schedule:
        if slot.ticket in late:
            who = city.people[slot.person].id
            if any(p == who and taken <= slot.start < freed for p, _n, taken, freed in run.jobs):
                busy += 1
            else:
                free += 1
    return Gap(busy, free)


def report(
    seconds: float, cities: dict[int, City], runs: dict[int, Outcome], bounds: dict[int, Bound]
) -> str:
    """crowdfix's runs beside the most any dispatcher could do in each city (seed → ...)."""
    rows: list[list[object]] = []
    busy = free = 0
    for seed, bound in bounds.items():
        run = runs[seed]
        proven = "" if bound.optimal else f" (proven: at most {bound.at_most})"
        why = gap(bound, cities[seed], run)
        busy, free = busy + why.busy, free + why.free
        rows.append([f"seed {seed}", bound.tickets, f"{run.on_site_share():.1%}",
                     f"{bound.share():.1%}", f"{bound.on_time}{proven}",
                     f"{why.busy} / {why.free}"])  # fmt: skip
    every = pooled("all", list(runs.values()))
    rows.append(["all", sum(b.tickets for b in bounds.values()), f"{every.on_site_share():.1%}",
                 f"{pooled_share(bounds.values()):.1%}", sum(b.on_time for b in bounds.values()),
                 f"{busy} / {free}"])  # fmt: skip
    header = ["city", "tickets", "crowdfix on site <= 60 min", "no dispatcher above",
              "oracle's tickets on time",
              "crowdfix late, oracle's technician busy elsewhere / free"]  # fmt: skip
    title = (
        "What no dispatcher can beat: the most tickets on site within 60 min, knowing every "
        f"ticket, answer, trip and job in advance (exact, HiGHS, <= {seconds:g} s a city)"
    )
    return table(title, header, rows)
