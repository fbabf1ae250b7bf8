"""Dispatch use cases: load, decide (matching and policy, pure), persist, notify.

Every function runs inside the caller's transaction; tickets are locked (`FOR UPDATE` on
PostgreSQL, the writer lock on SQLite) and at most one offer per ticket can be pending (a
unique partial index), so several cloud processes can run the dispatcher at once and each
deadline fires once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.auth import service as accounts
from cloud.auth.models import User
from cloud.auth.roles import Principal
from cloud.clock import utc_now
from cloud.db import transaction
from cloud.devices.models import Device
from cloud.dispatch import history, matching, policy, shifts
from cloud.dispatch.models import Offer, SweepMark, Technician, TechnicianEvent
from cloud.dispatch.schemas import (
    TECHNICIAN_TOPICS,
    AvailabilityIn,
    JobAssigned,
    JobCalledOff,
    OfferNotice,
    OfferWithdrawn,
    PlaceView,
)
from cloud.errors import Conflict, Forbidden, Invalid, NotFound
from cloud.outbound import delivery, signing
from cloud.outbound import service as outbound
from cloud.sites.models import Site
from cloud.tickets import service as tickets
from cloud.tickets.lifecycle import DISPATCHED, OPEN, TicketState
from cloud.tickets.models import Ticket, TicketEvent
from cloud.tickets.taxonomy import Taxonomy

_LOGGER = logging.getLogger(__name__)
PENDING, ACCEPTED, DECLINED, EXPIRED, WITHDRAWN = (
    "pending",
    "accepted",
    "declined",
    "expired",
    "withdrawn",
)
DISPATCHER = "dispatcher"
WAITING = (TicketState.NEW, TicketState.DISPATCHING, TicketState.ESCALATED)
RETRY_AFTER = timedelta(minutes=10)
MAX_LAPSES = 2  # offers of one ticket a technician may let lapse before they are not asked
RECHECK_AFTER = timedelta(minutes=1)  # an escalated ticket nobody can take: look again then
# Answers read per technician for the acceptance window: this many times the window, so the
# lapses not held against them (a deadline cut short) can be left out and the window still
# filled (short of it only if two thirds of their latest answers were such lapses).
LOOKBACK = 3
# A dispatcher re-reads the answers of the technicians whose offers changed since its last
# round, less this margin (transactions committed late, workers' clocks apart).
ANSWERS_MARGIN = timedelta(minutes=5)
# Profiles to read again by id at most; more (a worker's first round), and everyone's are read.
PROFILES_BY_ID = 500
# Skill demand (for matching's reserve part): the skills of tickets opened this long back,
# at most this many of the latest.
DEMAND_WINDOW = timedelta(days=7)
DEMAND_SAMPLE = 2000
# The loose-ends sweep reads the changes since its mark (less this margin, for transactions
# that committed after a later round had read), and moves the mark on once it is this old.
SWEEP_MARGIN = timedelta(minutes=5)
SWEEP_MARK_EVERY = timedelta(minutes=10)
# With no mark yet (a new deployment, or one upgraded from before marks), the sweep reads this
# far back: older changes predate the notices and are not told now.
FIRST_SWEEP = timedelta(hours=1)
LOOSE_ENDS = "loose_ends"  # the sweep's mark
LET_GO = [s.value for s in (TicketState.CANCELLED, TicketState.RESOLVED, *WAITING)]
CALLED_OFF = "job_called_off"  # the audit entry of a technician told their job is off
LAPSED = "no answer before the deadline"
# A lapse whose deadline fell after the technician's shift ended or time off began: they had
# no full time to answer, so it is not held against them.
LAPSED_OFF_DUTY = f"{LAPSED}, by when their working hours had ended"


def technician_topic(technician_id: str, about: str = "offer") -> str:
    """`tech/crowdfix/v1/<technician>/offer` (offers made and withdrawn) or `…/job` (jobs
    called off, or assigned by hand): what is pushed to one technician's app."""
    return f"{TECHNICIAN_TOPICS}/{technician_id}/{about}"


# -- loading ------------------------------------------------------------------------------


def get_technician(*, db_session: Session, technician_id: str, lock: bool = False) -> Technician:
    """The technician (lock: their row, against a concurrent accept or retirement; taken
    before any ticket's); NotFound otherwise."""
    tech = db_session.get(Technician, technician_id, with_for_update=lock)
    if tech is None:
        raise NotFound(f"technician {technician_id!r} does not exist")
    return tech


def active_jobs(*, db_session: Session) -> dict[str, int]:
    """Open dispatched tickets per technician."""
    rows = db_session.execute(
        select(Ticket.technician_id, func.count())
        .where(Ticket.technician_id.is_not(None), Ticket.state.in_([s.value for s in DISPATCHED]))
        .group_by(Ticket.technician_id)
    )
    return {tech: count for tech, count in rows if tech}


def outcomes(
    *, db_session: Session, rules: policy.DispatchPolicy, technician_id: str | None = None
) -> dict[str, list[bool]]:
    """Per technician, their last answers in the rules' acceptance window, oldest first: True
    for an accepted offer, False for a declined one or one left to lapse. A lapse counts only
    when they had the full time to answer: a deadline cut short for the SLA, or one after
    their shift ended or time off began, is not held against anyone. Each technician's
    latest LOOKBACK answers are read by the index on (technician, time), so the cost follows
    the technicians, not every offer ever made."""
    window = rules.acceptance_window
    ids = (
        [technician_id]
        if technician_id is not None
        else db_session.scalars(select(Technician.id)).all()
    )
    read = _last_answers(LOOKBACK * window)
    result: dict[str, list[bool]] = {}
    for tech_id in ids:
        latest = db_session.execute(read, {"technician_id": tech_id}).all()
        answers = [
            state == ACCEPTED
            for state, offered_at, deadline, reason in reversed(latest)
            if state != EXPIRED or _held(offered_at, deadline, reason, rules)
        ]
        if answers:
            result[tech_id] = answers[-window:]
    return result


def _held(
    offered_at: datetime, deadline: datetime, reason: str, rules: policy.DispatchPolicy
) -> bool:
    """A lapse held against the technician: they had the full time to answer, on duty."""
    return deadline - offered_at >= rules.offer_timeout and reason != LAPSED_OFF_DUTY


@functools.cache
def _last_answers(limit: int) -> Select[str, datetime, datetime, str]:
    """A technician's latest answered offers, newest first, by the index on (technician,
    time). Built once, with the technician as a parameter: a round runs it for every
    technician, and building and compiling a statement each time cost seven times the read."""
    return (
        select(Offer.state, Offer.offered_at, Offer.deadline, Offer.reason)
        .where(
            Offer.technician_id == bindparam("technician_id"),
            Offer.state.in_([ACCEPTED, DECLINED, EXPIRED]),
        )
        .order_by(Offer.offered_at.desc(), Offer.id.desc())
        .limit(limit)
    )


class AnswerBook:
    """One dispatcher process's copy of every technician's answers (outcomes), kept from
    round to round. Reading everyone's is one query per technician (a second of queries a
    round for a crowd of a few thousand); after the first round, a round re-reads only the
    technicians whose offers changed since its last read (`Offer.changed_at`), less
    ANSWERS_MARGIN for transactions that committed after that read began and for the clocks of
    several workers. Anything else (another policy, the clock gone back) reads everyone."""

    def __init__(self) -> None:
        self._answers: dict[str, list[bool]] = {}
        self._read_at: datetime | None = None
        self._rules: policy.DispatchPolicy | None = None

    def read(
        self, *, db_session: Session, rules: policy.DispatchPolicy, now: datetime
    ) -> dict[str, list[bool]]:
        """Everyone's outcomes as `outcomes` gives them, as of now: a copy, which the round
        keeps up to date with its own lapses."""
        if self._read_at is None or rules != self._rules or now < self._read_at:
            self._answers = outcomes(db_session=db_session, rules=rules)
        else:
            since = self._read_at - ANSWERS_MARGIN
            # Not DISTINCT: SQLite would then walk the whole (technician, time) index rather
            # than the few rows since.
            changed = db_session.scalars(
                select(Offer.technician_id).where(Offer.changed_at >= since)
            ).all()
            for tech_id in sorted(set(changed)):
                fresh = outcomes(db_session=db_session, rules=rules, technician_id=tech_id)
                self._answers.pop(tech_id, None)
                self._answers.update(fresh)
        self._read_at, self._rules = now, rules
        return {tech_id: list(answers) for tech_id, answers in self._answers.items()}


def recent_outcomes(
    *, db_session: Session, technician_id: str, rules: policy.DispatchPolicy
) -> list[bool]:
    """The technician's outcomes in the rules' acceptance window, oldest first."""
    history = outcomes(db_session=db_session, technician_id=technician_id, rules=rules)
    return history.get(technician_id, [])


