"""City simulation: the real dispatcher (cloud/dispatch on SQLite) against simulated time,
beside a naive baseline (nearest available technician with the skill, fixed 5 minute
timeout, no cascade, no pauses) run on the very same machinery, in the same city, with the
same arrivals and the same people.

The city (seeded, deterministic): shops with POS terminals, printers, network cabinets and
cold rooms spread over ~12 x 10 km; crowd technicians with one to three skills, a home, a
service radius and shifts; staff technicians on day shifts. Tickets arrive by category with
morning, lunch and evening peaks. A technician's answer to an offer depends on who they are
(some are reliable, some let offers lapse) and how far the job is; the same offer gets the
same answer under both dispatchers (its randomness is seeded by ticket and technician).
Travel takes the estimated time with noise; work takes 20-60 minutes.

`python -m bench dispatch` does this for several cities (seeds 7, 3 and 11 by default): it
first finds, with a quick sequential model of the naive dispatcher, the crowd size at which
it puts a technician on site within 60 minutes for ~80% of tickets; then runs the naive
policy and crowdfix's on simulated time at that size and prints them side by side:
accepted within 5 min, on site within 60 min, median and p90 time to site, utilisation,
offers per ticket; then the same over all cities' tickets together (one city's ~130 tickets
make differences of a few points noise). Beside them, what bounds them: quick models that
know the future, and crowdfix's own dispatcher with idealised answers (each person's yes or
no given at once; every offer taken at once, its ceiling in that city), and what no
dispatcher can beat: an oracle that knows every ticket and answer in advance
(bench/oracle.py). --answering makes the crowd less (or more) responsive.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import itertools
import math
import random
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from sqlalchemy import select

from bench.common import median, number, percentile, positive_float, positive_int, table
from cloud.auth.roles import Principal, Role
from cloud.db import make_engine, make_sessionmaker, migrate, transaction
from cloud.devices import service as devices
from cloud.devices.schemas import DeviceIn
from cloud.dispatch import csvimport, matching
from cloud.dispatch import service as dispatcher
from cloud.dispatch.matching import Weights
from cloud.dispatch.models import Offer, Technician
from cloud.dispatch.policy import DispatchPolicy
from cloud.dispatch.schemas import TechnicianIn
from cloud.errors import Conflict
from cloud.ingest.service import IngestContext, ingest_event
from cloud.sites import service as sites
from cloud.sites.schemas import SiteIn
from cloud.tickets.lifecycle import TicketState
from cloud.tickets.models import Ticket
from cloud.tickets.taxonomy import load_taxonomy
from contracts import ButtonEvent

START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday morning
CENTRE = (47.3769, 8.5417)
# button category → skill (as the built-in taxonomy maps them), and how common each is
CATEGORIES = {
    "till": ("pos", 0.3),
    "receipt-printer": ("printers", 0.25),
    "network": ("network", 0.2),
    "refrigeration": ("refrigeration", 0.15),
    "kiosk-printer": ("printers", 0.1),
}
SKILLS = sorted({skill for skill, _ in CATEGORIES.values()} | {"electrical"})
TICK = timedelta(seconds=15)
NAIVE_TIMEOUT = timedelta(minutes=5)
NEVER = datetime.max.replace(tzinfo=UTC)


# -- the world ----------------------------------------------------------------------------


@dataclass
class Person:
    """A simulated technician: who they are and how they behave."""

    id: str
    kind: str
    skills: list[str]
    home: tuple[float, float]
    radius_km: float
    reliability: float  # how likely they answer at all
    keenness: float  # how likely they say yes to a near job
    quality: float  # the stars their work tends to earn
    shift: tuple[int, int]  # hours of the day on duty


@dataclass
class City:
    """Sites, people and the tickets that will arrive."""

    sites: list[tuple[str, tuple[float, float]]]
    people: list[Person]
    arrivals: list[tuple[datetime, str, str]]  # when, site, category


def _near(rng: random.Random, spread_km: float) -> tuple[float, float]:
    dlat = rng.gauss(0, spread_km) / 111.0
    dlon = rng.gauss(0, spread_km) / (111.0 * math.cos(math.radians(CENTRE[0])))
    return (CENTRE[0] + dlat, CENTRE[1] + dlon)


def _rate_per_hour(hour: float, daily: float) -> float:
    """Arrivals per hour: a base with morning, lunch and evening peaks (sums to ~daily)."""
    shape = 0.3 + sum(
        height * math.exp(-((hour - peak) ** 2) / (2 * width**2))
        for peak, height, width in ((9, 1.0, 1.2), (12.5, 0.7, 1.0), (17.5, 0.9, 1.3))
    )
    return daily * shape / 24 / 0.62


def build_city(
    seed: int,
    crowd: int,
    staff: int,
    sites: int,
    daily: float,
    hours: float,
    answering: tuple[float, float] = (10, 1),
) -> City:
    """A deterministic city for this seed and size. answering: the Beta(a, b) each crowd
    technician's chance of answering an offer at all is drawn from (mean a / (a + b))."""
    rng = random.Random(seed)
    site_list = [(f"site-{i:03d}", _near(rng, 3.0)) for i in range(sites)]
    people = []
    for i in range(crowd + staff):
        is_staff = i >= crowd
        skills = rng.sample(SKILLS, 3 if is_staff else rng.choice((1, 2, 2, 3)))
        people.append(
            Person(
                id=f"{'s' if is_staff else 'c'}-{i:03d}",
                kind="staff" if is_staff else "crowd",
                skills=skills,
                home=_near(rng, 4.0),
                radius_km=25.0 if is_staff else rng.uniform(6, 14),
                # A crowd working under an 80% acceptance rule: most answer, most say yes
                # to a near job, a few let offers lapse (and get paused for it).
                reliability=0.99 if is_staff else rng.betavariate(*answering),
                keenness=0.97 if is_staff else rng.uniform(0.7, 0.98),
                quality=rng.uniform(4.5, 5.0) if is_staff else rng.uniform(4.2, 5.0),
                shift=(7, 19) if is_staff else rng.choice(((6, 14), (10, 20), (14, 23), (7, 22))),
            )
        )
    arrivals = []
    clock = 0.0
    cats, weights = zip(*((c, w) for c, (_s, w) in CATEGORIES.items()), strict=True)
    peak = _rate_per_hour(9, daily)
    while clock < hours:  # thinning: a Poisson process with a time-of-day rate
        clock += rng.expovariate(peak)
        if clock < hours and rng.random() < _rate_per_hour(clock % 24 + START.hour, daily) / peak:
            site = rng.choice(site_list)[0]
            arrivals.append((START + timedelta(hours=clock), site, rng.choices(cats, weights)[0]))
    return City(site_list, people, arrivals)