def cert_expiry(value: str) -> datetime:
    """A certification's expiry: valid through the whole day it names (UTC)."""
    expiry = datetime.fromisoformat(value)
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC) + timedelta(days=1)
    return expiry


@dataclass(frozen=True)
class _Made:
    """The candidate last made of a profile: for which standing, load and answers, at what
    time, and until when its shift status holds (None: no working hours, always)."""

    key: tuple[object, ...]
    at: datetime
    until: datetime | None
    candidate: matching.Candidate


@dataclass
class Profile:
    """A technician as a round reads them once for all its offers: what matching needs that
    only an admin or the technician changes (skills, places, capacity, rating, certifications)
    and their working hours. Their standing, load and answers are read for each offer; the
    candidate last made of them is kept, and made again only when one of those changed (or
    their shift did)."""

    base: matching.Candidate
    hours: shifts.Hours | None
    revision: int = 0  # the technician row's, when read
    made: _Made | None = None

    def candidate(
        self, *, available: bool, paused: bool, jobs: int, outcomes: list[bool], now: datetime
    ) -> matching.Candidate:
        """The matching view of the technician with their standing, load and answers (now:
        for their working hours)."""
        key = (available, paused, jobs, len(outcomes), sum(outcomes))
        made = self.made
        if made and made.key == key and made.at <= now and (made.until is None or now < made.until):
            return made.candidate
        duty = _duty(self.hours, now)
        candidate = dataclasses.replace(
            self.base,
            available=available,
            paused=paused,
            active_jobs=jobs,
            offers_recent=len(outcomes),
            accepted_recent=sum(outcomes),
            off_shift=not duty.on_shift,
            on_leave=duty.on_leave is not None,
            shift_starts_at=None if duty.on_shift else duty.changes_at,
        )
        self.made = _Made(key, now, duty.changes_at, candidate)
        return candidate


def profile(tech: Technician) -> Profile:
    """The technician's profile (standing, load and answers as if new: set by its candidate)."""
    position = (tech.lat, tech.lon) if tech.lat is not None and tech.lon is not None else None
    base = matching.Candidate(
        id=tech.id,
        kind=matching.Kind(tech.kind),
        skills=frozenset(tech.skills),
        home=(tech.home_lat, tech.home_lon),
        radius_km=tech.radius_km,
        available=tech.available,
        capacity=tech.capacity,
        active_jobs=0,
        rating_sum=tech.rating_sum,
        rating_count=tech.rating_count,
        paused=tech.paused,
        position=position,
        position_at=tech.position_at,
        certifications={k: cert_expiry(v) for k, v in tech.certifications.items()},
        last_job_at=tech.last_job_at,
    )
    return Profile(base, working_hours(tech), tech.revision)


def certifications_due(tech: Technician, now: datetime) -> list[tuple[str, datetime]]:
    """Their certifications that have expired or expire soon (matching.CERT_WARNING)."""
    expiries = {skill: cert_expiry(until) for skill, until in tech.certifications.items()}
    return matching.certifications_due(expiries, now)


def on_shift(tech: Technician, now: datetime) -> bool:
    """Within the technician's working hours and not on time off (none set: always; the
    toggle says the rest)."""
    return shift_status(tech, now).on_shift


def shift_status(tech: Technician, now: datetime) -> shifts.Duty:
    """On shift now, on leave, and when that next changes (no working hours: always on)."""
    return _duty(working_hours(tech), now)


def _duty(hours: shifts.Hours | None, now: datetime) -> shifts.Duty:
    return shifts.ALWAYS if hours is None else hours.status(now)


def working_hours(tech: Technician) -> shifts.Hours | None:
    """The technician's shifts and time off in their time zone (None: neither, or unreadable
    ones, logged)."""
    if not tech.shifts and not tech.time_off:
        return None
    try:
        return _hours(tuple(tech.shifts), tuple(tech.time_off), tech.timezone)
    except shifts.ShiftError as exc:  # validated when set; a time zone the system lost
        _LOGGER.warning("technician %s: working hours ignored: %s", tech.id, exc)
        return None


@functools.lru_cache(maxsize=4096)
def _hours(texts: tuple[str, ...], time_off: tuple[str, ...], timezone: str) -> shifts.Hours:
    leaves = tuple(sorted(shifts.parse_leave(t) for t in time_off))
    return shifts.Hours(tuple(shifts.parse_all(texts)), shifts.zone(timezone), leaves)


def pending_per_technician(*, db_session: Session) -> dict[str, int]:
    """Offers each technician is considering right now."""
    rows = db_session.execute(
        select(Offer.technician_id, func.count())
        .where(Offer.state == PENDING)
        .group_by(Offer.technician_id)
    )
    return {tech_id: count for tech_id, count in rows}


def profiles(*, db_session: Session) -> dict[str, Profile]:
    """Every active technician's profile, by id."""
    active = select(Technician).where(Technician.retired_at.is_(None)).order_by(Technician.id)
    return {tech.id: profile(tech) for tech in db_session.scalars(active)}


class ProfileBook:
    """The technicians' profiles as one dispatcher process keeps them from round to round.
    Every offer reads each active technician's standing with their row's revision (which
    every change of the row moves on); a profile is read again only when that revision moved,
    or for someone new. A crowd of thousands then costs a few short columns an offer, not
    thousands of rows with their skills, certifications and hours a round. As a safety net
    for changes made to the table outside crowdfix, everyone is read again every
    FULL_READ_EVERY of the process's own time. A round given no book starts from an empty
    one: everyone is read at its first offer."""

    FULL_READ_EVERY = 600.0  # seconds

    def __init__(self) -> None:
        self._known: dict[str, Profile] = {}
        self._full_at = time.monotonic()
        self.read = 0  # profiles read so far

    def current(self, db_session: Session, revisions: Mapping[str, int]) -> dict[str, Profile]:
        """The profiles of these technicians (id → revision, as just read), read again where
        the revision moved; those no longer active are dropped."""
        if time.monotonic() - self._full_at > self.FULL_READ_EVERY:
            self._known, self._full_at = {}, time.monotonic()
        stale = [
            tech_id
            for tech_id, revision in revisions.items()
            if tech_id not in self._known or self._known[tech_id].revision != revision
        ]
        if len(stale) > PROFILES_BY_ID:
            fresh = profiles(db_session=db_session)  # one query, rather than many by id
            self._known.update((tech_id, fresh[tech_id]) for tech_id in stale if tech_id in fresh)
        else:
            chosen = select(Technician).where(Technician.id.in_(stale))
            self._known.update((t.id, profile(t)) for t in db_session.scalars(chosen))
        self.read += len(stale)
        for gone in self._known.keys() - revisions.keys():
            del self._known[gone]
        return self._known


def candidates(
    *,
    db_session: Session,
    rules: policy.DispatchPolicy | None = None,
    now: datetime,
    answers: Mapping[str, list[bool]] | None = None,
    book: ProfileBook | None = None,
) -> list[matching.Candidate]:
    """Every technician as matching sees them, at now (their working hours). An offer they
    are considering counts as load: one decision at a time per free slot. answers: their
    outcomes, when the caller has them (a round reads them once); no rules either: without
    acceptance history (eligibility and ETA need none). book: the profiles the caller keeps
    (a worker, from round to round); who is active, available and paused, their load and
    whether their profile changed are read here all the same."""
    jobs = active_jobs(db_session=db_session)
    for tech_id, count in pending_per_technician(db_session=db_session).items():
        jobs[tech_id] = jobs.get(tech_id, 0) + count
    if answers is None:
        answers = outcomes(db_session=db_session, rules=rules) if rules else {}
    standing = db_session.execute(
        select(Technician.id, Technician.available, Technician.paused, Technician.revision)
        .where(Technician.retired_at.is_(None))
        .order_by(Technician.id)
    ).all()
    known = (book or ProfileBook()).current(db_session, {row[0]: row[3] for row in standing})
    return [
        known[tech_id].candidate(
            available=available,
            paused=paused,
            jobs=jobs.get(tech_id, 0),
            outcomes=answers.get(tech_id, []),
            now=now,
        )
        for tech_id, available, paused, _ in standing
        if tech_id in known  # retired between the two reads
    ]


def _device_and_site(db_session: Session, ticket: Ticket) -> tuple[Device | None, Site | None]:
    device = db_session.get(Device, ticket.device_id) if ticket.device_id else None
    site_id = ticket.site_id or (device.site_id if device else None)
    return device, db_session.get(Site, site_id) if site_id else None


def _point(device: Device | None, site: Site | None) -> tuple[float, float] | None:
    """The point travel is measured to: the device's own position, else its site's."""
    for lat, lon in ((d.latitude, d.longitude) for d in (device, site) if d is not None):
        if lat is not None and lon is not None:
            return lat, lon
    return None


def place(*, db_session: Session, ticket: Ticket, map_url: str = "") -> PlaceView | None:
    """Where the ticket's job is, for the technician: its site's name and address, the point
    travel is measured to, and a link to a map of it (map_url: the deployment's template,
    CROWDFIX_MAP_URL; empty, or no point known: no link). None: neither site nor device
    known."""
    device, site = _device_and_site(db_session, ticket)
    if site is None and device is None:
        return None
    lat, lon = _point(device, site) or (None, None)
    located = map_url and lat is not None and lon is not None
    return PlaceView(
        name=site.name if site is not None else str(ticket.device_id),
        address=site.address if site is not None else "",
        lat=lat,
        lon=lon,
        map_url=map_url.format(lat=lat, lon=lon) if located else None,
    )


def job_for(
    *, db_session: Session, ticket: Ticket, since: datetime | None = None
) -> matching.Job | None:
    """The matching view of a ticket: its skills and where it is (None: no location). Runs
    for every waiting ticket in every round, so it reads just the point, not the place."""
    location = _point(*_device_and_site(db_session, ticket))
    if location is None:
        return None
    answers = db_session.execute(
        select(Offer.technician_id, Offer.state, Offer.offered_at).where(
            Offer.ticket_id == ticket.id, Offer.state.in_([DECLINED, EXPIRED])
        )
    ).all()
    return matching.Job(
        ticket.id, frozenset(ticket.skills), location, frozenset(not_to_ask(answers, since))
    )


def unreached() -> ColumnElement[bool]:
    """Open top-level tickets nobody has reached yet: those whose on-site clock runs."""
    open_ = Ticket.state.in_([s.value for s in OPEN])
    return and_(open_, _top_level(), Ticket.on_site_at.is_(None))


def _top_level() -> ColumnElement[bool]:
    """`parent_id IS NULL`, written so no index serves it: SQLite's planner, knowing nothing of
    the data, would otherwise pick the parent_id index, and `IS NULL` holds for nearly every
    ticket ever opened: a scan of them all instead of the state or time index the query has."""
    return func.coalesce(Ticket.parent_id, 0) == 0


def recent_demand(*, db_session: Session, now: datetime) -> dict[str, int]:
    """How many recent tickets wanted each skill (DEMAND_WINDOW, the latest DEMAND_SAMPLE)."""
    counts: Counter[str] = Counter()
    for skills in db_session.scalars(
        select(Ticket.skills)
        .where(Ticket.opened_at >= now - DEMAND_WINDOW, _top_level())
        .order_by(Ticket.opened_at.desc())
        .limit(DEMAND_SAMPLE)
    ):
        counts.update(skills or [])
    return dict(counts)


def not_to_ask(answers: Sequence[tuple[str, str, datetime]], since: datetime | None) -> set[str]:
    """Who is not offered this ticket again: whoever declined it (a no to this job stays a
    no), and whoever let it lapse MAX_LAPSES times; a single lapse is forgiven on an
    escalated ticket once it is older than `since` (they may have missed it)."""
    lapses: dict[str, list[datetime]] = {}
    out = set()
    for technician_id, state, offered_at in answers:
        if state == DECLINED:
            out.add(technician_id)
        else:
            lapses.setdefault(technician_id, []).append(offered_at)
    for technician_id, times in lapses.items():
        if len(times) >= MAX_LAPSES or since is None or max(times) >= since:
            out.add(technician_id)
    return out


def offers_of(*, db_session: Session, ticket_id: int) -> Sequence[Offer]:
    """A ticket's offers, oldest first."""
    return db_session.scalars(
        select(Offer).where(Offer.ticket_id == ticket_id).order_by(Offer.offered_at, Offer.id)
    ).all()


def pending_offer(*, db_session: Session, ticket_id: int) -> Offer | None:
    """The ticket's pending offer, if any."""
    return db_session.scalars(
        select(Offer).where(Offer.ticket_id == ticket_id, Offer.state == PENDING)
    ).first()


# -- the dispatcher -----------------------------------------------------------------------


def next_stage(
    *, db_session: Session, ticket: Ticket, now: datetime, rules: policy.DispatchPolicy
) -> policy.Stage:
    """Crowd, staff or operator, from the offers made so far."""
    started = ticket.dispatch_started_at or now
    # This round only: a job given back starts the cascade afresh.
    offers = [
        o for o in offers_of(db_session=db_session, ticket_id=ticket.id) if o.offered_at >= started
    ]
    crowd = sum(1 for o in offers if o.stage == policy.Stage.CROWD)
    staff = sum(1 for o in offers if o.stage == policy.Stage.STAFF)
    return policy.stage(crowd, staff, started, now, rules)


@dataclass
class RoundReads:
    """What a dispatcher round reads once and every offer it makes uses, rather than once an
    offer: the week's skill demand and the technicians' answers, the latter kept up to date
    with the round's own lapses. None: read when needed."""

    demand: Mapping[str, int] | None = None
    answers: dict[str, list[bool]] | None = None
    profiles: ProfileBook = field(default_factory=ProfileBook)  # a worker's, or the round's
    # The crowd as the round began (its triage's view; None: not read). A ticket nobody in it
    # could take gets no offer and is not read for afresh: in a storm, with everyone busy,
    # each waiting ticket costs a pass over it rather than a read of everyone's standing.
    # Someone freed meanwhile by another process is found at the next round; an offer is
    # only ever made on a fresh read.
    pool: list[matching.Candidate] | None = None


def offer_next(
    *,
    db_session: Session,
    ticket: Ticket,
    now: datetime,
    rules: policy.DispatchPolicy,
    reads: RoundReads | None = None,
) -> Offer | None:
    """Offer the ticket to the best eligible technician of the current stage (moving on to
    staff, then to an operator, when nobody of a stage can take it). An escalated ticket waits
    for an operator, and meanwhile goes to whoever becomes eligible first (someone who let it
    lapse once is asked again after RETRY_AFTER; see not_to_ask)."""
    if TicketState(ticket.state) not in WAITING:
        return None
    again = ticket.state == TicketState.ESCALATED or not rules.cascade
    job = job_for(db_session=db_session, ticket=ticket, since=now - RETRY_AFTER if again else None)
    if job is None:
        _escalate(db_session, ticket, now, "the ticket has no location to dispatch to")
        ticket.next_dispatch_at = now + RECHECK_AFTER
        return None
    if ticket.dispatch_started_at is None:
        ticket.dispatch_started_at = now
    reads = reads or RoundReads()
    if reads.pool is not None and matching.nearest_eta(reads.pool, job, now) is None:
        _nobody_now(db_session, ticket, job, now, reads.pool, rules)
        return None
    ranked_all = candidates(
        db_session=db_session,
        rules=rules,
        answers=reads.answers,
        now=now,
        book=reads.profiles,
    )
    kinds = {c.id: c.kind for c in ranked_all}
    pressure = None
    if rules.weights.reserve:
        demand = reads.demand
        if demand is None:
            demand = recent_demand(db_session=db_session, now=now)
        pressure = matching.skill_pressure(demand, ranked_all)
    # Only those holding the job's skills can take it: the rest are scored only if the
    # explanation has room to list them.
    # Of those who hold them, the ineligible are ranked only when an offer is made, and only
    # as far as its explanation lists.
    able = [c for c in ranked_all if job.skills <= c.skills]
    sorted_out = matching.sort_out(able, job, now, rules.weights, pressure)
    ranked = sorted_out.eligible

    def offer(choice: matching.Scored, stage: policy.Stage) -> Offer:
        shortlist, unranked = sorted_out.ranked()
        lacking = [c for c in ranked_all if not job.skills <= c.skills]
        listed, left_out = matching.explain(
            shortlist, lacking, job, now, chosen=choice.technician_id, weights=rules.weights,
            pressure=pressure, unranked=unranked,
        )  # fmt: skip
        return _make_offer(db_session, ticket, choice, stage, (listed, left_out), now, rules)

    if not rules.cascade:
        choice = matching.best(ranked, None, kinds)
        if choice is not None:
            return offer(choice, policy.Stage.ANY)
        ticket.next_dispatch_at = look_again(now, ranked_all, job)
        return None
    stage = next_stage(db_session=db_session, ticket=ticket, now=now, rules=rules)
    while stage is not policy.Stage.OPERATOR:
        choice = matching.best(ranked, matching.Kind(stage.value), kinds)
        if choice is not None:
            return offer(choice, stage)
        stage = policy.Stage.STAFF if stage is policy.Stage.CROWD else policy.Stage.OPERATOR
    _escalate(db_session, ticket, now, lambda: _nobody_left(able, job, now))
    choice = matching.best(ranked, None, kinds)
    if choice is not None:
        return offer(choice, stage)
    ticket.next_dispatch_at = look_again(now, ranked_all, job)
    return None