def answer(seed: int, ticket_no: int, person: Person, km: float) -> tuple[bool | None, float]:
    """A person answers the same job the same way under either dispatcher: (accept?, or
    None for no answer at all; minutes until they answer)."""
    digest = hashlib.sha256(f"{seed}/{ticket_no}/{person.id}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    if rng.random() > person.reliability:
        return None, 0.0
    delay = min(9.0, rng.lognormvariate(math.log(1.2), 0.6))
    yes = rng.random() < person.keenness * math.exp(-km / 25)
    return yes, delay


class Answers(StrEnum):
    """How the simulated people answer offers: as they would, or idealised for a ceiling."""

    REAL = "real"
    AT_ONCE = "at once"  # their own yes or no, the moment the offer is made (none: a no)
    ALL_YES = "all yes"  # every offer taken the moment it is made


def respond(
    answers: Answers, seed: int, ticket_no: int, person: Person, km: float
) -> tuple[bool | None, float]:
    """The answer to an offer under the chosen way of answering."""
    if answers is Answers.ALL_YES:
        return True, 0.0
    yes, delay = answer(seed, ticket_no, person, km)
    if answers is Answers.AT_ONCE:
        return bool(yes), 0.0
    return yes, delay


def on_duty(person: Person, at: datetime) -> bool:
    """Within their shift."""
    return person.shift[0] <= at.hour < person.shift[1]


def travel_minutes(seed: int, ticket_no: int, person: Person, km: float) -> float:
    """Actual travel: the estimate with noise."""
    digest = hashlib.sha256(f"travel/{seed}/{ticket_no}/{person.id}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return matching.eta_min(km) * rng.lognormvariate(0, 0.25)


def work_minutes(seed: int, ticket_no: int) -> float:
    """Time on site."""
    return 20 + 40 * random.Random(f"work/{seed}/{ticket_no}").random()


# -- results ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Per-ticket figures of one run."""

    name: str
    to_accept: list[float] = field(default_factory=list)  # minutes, inf when never
    to_site: list[float] = field(default_factory=list)
    offers: list[int] = field(default_factory=list)
    busy_minutes: float = 0.0
    staffed_minutes: float = 0.0
    tickets: list[int] = field(default_factory=list)  # the city's arrival index of each
    # every job taken: (person, arrival index, minutes after START it was taken, freed)
    jobs: list[tuple[str, int, float, float]] = field(default_factory=list)

    def row(self) -> list[object]:
        """A table row."""
        n = len(self.to_site) or 1
        done = [m for m in self.to_site if m < math.inf]
        return [
            self.name,
            len(self.to_site),
            f"{100 * sum(m <= 5 for m in self.to_accept) / n:.1f}%",
            f"{100 * sum(m <= 60 for m in self.to_site) / n:.1f}%",
            median(done),
            percentile(done, 90),
            f"{100 * self.busy_minutes / max(1.0, self.staffed_minutes):.1f}%",
            sum(self.offers) / n,
        ]

    def on_site_share(self) -> float:
        """Share of tickets with someone on site within 60 minutes."""
        return sum(m <= 60 for m in self.to_site) / max(1, len(self.to_site))


# -- the naive baseline -------------------------------------------------------------------


def run_naive(city: City, seed: int, hours: float, answers: Answers = Answers.REAL) -> Outcome:
    """Nearest available technician with the skill, 5 minutes each, until someone accepts.
    answers=ALL_YES: everyone accepts at once (what is left is the supply: a bound for any
    dispatcher that sends the nearest free technician)."""
    out = Outcome("naive: nearest, fixed 5 min")
    free_at = {p.id: START for p in city.people}
    site_at = dict(city.sites)
    for ticket_no, (opened, site, category) in enumerate(city.arrivals):
        skill = CATEGORIES[category][0]
        where = site_at[site]
        now, tried, offers = opened, set(), 0
        accepted = arrived = math.inf
        while now < opened + timedelta(hours=4):
            able = [
                p for p in city.people
                if skill in p.skills and matching.distance_km(p.home, where) <= p.radius_km
            ]  # fmt: skip
            pool = [
                p for p in able if p.id not in tried and on_duty(p, now) and free_at[p.id] <= now
            ]
            if not pool:
                if able and all(p.id in tried for p in able):
                    tried.clear()  # everyone was asked: start again from the nearest
                now += timedelta(minutes=1)
                continue
            person = min(pool, key=lambda p: (matching.distance_km(p.home, where), p.id))
            tried.add(person.id)
            offers += 1
            km = matching.distance_km(person.home, where)
            yes, delay = respond(answers, seed, ticket_no, person, km)
            if yes:
                now += timedelta(minutes=delay)
                accepted = (now - opened).total_seconds() / 60
                trip = travel_minutes(seed, ticket_no, person, km)
                work = work_minutes(seed, ticket_no)
                arrived = accepted + trip
                free_at[person.id] = now + timedelta(minutes=trip + work)
                out.busy_minutes += trip + work
                break
            now += timedelta(minutes=delay) if yes is False else NAIVE_TIMEOUT
        out.to_accept.append(accepted)
        out.to_site.append(arrived)
        out.offers.append(offers)
    out.staffed_minutes = _staffed(city, hours)
    return out


def run_chained(city: City, seed: int, hours: float, spare: bool = False) -> Outcome:
    """Every ticket, in order of arrival, to whoever can be there first, counting people still
    on a job (they set off when it ends, its end known exactly), every answer an instant yes:
    what chaining jobs would add to the supply, with knowledge no dispatcher has. spare: of
    those who can be there SPARE_MARGIN_MIN before the on-site target, the one whose other
    skills are least pressed (matching.skill_pressure over the tickets so far), as the
    reserve part of the ranking does, but exactly."""
    out = Outcome(
        "earliest arrival incl. busy people, finish known, instant yes"
        + (", sparing specialists" if spare else "")
    )
    free_at = {p.id: START for p in city.people}
    site_at = dict(city.sites)
    demand: dict[str, int] = {}
    for ticket_no, (opened, site, category) in enumerate(city.arrivals):
        skill, where = CATEGORIES[category][0], site_at[site]
        demand[skill] = demand.get(skill, 0) + 1
        pressure = matching.skill_pressure(demand, _as_candidates(city, opened)) if spare else {}
        best: tuple[tuple[bool, float, datetime], str, Person, datetime, float] | None = None
        for p in city.people:
            km = matching.distance_km(p.home, where)
            start = max(opened, free_at[p.id])
            if skill not in p.skills or km > p.radius_km or not on_duty(p, start):
                continue
            there = start + timedelta(minutes=matching.eta_min(km))
            on_time = spare and there <= opened + timedelta(minutes=60 - SPARE_MARGIN_MIN)
            elsewhere = matching.pressed_elsewhere(
                frozenset(p.skills), frozenset({skill}), pressure
            )
            key = (not on_time, elsewhere if on_time else 0.0, there)
            if best is None or (key, p.id) < best[:2]:
                best = (key, p.id, p, start, km)
        accepted = arrived = math.inf
        if best is not None:
            _key, _id, person, start, km = best
            trip = travel_minutes(seed, ticket_no, person, km)
            work = work_minutes(seed, ticket_no)
            accepted = (start - opened).total_seconds() / 60
            arrived = accepted + trip
            free_at[person.id] = start + timedelta(minutes=trip + work)
            out.busy_minutes += trip + work
        out.to_accept.append(accepted)
        out.to_site.append(arrived)
        out.offers.append(1 if best else 0)
    out.staffed_minutes = _staffed(city, hours)
    return out


SPARE_MARGIN_MIN = 8.0


def _as_candidates(city: City, at: datetime) -> list[matching.Candidate]:
    """The city's people as matching sees them (for skill pressure: who is on duty)."""
    return [
        matching.Candidate(
            p.id, matching.Kind(p.kind), frozenset(p.skills), p.home, p.radius_km,
            available=on_duty(p, at), capacity=1, active_jobs=0,
        )
        for p in city.people
    ]  # fmt: skip


def _staffed(city: City, hours: float) -> float:
    total = 0.0
    for minute in range(0, int(hours * 60), 15):
        at = START + timedelta(minutes=minute)
        total += 15 * sum(on_duty(p, at) for p in city.people)
    return total


# -- crowdfix: the real dispatcher on simulated time ----------------------------------------


class CrowdfixRun:
    """The city's tickets through cloud/dispatch, with simulated people answering offers."""

    def __init__(
        self,
        city: City,
        seed: int,
        workdir: Path,
        name: str,
        rules: DispatchPolicy,
        answers: Answers = Answers.REAL,
        every_round: bool = False,
    ) -> None:
        self.city, self.seed = city, seed
        self.answers = answers
        self.every_round = every_round  # a round every TICK even when none has work to do
        self.rounds = 0  # rounds run
        engine = make_engine(f"sqlite:///{workdir / 'sim.sqlite3'}")
        migrate(engine)
        self.sessions = make_sessionmaker(engine)
        self.people = {p.id: p for p in city.people}
        self.site_at = dict(city.sites)
        self.rules = rules
        # As a worker keeps them across its rounds.
        self.book, self.profiles = dispatcher.AnswerBook(), dispatcher.ProfileBook()
        self.ctx = IngestContext(load_taxonomy())
        self.events: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self._order = itertools.count()
        self.ticket_no: dict[int, int] = {}
        self.last_offer_id = 0  # offers are answered once: ids only grow
        self.out = Outcome(name)
        self.accepted_at: dict[int, datetime] = {}
        self.arrived_at: dict[int, datetime] = {}
        self.opened_at: dict[int, datetime] = {}

    def at(self, when: datetime, action: Callable[[datetime], None]) -> None:
        """Schedule an action in simulated time."""
        heapq.heappush(self.events, (when, next(self._order), action))

    def setup(self) -> None:
        """Sites, a device per arrival, and the technicians."""
        with transaction(self.sessions) as db:
            for site_id, (lat, lon) in self.city.sites:
                sites.upsert(
                    db_session=db,
                    site_in=SiteIn(id=site_id, name=site_id, latitude=lat, longitude=lon),
                    now=START,
                )
            # One device per arrival, so no two arrivals merge into one ticket (the naive
            # baseline treats each arrival as its own job too).
            for ticket_no, (_when, site_id, _category) in enumerate(self.city.arrivals):
                device = DeviceIn(id=f"dev-{ticket_no:05d}", site_id=site_id)
                devices.register(db_session=db, device_in=device, now=START)
            for p in self.city.people:
                body = TechnicianIn(
                    name=p.id,
                    kind=p.kind,
                    skills=p.skills,
                    home_lat=p.home[0],  # type: ignore[arg-type]
                    home_lon=p.home[1],
                    radius_km=p.radius_km,
                    # Their working hours, every day; they stay toggled available.
                    shifts=[f"mon-sun {p.shift[0]:02d}:00-{p.shift[1]:02d}:00"],
                    timezone="UTC",
                )
                csvimport.upsert(db_session=db, technician_id=p.id, body=body, now=START)

    def run(self, hours: float) -> Outcome:
        """Play the day."""
        self.setup()
        for ticket_no, (opened, site, category) in enumerate(self.city.arrivals):
            self.at(opened, lambda now, n=ticket_no, s=site, c=category: self._arrive(now, n, s, c))
        end = START + timedelta(hours=hours + 4)
        now, quiet_until = START, START
        while now < end:
            stirred = self._review(now)
            while self.events and self.events[0][0] <= now:
                when, _, action = heapq.heappop(self.events)
                action(when)
                stirred = True
            if stirred or now >= quiet_until:
                self._dispatch(now)
                self._answer_new_offers(now)
                quiet_until = self._quiet_until(now)
            now += TICK
        return self._collect(hours)

    def _quiet_until(self, now: datetime) -> datetime:
        """Until when rounds find nothing to do unless something happens first (dispatcher.
        next_work_at). Such rounds only read (the sweep's mark they would move is read back
        from wherever it stands), so skipping them leaves the day exactly as it was, in a
        fraction of the time: quiet hours, tickets waiting their minute, offers waiting for
        an answer, the tail after the last ticket."""
        if self.every_round:
            return now
        with self.sessions() as db:
            due = dispatcher.next_work_at(db_session=db)
        return NEVER if due is None else due

    def _review(self, now: datetime) -> bool:
        """On the hour the operator reviews paused technicians (a desk that looks at its
        alerts hourly lifts the pauses it finds). Shifts start and end by the technicians'
        working hours, which the dispatcher reads itself. Whether anyone was reviewed."""
        if now.minute or now.second:
            return False
        operator = Principal(0, "sim-operator", Role.OPERATOR)
        with transaction(self.sessions) as db:
            paused = db.scalars(select(Technician).where(Technician.paused)).all()
            for tech in paused:
                dispatcher.review(
                    db_session=db, technician_id=tech.id, caller=operator,
                    note="hourly review", now=now,
                )  # fmt: skip
        return bool(paused)

    def _arrive(self, now: datetime, ticket_no: int, _site: str, category: str) -> None:
        press = ButtonEvent(
            device_id=f"dev-{ticket_no:05d}",
            timestamp=now,
            seq=1,
            button="help",
            category=category,
        )
        with transaction(self.sessions) as db:
            result = ingest_event(db_session=db, message=press, ctx=self.ctx, now=now)
        if result.ticket_id is not None and result.ticket_id not in self.ticket_no:
            self.ticket_no[result.ticket_id] = ticket_no
            self.opened_at[result.ticket_id] = now

    def _dispatch(self, now: datetime) -> None:
        self.rounds += 1
        dispatcher.run_round(
            sessions=self.sessions,
            now=lambda: now,
            rules=self.rules,
            book=self.book,
            profiles=self.profiles,
        )

    def _answer_new_offers(self, now: datetime) -> None:
        with self.sessions() as db:
            fresh = db.scalars(
                select(Offer).where(Offer.id > self.last_offer_id).order_by(Offer.id)
            ).all()
        for offer in fresh:
            self.last_offer_id = offer.id
            if offer.state != "pending":
                continue
            person = self.people[offer.technician_id]
            ticket_no = self.ticket_no[offer.ticket_id]
            km = self._km(offer)
            yes, delay = respond(self.answers, self.seed, ticket_no, person, km)
            if yes is None:
                continue  # the deadline will pass
            when = now + timedelta(minutes=delay)
            self.at(when, lambda t, o=offer.id, p=person, y=yes, k=km: self._respond(t, o, p, y, k))

    def _offers_of(self, ticket_id: int) -> list[Offer]:
        with self.sessions() as db:
            return list(dispatcher.offers_of(db_session=db, ticket_id=ticket_id))

    def _km(self, offer: Offer) -> float:
        """How far the job is from the person (exact, not the offer's rounded figure, so
        answers and trips are the very ones the other dispatchers and the oracle see)."""
        _opened, site, _category = self.city.arrivals[self.ticket_no[offer.ticket_id]]
        return matching.distance_km(self.people[offer.technician_id].home, self.site_at[site])

    def _respond(self, now: datetime, offer_id: int, person: Person, yes: bool, km: float) -> None:
        caller = Principal(0, person.id, Role.TECHNICIAN, person.id)
        with transaction(self.sessions) as db:
            offer = db.get(Offer, offer_id)
            if offer is None or offer.state != "pending" or offer.deadline < now:
                return  # too late: it expired (or was withdrawn) meanwhile
            if not yes:
                dispatcher.decline(
                    db_session=db,
                    offer_id=offer_id,
                    caller=caller,
                    reason="busy",
                    now=now,
                    rules=self.rules,
                )
                return
            try:
                ticket = dispatcher.accept(
                    db_session=db, offer_id=offer_id, caller=caller, now=now, eta_min=None
                )
            except Conflict:  # busy after all (manual assignment): they say no
                dispatcher.decline(db_session=db, offer_id=offer_id, caller=caller,
                                   reason="at capacity", now=now, rules=self.rules)  # fmt: skip
                return
            ticket_id = ticket.id
        self.accepted_at[ticket_id] = now
        ticket_no = self.ticket_no[ticket_id]
        trip = travel_minutes(self.seed, ticket_no, person, km)
        work = work_minutes(self.seed, ticket_no)
        self.out.busy_minutes += trip + work
        taken = (now - START).total_seconds() / 60
        self.out.jobs.append((person.id, ticket_no, taken, taken + trip + work))
        self.at(
            now + timedelta(minutes=trip),
            lambda t, i=ticket_id, p=person: self._step(t, i, p, TicketState.ON_SITE),
        )
        self.at(
            now + timedelta(minutes=trip + work),
            lambda t, i=ticket_id, p=person: self._step(t, i, p, TicketState.RESOLVED),
        )

    def _step(self, now: datetime, ticket_id: int, person: Person, to: TicketState) -> None:
        with transaction(self.sessions) as db:
            ticket = db.get(Ticket, ticket_id)
            if ticket is None or ticket.technician_id != person.id:
                return
            if to is TicketState.ON_SITE:
                self.arrived_at[ticket_id] = now
            dispatcher.progress(db_session=db, ticket=ticket, to=to, actor=person.id, now=now)
            if to is TicketState.RESOLVED:
                stars = max(
                    1,
                    min(
                        5,
                        round(
                            random.Random(f"stars/{self.seed}/{ticket_id}").gauss(
                                person.quality, 0.4
                            )
                        ),
                    ),
                )
                dispatcher.rate(
                    db_session=db,
                    ticket_id=ticket_id,
                    stars=stars,
                    rated_by="sim-operator",
                    now=now,
                    rules=self.rules,
                )

    def _collect(self, hours: float) -> Outcome:
        out = self.out
        for ticket_id, opened in sorted(self.opened_at.items()):
            accepted = self.accepted_at.get(ticket_id)
            arrived = self.arrived_at.get(ticket_id)
            out.to_accept.append((accepted - opened).total_seconds() / 60 if accepted else math.inf)
            out.to_site.append((arrived - opened).total_seconds() / 60 if arrived else math.inf)
            out.tickets.append(self.ticket_no[ticket_id])
            out.offers.append(len(self._offers_of(ticket_id)))
        out.staffed_minutes = _staffed(self.city, hours)
        return out


# The naive dispatcher on the same machinery: nearest first (ETA alone), a fixed 5 minute
# timeout, no crowd → staff cascade, no pauses, tickets served oldest first.
NAIVE = DispatchPolicy(
    weights=Weights(
        eta=1,
        rating=0,
        acceptance=0,
        load=0,
        fairness=0,
        reserve=0,
        miss_penalty_min=0,
    ),
    shorten_deadlines=False,
    cascade=False,
    pause=False,
    triage=False,
)


def simulate(
    city: City,
    seed: int,
    hours: float,
    name: str,
    rules: DispatchPolicy,
    answers: Answers = Answers.REAL,
    every_round: bool = False,
) -> Outcome:
    """One dispatcher through the city's day, on a fresh database. answers: as people would,
    or idealised (AT_ONCE: what waiting for answers costs; ALL_YES: what is left is the
    supply, for this policy). every_round: run the rounds that have nothing to do too (the
    same day, slower)."""
    with tempfile.TemporaryDirectory(prefix="crowdfix-city-") as tmp:
        run = CrowdfixRun(city, seed, Path(tmp), name, rules, answers, every_round)
        return run.run(hours)


# -- the command --------------------------------------------------------------------------


def city_for(args: argparse.Namespace, seed: int, crowd: int) -> City:
    """The city the command line describes, with this seed and crowd size."""
    return build_city(seed, crowd, args.staff, args.sites, args.daily, args.hours, args.answering)


def find_density(args: argparse.Namespace) -> tuple[int, Outcome]:
    """The crowd size at which the naive baseline is closest to 80% on site within 60 min:
    coarse steps up to the first size past 80%, then every size in the last step."""

    def naive_at(crowd: int) -> Outcome:
        city = city_for(args, args.seed, crowd)
        naive = run_naive(city, args.seed, args.hours)
        print(f"  crowd {crowd:3d}: naive on site within 60 min {naive.on_site_share():.1%}",
              file=sys.stderr)  # fmt: skip
        return naive

    tried: dict[int, Outcome] = {}
    for crowd in range(args.min_crowd, args.max_crowd + 1, args.step):
        tried[crowd] = naive_at(crowd)
        if tried[crowd].on_site_share() >= 0.8:
            for finer in range(max(args.min_crowd, crowd - args.step + 1), crowd):
                tried[finer] = naive_at(finer)
            break
    crowd = min(tried, key=lambda c: (abs(tried[c].on_site_share() - 0.8), c))
    return crowd, tried[crowd]


def pooled(name: str, runs: list[Outcome]) -> Outcome:
    """Several cities' tickets as one sample."""
    out = Outcome(name)
    for run in runs:
        out.to_accept += run.to_accept
        out.to_site += run.to_site
        out.offers += run.offers
        out.busy_minutes += run.busy_minutes
        out.staffed_minutes += run.staffed_minutes
    return out


AT_ONCE = "crowdfix, every answer (yes or no) given at once"
CEILING = "crowdfix, every offer taken at once (its ceiling here)"
HEADER = ["dispatcher", "tickets", "accepted <= 5 min", "on site <= 60 min",
          "median to site", "p90 to site", "utilisation", "offers/ticket"]  # fmt: skip


def _seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers such as 7,3,11, got {text!r}"
        ) from None


def _beta(text: str) -> tuple[float, float]:
    try:
        a, b = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A,B such as 10,1, got {text!r}") from None
    if a <= 0 or b <= 0:
        raise argparse.ArgumentTypeError(f"A and B must be above 0, got {text!r}")
    return a, b


def main(argv: list[str] | None = None) -> int:
    """Command line of this benchmark."""
    from bench import oracle  # it builds on this module's city

    parser = argparse.ArgumentParser(
        prog="python -m bench dispatch", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument(
        "--seeds",
        type=_seeds,
        default="7,3,11",
        help="cities to simulate (comma list; default 7,3,11)",
    )
    parser.add_argument(
        "--sites", type=positive_int, default=80, help="shops in the city (default 80)"
    )
    parser.add_argument(
        "--daily", type=positive_float, default=160, help="tickets per day (default 160)"
    )
    parser.add_argument(
        "--hours", type=positive_float, default=16, help="simulated hours from 06:00 (default 16)"
    )
    parser.add_argument(
        "--staff", type=positive_int, default=4, help="staff technicians (default 4)"
    )
    parser.add_argument(
        "--crowd", type=positive_int, help="crowd size (default: searched, see above)"
    )
    parser.add_argument(
        "--min-crowd", type=positive_int, default=10, help="smallest crowd the search tries"
    )
    parser.add_argument(
        "--max-crowd", type=positive_int, default=120, help="largest crowd the search tries"
    )
    parser.add_argument(
        "--step",
        type=positive_int,
        default=5,
        help="the search's coarse step (then every size in the last one)",
    )
    parser.add_argument(
        "--answering",
        type=_beta,
        default=(10.0, 1.0),
        metavar="A,B",
        help="Beta(A, B) each crowd technician's chance of answering an offer at all is drawn "
        "from (default 10,1: 91%% on average; 3,1 is a less responsive crowd, 75%%)",
    )
    parser.add_argument(
        "--oracle-seconds",
        type=number(float, "a number of seconds", zero=True),
        default=120,
        metavar="S",
        help="time limit per city for the oracle, the most tickets any dispatcher knowing "
        "the future could put on site in time (bench/oracle.py; 0 skips it)",
    )
    args = parser.parse_args(argv)
    if args.min_crowd > args.max_crowd:
        parser.error(f"--min-crowd {args.min_crowd} is above --max-crowd {args.max_crowd}")
    seeds: list[int] = args.seeds  # parsed by _seeds (the default too)
    quick = "naive, quick model" + ("" if args.crowd else " (density search)")
    cities: dict[int, tuple[int, City, Outcome]] = {}
    bounds: dict[int, Outcome] = {}
    chained: dict[int, Outcome] = {}
    spared: dict[int, Outcome] = {}
    for seed in seeds:
        args.seed = seed
        if args.crowd:
            crowd = args.crowd
            city = city_for(args, seed, crowd)
            naive = run_naive(city, seed, args.hours)
        else:
            print(f"seed {seed}: finding the density where the naive baseline reaches 80% on "
                  "site in 60 min…", file=sys.stderr)  # fmt: skip
            crowd, naive = find_density(args)
        naive.name = quick
        city = city_for(args, seed, crowd)
        cities[seed] = (crowd, city, naive)
        bound = run_naive(city, seed, args.hours, Answers.ALL_YES)
        bound.name = "quick model, every answer an instant yes"
        bounds[seed] = bound
        chained[seed] = run_chained(city, seed, args.hours)
        spared[seed] = run_chained(city, seed, args.hours, spare=True)
    print(f"running the dispatchers on simulated time in {len(seeds)} cities (a few minutes)…",
          file=sys.stderr)  # fmt: skip
    # The real machinery: the naive policy, crowdfix's, and crowdfix's with idealised answers:
    # each given at once (what waiting for answers costs), and every one a yes (its ceiling
    # in this city: what is left is the supply).
    policies = (
        ("naive: nearest, fixed 5 min", NAIVE, Answers.REAL),
        ("crowdfix", DispatchPolicy(), Answers.REAL),
        (AT_ONCE, DispatchPolicy(), Answers.AT_ONCE),
        (CEILING, DispatchPolicy(), Answers.ALL_YES),
    )
    with ProcessPoolExecutor(2) as pool:
        runs = {
            (seed, name): pool.submit(simulate, city, seed, args.hours, name, rules, answers)
            for seed, (_crowd, city, _naive) in cities.items()
            for name, rules, answers in policies
        }
        oracles = {
            seed: pool.submit(oracle.clairvoyant, city, seed, Answers.REAL, args.oracle_seconds)
            for seed, (_crowd, city, _naive) in cities.items()
            if args.oracle_seconds > 0
        }
        results = {key: run.result() for key, run in runs.items()}
        bounds_of = {seed: run.result() for seed, run in oracles.items()}
    real = [name for name, _rules, answers in policies if answers is Answers.REAL]
    for seed, (crowd, city, naive) in cities.items():
        title = (
            f"City simulation (seed {seed}): {len(city.sites)} sites, {crowd} crowd + "
            f"{args.staff} staff technicians, {len(city.arrivals)} tickets over {args.hours:g} h"
        )
        rows = [naive.row(), *(results[(seed, name)].row() for name in real)]
        rows += [bounds[seed].row(), chained[seed].row(), spared[seed].row()]
        rows += [results[(seed, AT_ONCE)].row(), results[(seed, CEILING)].row()]
        print(table(title, HEADER, rows))
    every = [
        pooled(quick, [naive for _c, _city, naive in cities.values()]),
        *(pooled(name, [results[(seed, name)] for seed in cities]) for name in real),
        pooled("quick model, every answer an instant yes", list(bounds.values())),
        pooled(chained[seeds[0]].name, list(chained.values())),
        pooled(spared[seeds[0]].name, list(spared.values())),
        pooled(AT_ONCE, [results[(seed, AT_ONCE)] for seed in cities]),
        pooled(CEILING, [results[(seed, CEILING)] for seed in cities]),
    ]
    named = ",".join(map(str, seeds))
    print(table(f"All {len(cities)} cities together (seeds {named})", HEADER,
                [run.row() for run in every]))  # fmt: skip
    share = {run.name: run.on_site_share() for run in every}
    beyond = ""
    if bounds_of:
        crowdfix = {seed: results[(seed, "crowdfix")] for seed in bounds_of}
        city_of = {seed: city for seed, (_crowd, city, _naive) in cities.items()}
        print(oracle.report(args.oracle_seconds, city_of, crowdfix, bounds_of))
        most = oracle.pooled_share(bounds_of.values())
        beyond = f"; no dispatcher, knowing every ticket and answer in advance, {most:.1%}"
    verdict = "met" if share["crowdfix"] >= 0.95 else "missed"
    if args.crowd:  # the goal is set where the naive baseline reaches 80%, not at any size
        verdict = f"not judged at a fixed --crowd (naive here: {share[quick]:.1%})"
    print(f"goal (crowdfix >= 95% on site within 60 min where naive is ~80%): {verdict}; "
          f"crowdfix {share['crowdfix']:.1%}; with every answer given at once "
          f"{share[AT_ONCE]:.1%}; its ceiling, every offer taken at once, "
          f"{share[CEILING]:.1%}{beyond}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