def _nobody_now(
    db_session: Session,
    ticket: Ticket,
    job: matching.Job,
    now: datetime,
    pool: Sequence[matching.Candidate],
    rules: policy.DispatchPolicy,
) -> None:
    """Nobody can take the ticket now: past the crowd and staff stages (as offer_next finds
    when no one of theirs is eligible), it waits for an operator; it looks again when someone
    is freed, a shift starts or after RECHECK_AFTER."""
    if rules.cascade:
        _escalate(db_session, ticket, now, lambda: _nobody_left(pool, job, now))
    ticket.next_dispatch_at = look_again(now, pool, job)


def _nobody_left(pool: Sequence[matching.Candidate], job: matching.Job, now: datetime) -> str:
    """The reason an escalation gives, with who holds the skills and why they cannot."""
    return f"no eligible technician accepted or is left ({matching.why_nobody(pool, job, now)})"


def look_again(now: datetime, pool: Sequence[matching.Candidate], job: matching.Job) -> datetime:
    """When a ticket nobody can take now is looked at again: after RECHECK_AFTER, or when
    the shift of someone who could take it starts, if that is sooner (so a shift is used
    from its first second, not up to a recheck later)."""
    later = now + RECHECK_AFTER
    starts = matching.next_shift_start(pool, job)
    return min(later, starts) if starts is not None else later


def _make_offer(
    db_session: Session,
    ticket: Ticket,
    choice: matching.Scored,
    stage: policy.Stage,
    explanation: tuple[list[matching.Scored], dict[str, int]],
    now: datetime,
    rules: policy.DispatchPolicy,
) -> Offer:
    """The offer, with its explanation (matching.explain: the candidates listed, and those
    left out counted by why), told to the technician."""
    listed, left_out = explanation
    deadline = policy.offer_deadline(now, ticket.sla_arrive_by, choice.eta_min, rules)
    offer = Offer(
        ticket_id=ticket.id,
        technician_id=choice.technician_id,
        stage=stage.value,
        state=PENDING,
        offered_at=now,
        changed_at=now,
        deadline=deadline,
        reason="",
        eta_min=choice.eta_min,
        score=choice.score,
        candidates=[s.as_dict() for s in listed],
        left_out=left_out,
    )
    db_session.add(offer)
    db_session.flush()
    ticket.next_dispatch_at = None
    if ticket.state == TicketState.NEW:
        tickets.transition(
            db_session=db_session,
            ticket=ticket,
            to=TicketState.DISPATCHING,
            actor=DISPATCHER,
            reason="dispatch started",
            now=now,
        )
    tickets.record(
        db_session=db_session,
        ticket=ticket,
        actor=DISPATCHER,
        kind="offer",
        now=now,
        reason=f"offered to {choice.technician_id} ({stage.value}) until {deadline:%H:%M:%S}",
        data={"offer_id": offer.id, "score": round(choice.score, 4)},
    )
    _push(db_session, ticket, offer, now, rules.map_url)
    return offer


def _push(db_session: Session, ticket: Ticket, offer: Offer, now: datetime, map_url: str) -> None:
    """Tell the technician at once: their MQTT topic, and their webhook if they have one
    (both sent by the worker's relay after this transaction commits)."""
    notice = OfferNotice(
        offer_id=offer.id,
        ticket_id=ticket.id,
        title=ticket.title,
        category=ticket.category,
        priority=ticket.priority,
        deadline=offer.deadline,
        eta_min=round(offer.eta_min, 1),
        where=place(db_session=db_session, ticket=ticket, map_url=map_url),
        arrive_by=ticket.sla_arrive_by,
    )
    _tell(db_session, offer.technician_id, "offer", notice, now, until=offer.deadline)


def _tell(
    db_session: Session,
    technician_id: str,
    about: str,
    notice: BaseModel,
    now: datetime,
    until: datetime | None = None,
) -> None:
    """Queue a notice for the technician's topic, and their webhook if they have one; worth
    sending until `until` (an offer's deadline), or for a day."""
    expires_at = delivery.expiry(now, until)
    topic = technician_topic(technician_id, about)
    outbound.enqueue(
        db_session=db_session, topic=topic, message=notice, now=now, expires_at=expires_at
    )
    tech = get_technician(db_session=db_session, technician_id=technician_id)
    if tech.webhook_url:
        if not tech.webhook_secret and not tech.webhook_secret_version:
            tech.webhook_secret_version = 1  # every POST is signed, from the first one
        webhook = outbound.webhook_topic(technician_id, tech.webhook_url)
        outbound.enqueue(
            db_session=db_session, topic=webhook, message=notice, now=now, expires_at=expires_at
        )


def withdraw(
    *, db_session: Session, offer: Offer, now: datetime, reason: str, actor: str = DISPATCHER
) -> None:
    """Take a pending offer back and tell the technician (it no longer holds a slot of theirs,
    and a withdrawn offer never counts against their acceptance). actor: who took it back
    (the dispatcher, or the operator who assigned the ticket by hand or retired them)."""
    _close_offer(db_session, offer, WITHDRAWN, now, reason, actor=actor)
    notice = OfferWithdrawn(offer_id=offer.id, ticket_id=offer.ticket_id, reason=reason)
    _tell(db_session, offer.technician_id, "offer", notice, now, until=offer.deadline)


def call_off(
    *, db_session: Session, ticket: Ticket, held_by: str, now: datetime, reason: str
) -> None:
    """The job was taken from the technician who held it: tell them (audited)."""
    tickets.record(
        db_session=db_session,
        ticket=ticket,
        actor=DISPATCHER,
        kind=CALLED_OFF,
        now=now,
        reason=f"{held_by} told: {reason}",
        data={"technician_id": held_by},
    )
    notice = JobCalledOff(ticket_id=ticket.id, state=ticket.state, reason=reason)
    _tell(db_session, held_by, "job", notice, now)


def waits(ticket: Ticket) -> bool:
    """Still to be dispatched: waiting, and not merged into a site ticket."""
    return TicketState(ticket.state) in WAITING and ticket.parent_id is None


def loose_ends(*, db_session: Session, now: datetime) -> tuple[list[int], list[int]]:
    """Pending offers whose ticket no longer waits (cancelled, resolved, assigned by hand,
    merged), and tickets taken from whoever held them, not told yet: (offer ids, ticket ids).
    The changes are read back to the sweep's mark: however long every worker was down."""
    offers = db_session.scalars(
        select(Offer.id)
        .join(Ticket, Ticket.id == Offer.ticket_id)
        .where(
            Offer.state == PENDING,
            or_(Ticket.state.not_in([s.value for s in WAITING]), Ticket.parent_id.is_not(None)),
        )
    ).all()
    mark = db_session.get(SweepMark, LOOSE_ENDS)
    since = now - FIRST_SWEEP if mark is None else min(mark.at, now) - SWEEP_MARGIN
    return list(offers), _taken_away(db_session, since)


def mark_swept(*, db_session: Session, now: datetime) -> bool:
    """Move the loose-ends sweep's mark to now, when it is SWEEP_MARK_EVERY old (or missing):
    a write every few minutes, not every round. False: another worker just made it."""
    mark = db_session.get(SweepMark, LOOSE_ENDS)
    if mark is None:
        db_session.add(SweepMark(name=LOOSE_ENDS, at=now))
        return True
    if mark.at > now - SWEEP_MARK_EVERY:
        return False
    moved = db_session.execute(
        update(SweepMark)
        .where(SweepMark.name == LOOSE_ENDS, SweepMark.at == mark.at)
        .values(at=now)
    )
    return bool(getattr(moved, "rowcount", 0))


def _taken_away(
    db_session: Session, since: datetime | None, ticket_id: int | None = None
) -> list[int]:
    """Tickets a change took from the technician who held them (since then: None, ever) and
    nobody told them yet: cancelled, sent back to dispatch, or resolved by someone else (an
    operator, say). The change leaves a dispatched state (a ticket reopened after they
    resolved it still names them, but their job had ended), and the ticket is still in the
    state it led to. Read by the events' time index: a round's cost follows the tickets of
    the last minutes, not the history's size."""
    let_go = and_(
        TicketEvent.kind == "transition",
        TicketEvent.from_state.in_([s.value for s in DISPATCHED]),
        TicketEvent.to_state.in_(LET_GO),
    )
    query = select(
        TicketEvent.id, TicketEvent.ticket_id, TicketEvent.kind, TicketEvent.to_state,
        TicketEvent.actor,
    ).where(or_(let_go, TicketEvent.kind == CALLED_OFF))  # fmt: skip
    if since is not None:
        query = query.where(TicketEvent.at >= since)
    if ticket_id is not None:
        query = query.where(TicketEvent.ticket_id == ticket_id)
    changed: dict[int, tuple[str | None, str]] = {}
    # Sorted here: ordering in SQL would make the database scan by id instead of by time.
    for _id, ticket, kind, to_state, actor in sorted(db_session.execute(query)):
        if kind == CALLED_OFF:
            changed.pop(ticket, None)  # told already
        else:
            changed[ticket] = (to_state, actor)  # the latest such change
    if not changed:
        return []
    holders = db_session.execute(
        select(Ticket.id, Ticket.state, Ticket.technician_id).where(
            Ticket.id.in_(list(changed)), Ticket.parent_id.is_(None)
        )
    )
    return sorted(
        ticket
        for ticket, state, held_by in holders
        if held_by is not None
        and changed[ticket][0] == state
        and changed[ticket][1] != held_by  # not their own resolution
    )


def tidy_offer(*, db_session: Session, offer_id: int, now: datetime) -> bool:
    """Withdraw one pending offer whose ticket no longer waits (once, under the ticket's lock)."""
    offer = db_session.get(Offer, offer_id)
    if offer is None:
        return False
    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=offer.ticket_id, lock=True)
    db_session.refresh(offer)
    if offer.state != PENDING or waits(ticket):
        return False
    why = f"merged into ticket {ticket.parent_id}" if ticket.parent_id else ticket.state
    withdraw(db_session=db_session, offer=offer, now=now, reason=f"the ticket is {why} now")
    return True


def tidy_ticket(*, db_session: Session, ticket_id: int, now: datetime) -> bool:
    """Tell the technician a ticket was taken from them (once: under the ticket's lock, the
    notice is its own marker), and free them unless it was resolved (their rating stays)."""
    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=ticket_id, lock=True)
    held_by = ticket.technician_id
    if held_by is None or not _taken_away(db_session, None, ticket_id):
        return False
    change = tickets.events(db_session=db_session, ticket_id=ticket_id, kind="transition")[-1]
    if ticket.state != TicketState.RESOLVED:
        ticket.technician_id = None  # nobody holds it now
    reason = change.reason or f"{change.to_state} by {change.actor}"
    call_off(db_session=db_session, ticket=ticket, held_by=held_by, now=now, reason=reason)
    wake_waiting(db_session=db_session, now=now)  # they are free for the next one
    return True


def _escalate(
    db_session: Session, ticket: Ticket, now: datetime, reason: str | Callable[[], str]
) -> None:
    """Ask an operator to act (once: an escalated ticket looks again every minute, and only
    the move to escalated works its reason out)."""
    if ticket.state != TicketState.ESCALATED:
        tickets.transition(
            db_session=db_session,
            ticket=ticket,
            to=TicketState.ESCALATED,
            actor=DISPATCHER,
            reason=reason if isinstance(reason, str) else reason(),
            now=now,
        )
    return None


def due_offers(*, db_session: Session, now: datetime, limit: int = 100) -> Sequence[int]:
    """Pending offers whose deadline has passed."""
    return db_session.scalars(
        select(Offer.id)
        .where(Offer.state == PENDING, Offer.deadline <= now)
        .order_by(Offer.deadline)
        .limit(limit)
    ).all()


def waiting_tickets(
    *,
    db_session: Session,
    now: datetime | None = None,
    limit: int = 100,
    triage: bool = False,
    reads: RoundReads | None = None,
) -> Sequence[int]:
    """Open top-level tickets that need an offer: new, dispatching or escalated, without a
    pending one; oldest first, or with `triage` (policy.triage) the ones that can
    still be reached in time first (reads: the round's, for the technicians' profiles)."""
    now = now or utc_now()
    query = select(Ticket.id).where(
        _needs_offer(), or_(Ticket.next_dispatch_at.is_(None), Ticket.next_dispatch_at <= now)
    )
    ids = db_session.scalars(query.order_by(Ticket.opened_at).limit(limit)).all()
    if not triage or len(ids) < 2:
        return ids
    book = reads.profiles if reads is not None else None
    pool = candidates(db_session=db_session, now=now, book=book)
    if reads is not None:
        reads.pool = pool
    return policy.triage([_waiting(db_session, i, pool, now) for i in ids], now)


def _needs_offer() -> ColumnElement[bool]:
    """Open top-level tickets waiting for someone (new, dispatching or escalated), without a
    pending offer: those a round makes offers for, once they are due to be looked at."""
    pending = select(Offer.ticket_id).where(Offer.state == PENDING)
    return and_(
        Ticket.state.in_([s.value for s in WAITING]), _top_level(), Ticket.id.not_in(pending)
    )


def next_work_at(*, db_session: Session) -> datetime | None:
    """When a round next has something to do, unless something happens first (a ticket, an
    answer, a job moving on, a technician changed): the first deadline of a pending offer or
    the first time a waiting ticket is to be looked at again (None: neither). A ticket to be
    looked at in the next round counts as datetime.min."""
    looks = db_session.scalars(select(Ticket.next_dispatch_at).where(_needs_offer())).all()
    deadline = db_session.scalar(select(func.min(Offer.deadline)).where(Offer.state == PENDING))
    due = [datetime.min.replace(tzinfo=UTC) if at is None else at for at in looks]
    return min([*due, *([deadline] if deadline is not None else [])], default=None)


def _waiting(
    db_session: Session, ticket_id: int, pool: list[matching.Candidate], now: datetime
) -> policy.Waiting:
    """A waiting ticket with the ETA of the nearest technician who could take it now."""
    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=ticket_id)
    if ticket.sla_arrive_by - now > policy.TRIAGE_HORIZON:
        return policy.Waiting(ticket_id, ticket.sla_arrive_by, 0.0)  # reachable anyway
    job = job_for(db_session=db_session, ticket=ticket, since=now - RETRY_AFTER)
    if job is None:
        return policy.Waiting(ticket_id, ticket.sla_arrive_by, None)
    return policy.Waiting(ticket_id, ticket.sla_arrive_by, matching.nearest_eta(pool, job, now))


def run_round(
    *,
    sessions: sessionmaker[Session],
    now: Callable[[], datetime],
    rules: policy.DispatchPolicy,
    writing: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
    book: AnswerBook | None = None,
    profiles: ProfileBook | None = None,
) -> int:
    """One pass of the dispatcher: expire offers past their deadline (cascading to the next
    technician), then make offers for waiting tickets; each in its own transaction, so several
    processes can run it at once. Off while no technician is registered. How many moved.
    book: the process's AnswerBook, kept across its rounds (none: everyone's answers are read
    anew); profiles: its ProfileBook, likewise."""
    with sessions() as db:
        if not db.scalar(select(func.count()).select_from(Technician)):
            return 0
        swept = now()
        stale, dropped = loose_ends(db_session=db, now=swept)
        due = due_offers(db_session=db, now=now())
        reads = RoundReads(profiles=profiles or ProfileBook())
        waiting = waiting_tickets(db_session=db, now=now(), triage=rules.triage, reads=reads)
        if due or waiting:
            reads.answers = (
                book.read(db_session=db, rules=rules, now=now())
                if book is not None
                else outcomes(db_session=db, rules=rules)
            )
            if rules.weights.reserve:
                reads.demand = recent_demand(db_session=db, now=now())
    moved = 0
    for offer_id in stale:
        with writing(), transaction(sessions) as db:
            moved += tidy_offer(db_session=db, offer_id=offer_id, now=now())
    for ticket_id in dropped:
        with writing(), transaction(sessions) as db:
            moved += tidy_ticket(db_session=db, ticket_id=ticket_id, now=now())
    # Every loose end read is tidied: the next sweep may start from here. (Two workers making
    # the first mark at once: one wins, the other's is not needed.)
    with contextlib.suppress(IntegrityError), writing(), transaction(sessions) as db:
        mark_swept(db_session=db, now=swept)
    if stale or dropped or due:
        reads.pool = None  # the round frees people itself: every offer reads afresh
    for offer_id in due:
        with writing(), transaction(sessions) as db:
            moved += expire(db_session=db, offer_id=offer_id, now=now(), rules=rules, reads=reads)
    for ticket_id in waiting:
        with writing(), transaction(sessions) as db:
            moved += start(db_session=db, ticket_id=ticket_id, now=now(), rules=rules, reads=reads)
    return moved


def expire(
    *,
    db_session: Session,
    offer_id: int,
    now: datetime,
    rules: policy.DispatchPolicy,
    reads: RoundReads | None = None,
) -> bool:
    """Expire one due offer (once: the row is re-read under the ticket's lock) and cascade;
    the round's reads learn of this lapse."""
    offer = db_session.get(Offer, offer_id)
    if offer is None:
        return False
    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=offer.ticket_id, lock=True)
    db_session.refresh(offer)
    if offer.state != PENDING or offer.deadline > now:
        return False
    if not waits(ticket):  # not held against them: there was nothing left to take
        return tidy_offer(db_session=db_session, offer_id=offer_id, now=now)
    tech = get_technician(db_session=db_session, technician_id=offer.technician_id)
    off_duty = not on_shift(tech, offer.deadline)  # their hours ended while it was open
    reason = LAPSED_OFF_DUTY if off_duty else LAPSED
    _close_offer(db_session, offer, EXPIRED, now, reason)
    answers = reads.answers if reads else None
    if answers is not None and _held(offer.offered_at, offer.deadline, reason, rules):
        lapsed = answers.setdefault(offer.technician_id, [])
        lapsed.append(False)
        del lapsed[: -rules.acceptance_window]
    _check_policy(db_session, offer.technician_id, now, rules)
    offer_next(db_session=db_session, ticket=ticket, now=now, rules=rules, reads=reads)
    return True


def start(
    *,
    db_session: Session,
    ticket_id: int,
    now: datetime,
    rules: policy.DispatchPolicy,
    reads: RoundReads | None = None,
) -> bool:
    """Make the next offer for a waiting ticket (no-op when someone else just did)."""
    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=ticket_id, lock=True)
    if pending_offer(db_session=db_session, ticket_id=ticket_id) is not None:
        return False
    offer = offer_next(db_session=db_session, ticket=ticket, now=now, rules=rules, reads=reads)
    return offer is not None


def _close_offer(
    db_session: Session,
    offer: Offer,
    state: str,
    now: datetime,
    reason: str,
    *,
    actor: str = DISPATCHER,
) -> None:
    """Declined (by the technician), expired or withdrawn (by the actor), audited: the slot
    the offer held is free again, so tickets waiting for anyone look again at the next
    round."""
    offer.state, offer.answered_at, offer.reason, offer.changed_at = state, now, reason, now
    wake_waiting(db_session=db_session, now=now)
    ticket = db_session.get(Ticket, offer.ticket_id)
    assert ticket is not None
    tickets.record(
        db_session=db_session,
        ticket=ticket,
        actor=offer.technician_id if state == DECLINED else actor,
        kind=f"offer_{state}",
        now=now,
        reason=reason,
        data={"offer_id": offer.id},
    )


def _check_policy(
    db_session: Session, technician_id: str, now: datetime, rules: policy.DispatchPolicy
) -> None:
    """Pause a crowd technician who falls below policy."""
    tech = get_technician(db_session=db_session, technician_id=technician_id)
    if tech.kind != matching.Kind.CROWD or tech.paused or not rules.pause:
        return
    outcomes = recent_outcomes(db_session=db_session, technician_id=tech.id, rules=rules)
    why = policy.below_policy(tech.rating_sum, tech.rating_count, outcomes, rules)
    if why:
        tech.paused, tech.paused_reason = True, why
        _record(db_session, tech.id, "paused", DISPATCHER, now, why)
        _LOGGER.info("technician %s paused: %s", tech.id, why)


def _record(
    db_session: Session, technician_id: str, kind: str, actor: str, now: datetime, reason: str
) -> None:
    """An entry of the technician's own audit trail."""
    db_session.add(
        TechnicianEvent(technician_id=technician_id, at=now, actor=actor, kind=kind, reason=reason)
    )


def changes(*, db_session: Session, technician_id: str, limit: int) -> Sequence[TechnicianEvent]:
    """The technician's audit trail, newest first."""
    return db_session.scalars(
        select(TechnicianEvent)
        .where(TechnicianEvent.technician_id == technician_id)
        .order_by(TechnicianEvent.at.desc(), TechnicianEvent.id.desc())
        .limit(limit)
    ).all()


# -- the technician's side ----------------------------------------------------------------


def own_offer(*, db_session: Session, offer_id: int, caller: Principal) -> Offer:
    """An offer the caller may act on: their own (staff may see any)."""
    offer = db_session.get(Offer, offer_id)
    if offer is None or (not caller.is_staff() and offer.technician_id != caller.technician_id):
        raise NotFound(f"offer {offer_id} does not exist")  # never confirm another's offer
    return offer


def accept(
    *, db_session: Session, offer_id: int, caller: Principal, now: datetime, eta_min: float | None
) -> Ticket:
    """The technician takes the job: the ticket is assigned to them, the device is told."""
    offer = own_offer(db_session=db_session, offer_id=offer_id, caller=caller)
    # Their row first: two of their offers accepted at once count each other's job, and a
    # retirement under way finishes first.
    tech = get_technician(db_session=db_session, technician_id=offer.technician_id, lock=True)
    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=offer.ticket_id, lock=True)
    db_session.refresh(offer)
    if offer.state != PENDING or offer.deadline < now:
        status = offer.state if offer.state != PENDING else "past its deadline"
        raise Conflict(f"offer {offer_id} is {status}: it can no longer be accepted")
    if not waits(ticket):
        raise Conflict(
            f"ticket {ticket.id} is {ticket.state}: the offer is withdrawn, there is no job to take"
        )
    if active_jobs(db_session=db_session).get(tech.id, 0) >= tech.capacity:
        raise Conflict(f"{tech.id} is at capacity ({tech.capacity} jobs): finish one first")
    offer.state, offer.answered_at, offer.changed_at = ACCEPTED, now, now
    eta = round(eta_min if eta_min is not None else offer.eta_min)
    _assign(
        db_session, ticket, offer.technician_id, now, f"accepted offer {offer.id}", eta,
        actor=offer.technician_id,
    )  # fmt: skip
    return ticket


def _assign(
    db_session: Session,
    ticket: Ticket,
    technician_id: str,
    now: datetime,
    reason: str,
    eta: int,
    *,
    actor: str,
) -> None:
    """Give the ticket to the technician; `actor` is who decided: the technician who accepted
    an offer, or the operator who assigned by hand."""
    ticket.technician_id = technician_id
    tech = get_technician(db_session=db_session, technician_id=technician_id)
    tech.last_job_at = now
    tickets.transition(
        db_session=db_session,
        ticket=ticket,
        to=TicketState.ASSIGNED,
        actor=actor,
        reason=reason,
        now=now,
        eta_minutes=eta,
        data={"technician_id": technician_id},
        assigned_to=technician_id,
    )


def decline(
    *,
    db_session: Session,
    offer_id: int,
    caller: Principal,
    reason: str,
    now: datetime,
    rules: policy.DispatchPolicy,
) -> None:
    """The technician says no (with a reason); the next candidate gets the offer at once."""
    offer = own_offer(db_session=db_session, offer_id=offer_id, caller=caller)
    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=offer.ticket_id, lock=True)
    db_session.refresh(offer)
    if offer.state != PENDING:
        raise Conflict(f"offer {offer_id} is {offer.state}: only a pending offer can be declined")
    _close_offer(db_session, offer, DECLINED, now, reason or "declined")
    _check_policy(db_session, offer.technician_id, now, rules)
    offer_next(db_session=db_session, ticket=ticket, now=now, rules=rules)


def own_ticket(*, db_session: Session, ticket_id: int, caller: Principal) -> Ticket:
    """A ticket assigned to the calling technician (staff: any ticket)."""
    ticket = tickets.get(db_session=db_session, ticket_id=ticket_id, lock=True)
    if ticket is None or (not caller.is_staff() and ticket.technician_id != caller.technician_id):
        raise NotFound(f"ticket {ticket_id} does not exist")
    return ticket


def progress(
    *,
    db_session: Session,
    ticket: Ticket,
    to: TicketState,
    actor: str,
    now: datetime,
    reason: str = "",
    eta_min: int | None = None,
) -> None:
    """En route (the ETA they give in the audit trail's reason too), on site or resolved (their
    notes as the reason), by the technician who has the job."""
    if eta_min is not None:
        reason = f"about {eta_min} min away" + (f": {reason}" if reason else "")
    if to is TicketState.ON_SITE:
        ticket.on_site_at = ticket.on_site_at or now
    if to is TicketState.RESOLVED:
        ticket.resolution = "fixed"
    tickets.transition(
        db_session=db_session,
        ticket=ticket,
        to=to,
        actor=actor,
        reason=reason,
        now=now,
        eta_minutes=eta_min,
    )
    if to is TicketState.RESOLVED:
        wake_waiting(db_session=db_session, now=now)  # someone is free again


def set_availability(
    *, db_session: Session, technician_id: str, change: AvailabilityIn, now: datetime
) -> Technician:
    """The technician's day-to-day changes. Going available, or new hours or time off (a
    shift may have begun), has waiting tickets look for someone at the next round."""
    tech = get_technician(db_session=db_session, technician_id=technician_id)
    sooner = bool(change.available and not tech.available)
    if change.available is not None:
        tech.available = change.available
    if change.lat is not None and change.lon is not None:
        tech.lat, tech.lon, tech.position_at = change.lat, change.lon, now
    if change.shifts is not None:
        tech.shifts, sooner = list(change.shifts), True
    if change.time_off is not None:
        tech.time_off, sooner = shifts.not_over(change.time_off, now), True
    if change.timezone is not None:
        tech.timezone, sooner = change.timezone, True
    if sooner:
        wake_waiting(db_session=db_session, now=now)
    return tech


def wake_waiting(*, db_session: Session, now: datetime) -> None:
    """A technician became free (job done or given back, back on shift, pause lifted): tickets
    that were told to look again later look again at the next round."""
    db_session.execute(
        update(Ticket)
        .where(
            Ticket.state.in_([s.value for s in WAITING]),
            Ticket.next_dispatch_at > now,
        )
        .values(next_dispatch_at=now)
    )


def give_back(
    *,
    db_session: Session,
    ticket: Ticket,
    actor: str,
    now: datetime,
    reason: str,
    extra_skills: Sequence[str],
    rules: policy.DispatchPolicy,
    known_skills: Sequence[str] | None = None,
) -> None:
    """The technician drops the job or cannot fix it: re-dispatched to someone else (with the
    extra skills it turned out to need). known_skills: when given, a skill not among them is
    refused (a typo would leave the ticket to nobody)."""
    if TicketState(ticket.state) not in DISPATCHED:
        raise Conflict(
            f"ticket {ticket.id} is {ticket.state}: only a dispatched job can be given back"
        )
    unknown = sorted(set(extra_skills) - set(known_skills)) if known_skills is not None else []
    if unknown:
        raise Invalid(
            f"no technician or category has the skill {', '.join(unknown)}: name one of "
            f"{', '.join(known_skills or [])} (GET /api/skills)"
        )
    previous = ticket.technician_id
    accepted = db_session.scalars(
        select(Offer).where(
            Offer.ticket_id == ticket.id, Offer.technician_id == previous, Offer.state == ACCEPTED
        )
    ).all()
    for offer in accepted:
        # No longer counted as an accept (AnswerBook re-reads the technician's answers).
        offer.state, offer.reason, offer.changed_at = WITHDRAWN, reason, now
    if extra_skills:
        ticket.skills = sorted(set(ticket.skills) | set(extra_skills))
    ticket.technician_id, ticket.dispatch_started_at = None, now
    tickets.transition(
        db_session=db_session,
        ticket=ticket,
        to=TicketState.DISPATCHING,
        actor=actor,
        reason=f"given back: {reason}",
        now=now,
        data={"extra_skills": list(extra_skills)},
    )
    offer_next(db_session=db_session, ticket=ticket, now=now, rules=rules)
    wake_waiting(db_session=db_session, now=now)  # the one who gave it back is free


def known_skills(*, db_session: Session, taxonomy: Taxonomy) -> list[str]:
    """Every skill crowdfix knows of: those the taxonomy's categories need, and those the
    technicians (not retired) hold."""
    known = {skill for category in taxonomy.categories.values() for skill in category.skills}
    for skills in db_session.scalars(
        select(Technician.skills).where(Technician.retired_at.is_(None))
    ):
        known.update(skills or [])
    return sorted(known)


# -- the operator's side ------------------------------------------------------------------


def assign(
    *,
    db_session: Session,
    ticket_id: int,
    technician_id: str,
    caller: Principal,
    now: datetime,
    reason: str,
    map_url: str = "",
) -> Ticket:
    """An operator assigns (or reassigns) a ticket by hand, overriding the dispatcher (the
    technician is told, with a link to a map of the place made from map_url)."""
    tech = get_technician(db_session=db_session, technician_id=technician_id, lock=True)
    if tech.retired_at is not None:
        raise Conflict(f"technician {technician_id} is retired: reinstate them to assign them")
    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=ticket_id, lock=True)
    if TicketState(ticket.state) not in OPEN:
        raise Conflict(f"ticket {ticket_id} is {ticket.state}: it cannot be assigned")
    pending = pending_offer(db_session=db_session, ticket_id=ticket_id)
    if pending is not None:
        withdraw(
            db_session=db_session,
            offer=pending,
            now=now,
            reason=f"assigned by {caller.username}",
            actor=caller.username,
        )
    dispatched = TicketState(ticket.state) in DISPATCHED
    previous = ticket.technician_id if dispatched else None
    if dispatched:
        tickets.transition(
            db_session=db_session,
            ticket=ticket,
            to=TicketState.DISPATCHING,
            actor=caller.username,
            reason=f"reassigned: {reason}",
            now=now,
        )
    job = job_for(db_session=db_session, ticket=ticket)
    eta = (
        matching.eta_min(matching.distance_km((tech.home_lat, tech.home_lon), job.location))
        if job
        else 30.0
    )
    how = f"assigned by {caller.username}" + (f": {reason}" if reason else "")
    _assign(db_session, ticket, tech.id, now, how, round(eta), actor=caller.username)
    notice = JobAssigned(
        ticket_id=ticket.id, title=ticket.title, category=ticket.category,
        priority=ticket.priority, reason=how, arrive_by=ticket.sla_arrive_by,
        where=place(db_session=db_session, ticket=ticket, map_url=map_url),
    )  # fmt: skip
    _tell(db_session, tech.id, "job", notice, now)
    if previous is not None and previous != tech.id:
        why = f"reassigned to {tech.id} by {caller.username}" + (f": {reason}" if reason else "")
        call_off(db_session=db_session, ticket=ticket, held_by=previous, now=now, reason=why)
    return ticket


def rate(
    *,
    db_session: Session,
    ticket_id: int,
    stars: int,
    rated_by: str,
    now: datetime,
    rules: policy.DispatchPolicy,
    comment: str = "",
) -> Ticket:
    """Rate a resolved ticket's technician (once: an operator or the requester); the
    technician's average and the policy follow."""
    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=ticket_id, lock=True)
    if (
        ticket.state not in (TicketState.RESOLVED, TicketState.CLOSED)
        or ticket.technician_id is None
    ):
        raise Conflict(
            f"ticket {ticket_id} is {ticket.state}: only a resolved, dispatched ticket can be rated"
        )
    if ticket.rating is not None:
        raise Conflict(
            f"ticket {ticket_id} was rated already ({ticket.rating} by {ticket.rated_by})"
        )
    tech = get_technician(db_session=db_session, technician_id=ticket.technician_id)
    ticket.rating, ticket.rated_by = stars, rated_by
    tech.rating_sum += stars
    tech.rating_count += 1
    tickets.record(
        db_session=db_session,
        ticket=ticket,
        actor=rated_by,
        kind="rating",
        now=now,
        reason=f"{stars}/5 for {tech.id}" + (f": {comment}" if comment else ""),
    )
    _check_policy(db_session, tech.id, now, rules)
    return ticket


def review(
    *, db_session: Session, technician_id: str, caller: Principal, note: str, now: datetime
) -> Technician:
    """An operator reviewed a paused technician: offers resume."""
    tech = get_technician(db_session=db_session, technician_id=technician_id)
    if not tech.paused:
        raise Conflict(f"technician {technician_id} is not paused")
    tech.paused, tech.paused_reason = False, f"reviewed by {caller.username}: {note}"
    _record(db_session, tech.id, "reviewed", caller.username, now, note)
    wake_waiting(db_session=db_session, now=now)
    return tech


def retire(
    *,
    db_session: Session,
    technician_id: str,
    caller: Principal,
    reason: str,
    now: datetime,
    rules: policy.DispatchPolicy,
) -> Technician:
    """The technician leaves the crowd (or the staff): no offers from now on; their pending
    offers are withdrawn and their open jobs go back to dispatch (they are told of both); their
    accounts can no longer sign in and their tokens stop. Their history, ratings and the
    explanations of past offers stay."""
    tech = get_technician(db_session=db_session, technician_id=technician_id, lock=True)
    if tech.retired_at is not None:
        raise Conflict(
            f"technician {technician_id} was retired on {tech.retired_at:%Y-%m-%d %H:%M} UTC "
            f"({tech.retired_reason}): reinstate them first to retire them anew"
        )
    tech.retired_at, tech.retired_reason = now, f"{caller.username}: {reason}"
    _record(db_session, tech.id, "retired", caller.username, now, reason)
    why = f"the technician was retired by {caller.username}: {reason}"
    for offer in db_session.scalars(
        select(Offer).where(Offer.technician_id == technician_id, Offer.state == PENDING)
    ).all():
        tickets.get_or_raise(db_session=db_session, ticket_id=offer.ticket_id, lock=True)
        db_session.refresh(offer)
        if offer.state == PENDING:
            withdraw(db_session=db_session, offer=offer, now=now, reason=why, actor=caller.username)
    for ticket_id in db_session.scalars(
        select(Ticket.id).where(
            Ticket.technician_id == technician_id,
            Ticket.state.in_([s.value for s in DISPATCHED]),
        )
    ).all():
        ticket = tickets.get_or_raise(db_session=db_session, ticket_id=ticket_id, lock=True)
        give_back(
            db_session=db_session, ticket=ticket, actor=caller.username, now=now, reason=why,
            extra_skills=(), rules=rules,
        )  # fmt: skip
        call_off(db_session=db_session, ticket=ticket, held_by=technician_id, now=now, reason=why)
    for user in _accounts_of(db_session, technician_id):
        accounts.set_active(db_session=db_session, user=user, active=False, now=now)
    return tech


def reinstate(
    *, db_session: Session, technician_id: str, caller: Principal, now: datetime
) -> Technician:
    """A retired technician returns: offers resume (as their toggle and hours allow) and their
    accounts may sign in again (with their password, or a new token: the old ones stay
    revoked)."""
    tech = get_technician(db_session=db_session, technician_id=technician_id, lock=True)
    if tech.retired_at is None:
        raise Conflict(f"technician {technician_id} is not retired")
    _record(db_session, tech.id, "reinstated", caller.username, now, "")
    tech.retired_at, tech.retired_reason = None, ""
    for user in _accounts_of(db_session, technician_id):
        accounts.set_active(db_session=db_session, user=user, active=True, now=now)
    wake_waiting(db_session=db_session, now=now)
    return tech


def _accounts_of(db_session: Session, technician_id: str) -> Sequence[User]:
    return db_session.scalars(select(User).where(User.technician_id == technician_id)).all()


def jobs_held(
    *, db_session: Session, technician_id: str, since: datetime | None = None
) -> tuple[list[history.HeldJob], dict[int, Ticket]]:
    """Every job the technician held (history.jobs_held, from the tickets' audit trails), or
    those assigned to them since then, and those tickets by id."""
    held = select(TicketEvent.ticket_id).where(
        TicketEvent.to_state == TicketState.ASSIGNED.value,
        TicketEvent.assigned_to == technician_id,
        TicketEvent.kind == "transition",
    )
    if since is not None:
        held = held.where(TicketEvent.at >= since)
    rows = db_session.execute(
        select(
            TicketEvent.ticket_id,
            TicketEvent.at,
            TicketEvent.actor,
            TicketEvent.to_state,
            TicketEvent.reason,
            TicketEvent.assigned_to,
        )
        .where(TicketEvent.ticket_id.in_(held), TicketEvent.kind == "transition")
        .order_by(TicketEvent.at, TicketEvent.id)
    )
    changes = [
        history.Change(ticket_id, at, actor, TicketState(to_state), reason, assigned_to)
        for ticket_id, at, actor, to_state, reason, assigned_to in rows
        if to_state is not None  # every transition has one
    ]
    # Top-level tickets only: a child follows its parent's changes, it is not a job of its own.
    held_tickets = db_session.scalars(
        select(Ticket).where(Ticket.id.in_(held), Ticket.parent_id.is_(None))
    )
    by_id = {t.id: t for t in held_tickets}
    jobs = history.jobs_held(technician_id, [c for c in changes if c.ticket_id in by_id])
    return [j for j in jobs if since is None or j.assigned_at >= since], by_id


def offer_counts(
    *, db_session: Session, technician_id: str, since: datetime | None = None
) -> Counter[str]:
    """Every offer made to the technician (or since then), counted by state."""
    query = select(Offer.state, func.count()).where(Offer.technician_id == technician_id)
    if since is not None:
        query = query.where(Offer.offered_at >= since)
    rows = db_session.execute(query.group_by(Offer.state))
    return Counter({state: count for state, count in rows})


def decline_reasons(
    *, db_session: Session, technician_id: str, since: datetime | None = None, top: int = 10
) -> dict[str, int]:
    """Why the technician said no (or since then): each reason given with a decline and how
    often, the commonest first (the phone page offers three to tap, so they repeat)."""
    query = select(Offer.reason, func.count()).where(
        Offer.technician_id == technician_id, Offer.state == DECLINED
    )
    if since is not None:
        query = query.where(Offer.offered_at >= since)
    counts: Counter[str] = Counter()
    for reason, count in db_session.execute(query.group_by(Offer.reason)):
        counts[reason.strip() or "no reason given"] += count
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top])


@dataclass(frozen=True)
class Board:
    """The dispatch situation right now, for monitoring."""

    waiting: dict[str, int]  # open tickets nobody holds, by state
    pending_offers: int
    past_target: int  # open, on-site target passed, nobody there
    at_risk: int  # open, nobody there yet, its on-site clock warning (target not passed yet)
    technicians: dict[str, int]  # available, paused, on_leave, off, retired
    certifications: dict[str, int]  # of technicians not retired: expiring (soon), expired


def _standing(tech: Technician, now: datetime) -> str:
    """Paused by policy; else on time off (whatever the toggle says: that is why they are
    off); else available (toggled on, on shift) or off. Not when that next changes: a
    scrape of /metrics counts thousands."""
    hours = working_hours(tech)
    if tech.paused:
        return "paused"
    if hours is not None and hours.on_leave(now):
        return "on_leave"
    working = tech.available and (hours is None or hours.on_shift(now))
    return "available" if working else "off"


def board(*, db_session: Session, now: datetime, rules: policy.DispatchPolicy) -> Board:
    """Counted in the database (a few queries; the open tickets' on-site clocks by the
    rules' warning share)."""
    waiting = dict.fromkeys((s.value for s in WAITING), 0)
    for state, count in db_session.execute(
        select(Ticket.state, func.count())
        .where(Ticket.state.in_(list(waiting)), _top_level())
        .group_by(Ticket.state)
    ):
        waiting[state] = count
    # Open tickets nobody has reached: each one's on-site clock, breached or warning.
    clocks = [
        policy.sla_clock("arrive", opened, due, None, now, rules)
        for opened, due in db_session.execute(
            select(Ticket.opened_at, Ticket.sla_arrive_by).where(unreached())
        )
    ]
    technicians = {"available": 0, "paused": 0, "on_leave": 0, "off": 0, "retired": 0}
    certifications = {"expiring": 0, "expired": 0}
    for tech in db_session.scalars(select(Technician)):  # working hours: in their time zone
        if tech.retired_at:
            technicians["retired"] += 1
            continue
        technicians[_standing(tech, now)] += 1
        for _skill, until in certifications_due(tech, now):
            certifications["expired" if until <= now else "expiring"] += 1
    return Board(
        waiting=waiting,
        pending_offers=db_session.scalar(select(func.count()).where(Offer.state == PENDING)) or 0,
        past_target=sum(c.breached for c in clocks),
        at_risk=sum(c.warning for c in clocks),
        technicians=technicians,
        certifications=certifications,
    )


def webhook_health(*, db_session: Session, tech: Technician) -> outbound.WebhookHealth | None:
    """How POSTs to the technician's webhook are going (None: they have no webhook)."""
    if not tech.webhook_url:
        return None
    topic = outbound.webhook_topic(tech.id, tech.webhook_url)
    return outbound.webhook_health(db_session=db_session, topic=topic)


def rotate_webhook_secret(*, db_session: Session, technician_id: str, key: bytes) -> str:
    """A new secret for the technician's webhook signatures (the old one stops at once): the
    next version, derived from the deployment's key; nothing of it is stored."""
    tech = get_technician(db_session=db_session, technician_id=technician_id)
    tech.webhook_secret = None  # one stored from before secrets were derived: gone
    tech.webhook_secret_version += 1
    return signing.derive(key, tech.id, tech.webhook_secret_version)


def webhook_secret(tech: Technician, key: bytes) -> str | None:
    """What signs the technician's webhook POSTs (None: no secret made yet)."""
    if tech.webhook_secret:
        return tech.webhook_secret
    if not tech.webhook_secret_version:
        return None
    return signing.derive(key, tech.id, tech.webhook_secret_version)


def forbid_foreign_technician(caller: Principal, technician_id: str) -> None:
    """A technician acts only for themselves."""
    if not caller.is_staff() and caller.technician_id != technician_id:
        raise Forbidden("a technician may only act for themselves")


def sla(ticket: Ticket, now: datetime, rules: policy.DispatchPolicy) -> list[policy.SlaClock]:
    """The ticket's clocks: accepted, on site, resolved."""
    start = ticket.opened_at
    return [
        policy.sla_clock("accept", start, ticket.sla_accept_by, ticket.dispatched_at, now, rules),
        policy.sla_clock("arrive", start, ticket.sla_arrive_by, ticket.on_site_at, now, rules),
        policy.sla_clock("resolve", start, ticket.sla_resolve_by, ticket.resolved_at, now, rules),
    ]
