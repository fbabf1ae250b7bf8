"""Matching, pure: who may take a job, who should get the offer first, and why.

No database, no clock: technicians and the job come in as plain values with `now`, and the
ranking comes out with every candidate's score broken down, so an operator can see why this
technician and not another.

Travel time: the great-circle distance times a detour factor for streets (1.35, typical for
European cities), at an average urban speed (25 km/h door to door, parking included), plus a
fixed set-off time (5 min). Crude, but honest about what it is, and monotonic in distance,
which is all the ranking needs; a routing service can replace `eta_min` later.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

EARTH_RADIUS_KM = 6371.0
# A degree of latitude: two places are at least their latitudes' difference times this apart.
KM_PER_DEGREE_LAT = math.pi * EARTH_RADIUS_KM / 180
DETOUR_FACTOR = 1.35
URBAN_SPEED_KMH = 25.0
SET_OFF_MIN = 5.0
# A technician's shared position is trusted for this long; then their home base is used.
POSITION_FRESH = timedelta(minutes=15)

# A certification this close to its expiry is flagged to the technician and the operators.
CERT_WARNING = timedelta(days=30)

# An offer's explanation lists this many candidates at most, best first (the chosen one
# always); the others are counted by why they were not chosen.
EXPLAIN_LIMIT = 30
LEFT_OUT_ELIGIBLE = "eligible but scored lower"
LACKS_SKILLS = "lack the skills"
OFF_SHIFT = "off shift"
ON_LEAVE = "on leave"  # off shift for time off, not the weekly hours

# Rating smoothing: a Bayesian average that starts every technician at the prior with the
# weight of this many reviews, so one 5-star (or 1-star) review does not decide the ranking.
RATING_PRIOR = 4.5
RATING_PRIOR_WEIGHT = 5
ACCEPTANCE_PRIOR = 0.85
ACCEPTANCE_PRIOR_WEIGHT = 5
# Skill pressure (demand share over supply share) is capped: a skill nobody available holds
# would otherwise count infinitely.
PRESSURE_CAP = 5.0


class Kind(StrEnum):
    """Crowd technicians are freelancers who accept offers; staff are employees."""

    CROWD = "crowd"
    STAFF = "staff"


@dataclass(frozen=True)
class Weights:
    """How much each part of the score counts (each part is normalised to 0..1)."""

    eta: float = 0.45
    rating: float = 0.2
    acceptance: float = 0.15
    load: float = 0.1
    fairness: float = 0.1
    # Keep specialists free: less for a technician whose other skills are in short supply.
    reserve: float = 0.15
    # Minutes an offer that is declined or lapses costs the ticket (0: rank by ETA alone).
    miss_penalty_min: float = 5.0


@dataclass(frozen=True)
class Candidate:
    """What matching needs to know about one technician."""

    id: str
    kind: Kind
    skills: frozenset[str]
    home: tuple[float, float]
    radius_km: float
    available: bool
    capacity: int
    active_jobs: int
    rating_sum: float = 0.0
    rating_count: int = 0
    offers_recent: int = 0  # answered or expired offers in the acceptance window
    accepted_recent: int = 0
    paused: bool = False
    position: tuple[float, float] | None = None
    position_at: datetime | None = None
    certifications: dict[str, datetime] = field(default_factory=dict)  # skill → expiry
    last_job_at: datetime | None = None  # for fairness: who waited longest
    off_shift: bool = False  # outside their working hours now (available: the manual toggle)
    on_leave: bool = False  # off shift for time off (a day off), not the weekly hours
    shift_starts_at: datetime | None = None  # off shift: when their next shift starts

    @property
    def on_duty(self) -> bool:
        """Toggled available, within their working hours, and not paused."""
        return self.available and not self.off_shift and not self.paused


@dataclass(frozen=True)
class Job:
    """What matching needs to know about the ticket."""

    ticket_id: int
    skills: frozenset[str]
    location: tuple[float, float]
    excluded: frozenset[str] = frozenset()  # declined, expired or dropped this ticket before


@dataclass(frozen=True)
class Scored:
    """One candidate's verdict: eligible or why not, and the score's parts."""

    technician_id: str
    eligible: bool
    reasons: tuple[str, ...]
    distance_km: float
    eta_min: float
    score: float
    parts: dict[str, float]
    why_not: str = ""  # the kind of the first reason (explain counts by it); "": eligible

    def as_dict(self) -> dict[str, object]:
        """For the offer's stored explanation."""
        return {
            "technician_id": self.technician_id,
            "eligible": self.eligible,
            "reasons": list(self.reasons),
            "distance_km": round(self.distance_km, 2),
            "eta_min": round(self.eta_min, 1),
            "score": round(self.score, 4),
            "parts": {k: round(v, 4) for k, v in self.parts.items()},
        }


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def eta_min(km: float) -> float:
    """Minutes to get there: street detour at urban speed, plus setting off."""
    return SET_OFF_MIN + km * DETOUR_FACTOR / URBAN_SPEED_KMH * 60


def where(tech: Candidate, now: datetime) -> tuple[float, float]:
    """Where the technician is now: a fresh shared position, else home."""
    if tech.position and tech.position_at and now - tech.position_at <= POSITION_FRESH:
        return tech.position
    return tech.home


def smoothed_rating(tech: Candidate) -> float:
    """Bayesian average of the ratings (1..5, whatever the counts say)."""
    average = (RATING_PRIOR * RATING_PRIOR_WEIGHT + tech.rating_sum) / (
        RATING_PRIOR_WEIGHT + tech.rating_count
    )
    return min(5.0, max(1.0, average))


def smoothed_acceptance(tech: Candidate) -> float:
    """Bayesian acceptance rate over the recent window (0..1, whatever the counts say)."""
    rate = (ACCEPTANCE_PRIOR * ACCEPTANCE_PRIOR_WEIGHT + tech.accepted_recent) / (
        ACCEPTANCE_PRIOR_WEIGHT + tech.offers_recent
    )
    return min(1.0, max(0.0, rate))


def expected_min(tech: Candidate, eta: float, weights: Weights) -> float:
    """The ETA plus what asking this technician is likely to cost if they do not take it
    (the chance they say no, from their smoothed acceptance rate, times what a no costs)."""
    return eta + (1 - smoothed_acceptance(tech)) * weights.miss_penalty_min


def _faults(tech: Candidate, job: Job, now: datetime, km: float) -> list[tuple[str, str]]:
    """Every reason as (what kind of reason, for counting; the reason itself)."""
    reasons = []
    missing = sorted(job.skills - tech.skills)
    if missing:
        reasons.append((LACKS_SKILLS, f"lacks skills: {', '.join(missing)}"))
    expired = sorted(
        s for s in job.skills if s in tech.certifications and tech.certifications[s] < now
    )
    if expired:
        reasons.append(
            ("with an expired certification", f"certification expired: {', '.join(expired)}")
        )
    if km > tech.radius_km:
        far = f"{km:.1f} km away, beyond the {tech.radius_km:g} km service radius"
        reasons.append(("beyond their service radius", far))
    if not tech.available:
        reasons.append(("not available", "not available"))
    elif tech.off_shift:
        reason = ON_LEAVE if tech.on_leave else OFF_SHIFT
        reasons.append((reason, reason))
    if tech.active_jobs >= tech.capacity:
        busy = f"at capacity ({tech.active_jobs}/{tech.capacity} jobs)"
        reasons.append(("at capacity", busy))
    if tech.paused:
        reasons.append(("paused by policy", "paused by policy until reviewed"))
    if tech.id in job.excluded:
        declined = "already declined or missed this ticket"
        reasons.append(("declined or missed this ticket", declined))
    return reasons


def _fault_kind(tech: Candidate, job: Job, now: datetime, beyond: bool) -> str:
    """The kind of the first reason _faults would give ("": eligible), without writing any
    reason out; beyond: the job is beyond their service radius. The same rules in the same
    order, written out plainly: it runs for every technician of a crowd for every waiting
    ticket (a table of rules both read was 2.7 times slower in a storm), and the shortlist
    property test holds the two to the same verdicts."""
    if not job.skills <= tech.skills:
        return LACKS_SKILLS
    if any(s in tech.certifications and tech.certifications[s] < now for s in job.skills):
        return "with an expired certification"
    if beyond:
        return "beyond their service radius"
    if not tech.available:
        return "not available"
    if tech.off_shift:
        return ON_LEAVE if tech.on_leave else OFF_SHIFT
    if tech.active_jobs >= tech.capacity:
        return "at capacity"
    if tech.paused:
        return "paused by policy"
    if tech.id in job.excluded:
        return "declined or missed this ticket"
    return ""


def km_at_least(tech: Candidate, job: Job, now: datetime) -> float:
    """A lower bound of the distance to the job, from the latitudes alone: no trigonometry,
    so a crowd of thousands spread over a country is sorted out cheaply."""
    return abs(where(tech, now)[0] - job.location[0]) * KM_PER_DEGREE_LAT


def _surely_beyond(km_floor: float, tech: Candidate) -> bool:
    """Beyond the service radius whatever the longitude (a margin for rounding)."""
    return km_floor > tech.radius_km * (1 + 1e-9) + 1e-9


def certifications_due(
    certifications: Mapping[str, datetime], now: datetime, within: timedelta = CERT_WARNING
) -> list[tuple[str, datetime]]:
    """The certifications that have expired (no jobs needing that skill any more) or expire
    within `within`: (skill, expiry), soonest first."""
    due = [(until, skill) for skill, until in certifications.items() if until - now <= within]
    return [(skill, until) for until, skill in sorted(due)]


def nearest_eta(candidates: Sequence[Candidate], job: Job, now: datetime) -> float | None:
    """The ETA of the nearest technician who could take the job now (None: nobody), without
    scoring everyone: a distance is worked out only for those who hold the skills, are free
    and not too far by latitude alone."""
    best: float | None = None
    for tech in candidates:
        if _surely_beyond(km_at_least(tech, job, now), tech):
            continue
        if _fault_kind(tech, job, now, beyond=False):
            continue
        km = distance_km(where(tech, now), job.location)
        if km <= tech.radius_km:
            eta = eta_min(km)
            best = eta if best is None else min(best, eta)
    return best


FREE = "free to take it"


def why_nobody(candidates: Sequence[Candidate], job: Job, now: datetime) -> str:
    """Why the job waits for an operator, in a phrase: those who hold its skills counted by
    their first reason ("of the 5 holding printers: 3 at capacity, 2 off shift"; those
    eligible as free to take it, when the cascade is past them), or that nobody holds them."""
    counts: dict[str, int] = {}
    for tech in candidates:
        if not job.skills <= tech.skills:
            continue
        kind = _fault_kind(tech, job, now, _beyond(tech, job, now)) or FREE
        counts[kind] = counts.get(kind, 0) + 1
    skills = ", ".join(sorted(job.skills)) or "any skill"
    if not counts:
        return f"nobody holds {skills}"
    held = sum(counts.values())
    parts = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=_commonest))
    return f"of the {held} holding {skills}: {parts}"


def _beyond(tech: Candidate, job: Job, now: datetime) -> bool:
    """Beyond their service radius: by latitude alone when that settles it (no trigonometry),
    else by the distance."""
    if _surely_beyond(km_at_least(tech, job, now), tech):
        return True
    return distance_km(where(tech, now), job.location) > tech.radius_km


def _commonest(item: tuple[str, int]) -> tuple[bool, int, str]:
    return item[0] != FREE, -item[1], item[0]  # those free first, then the commonest


def next_shift_start(candidates: Sequence[Candidate], job: Job) -> datetime | None:
    """The soonest someone who holds the job's skills, is toggled available and not paused,
    but is off shift, starts their next shift (None: nobody will)."""
    starts = [
        tech.shift_starts_at
        for tech in candidates
        if tech.shift_starts_at is not None
        and tech.available
        and not tech.paused
        and job.skills <= tech.skills
    ]
    return min(starts, default=None)


def skill_pressure(demand: Mapping[str, int], pool: Sequence[Candidate]) -> dict[str, float]:
    """How short each skill is: its share of recent tickets over its share of the available
    technicians holding it (1: as wanted as it is held; more: scarce), capped at
    PRESSURE_CAP. Every skill someone holds starts with one ticket, so a quiet week does not
    make a skill look free."""
    on_duty = [t for t in pool if t.on_duty]
    skills = set(demand) | {s for t in on_duty for s in t.skills}
    wanted = {s: demand.get(s, 0) + 1 for s in skills}
    total_wanted = sum(wanted.values())
    pressure = {}
    for skill in sorted(skills):
        held = sum(1 for t in on_duty if skill in t.skills) / max(1, len(on_duty))
        share = wanted[skill] / total_wanted
        pressure[skill] = min(PRESSURE_CAP, share / held) if held else PRESSURE_CAP
    return pressure


def pressed_elsewhere(
    skills: frozenset[str], needed: frozenset[str], pressure: Mapping[str, float] | None
) -> float:
    """The pressure of a technician's skills this job does not need: what sending them
    leaves uncovered (the reserve part)."""
    return sum((pressure or {}).get(s, 0.0) for s in skills - needed)


def score(
    tech: Candidate,
    job: Job,
    now: datetime,
    weights: Weights = Weights(),
    pressure: Mapping[str, float] | None = None,
    km: float | None = None,
) -> Scored:
    """The technician's verdict for this job, with the score's parts (higher is better).
    km: the distance, when worked out already."""
    km = distance_km(where(tech, now), job.location) if km is None else km
    eta = eta_min(km)
    faults = _faults(tech, job, now, km)
    reasons = tuple(text for _, text in faults)
    idle_h = (now - tech.last_job_at).total_seconds() / 3600 if tech.last_job_at else 24.0
    elsewhere = pressed_elsewhere(tech.skills, job.skills, pressure)
    parts = {
        # Expected minutes until someone is on the way: 1 at the door, 0.5 at 30 min.
        "eta": weights.eta
        * (30.0 / (30.0 + max(0.0, expected_min(tech, eta, weights) - SET_OFF_MIN))),
        "rating": weights.rating * (smoothed_rating(tech) - 1) / 4,
        "acceptance": weights.acceptance * smoothed_acceptance(tech),
        "load": weights.load * (1 - tech.active_jobs / max(1, tech.capacity)),
        # Work spreads: who has waited longest since their last job gets a little more.
        "fairness": weights.fairness * min(1.0, idle_h / 24.0),
        # Sending a specialist whose other skills are short leaves their next job uncovered.
        "reserve": weights.reserve / (1.0 + elsewhere),
    }
    why_not = faults[0][0] if faults else ""
    return Scored(tech.id, not reasons, reasons, km, eta, sum(parts.values()), parts, why_not)


def rank(
    candidates: Sequence[Candidate],
    job: Job,
    now: datetime,
    weights: Weights = Weights(),
    pressure: Mapping[str, float] | None = None,
) -> list[Scored]:
    """Every candidate scored; eligible ones first, best first; ties broken by id, so the
    same input always gives the same order. pressure: skill_pressure (none: no skill counts
    as short)."""
    scored = [score(t, job, now, weights, pressure) for t in candidates]
    return sorted(scored, key=_rank_order)


def _rank_order(scored: Scored) -> tuple[bool, float, str]:
    return (not scored.eligible, -round(scored.score, 9), scored.technician_id)


@dataclass(frozen=True)
class SortedOut:
    """Those holding a job's skills, sorted out: every eligible one scored, best first (the
    choice needs them all); the others only with a bound of their distance and whether it is
    beyond their radius, to be ranked (and their first reason found) when an offer's
    explanation lists them (nobody eligible: no offer, and none of them is looked at again)."""

    job: Job
    now: datetime
    weights: Weights
    pressure: Mapping[str, float] | None
    eligible: list[Scored]
    others: list[tuple[float, Candidate, bool]]  # (a distance bound, who, beyond the radius)

    def ranked(self, limit: int = EXPLAIN_LIMIT) -> tuple[list[Scored], dict[str, int]]:
        """Every eligible one, then the best of the others until `limit` are ranked, each
        exactly as rank() gives them; and the rest, unscored, counted by the kind of their
        first reason. The others are scored nearest first only while one of them could
        still make the list: a score is at most the ETA part at their distance plus every
        other part in full."""
        job, now, weights, pressure = self.job, self.now, self.weights, self.pressure
        room = max(0, limit - len(self.eligible))
        others = sorted(self.others, key=lambda other: (other[0], other[1].id))
        rest_at_most = sum(
            max(0.0, w)
            for w in (weights.rating, weights.acceptance, weights.load, weights.fairness)
        ) + max(0.0, weights.reserve)
        best: list[float] = []  # the `room` best rounded scores so far (a heap: least first)
        scored: list[Scored] = []
        left: dict[str, int] = {}
        for n, (floor, tech, _) in enumerate(others):
            if len(best) >= room and (
                room == 0 or _score_at_most(floor, weights) + rest_at_most + 1e-9 < best[0]
            ):
                for _, unranked, beyond in others[n:]:  # nearest first: none of these can rank
                    kind = _fault_kind(unranked, job, now, beyond)
                    left[kind] = left.get(kind, 0) + 1
                break
            verdict = score(tech, job, now, weights, pressure)
            scored.append(verdict)
            heapq.heappush(best, round(verdict.score, 9))
            if len(best) > room:
                heapq.heappop(best)
        scored.sort(key=_rank_order)
        for verdict in scored[room:]:
            left[verdict.why_not] = left.get(verdict.why_not, 0) + 1
        return self.eligible + scored[:room], left


def sort_out(
    candidates: Sequence[Candidate],
    job: Job,
    now: datetime,
    weights: Weights = Weights(),
    pressure: Mapping[str, float] | None = None,
) -> SortedOut:
    """Who may take the job, scored, and who may not. In a crowd spread over a country, most
    are ruled out by latitude alone, with no distance worked out; why the others may not is
    worked out only if an offer's explanation asks (SortedOut.ranked)."""
    eligible: list[Scored] = []
    others: list[tuple[float, Candidate, bool]] = []
    for tech in candidates:
        floor = km_at_least(tech, job, now)
        if _surely_beyond(floor, tech):
            others.append((floor, tech, True))
            continue
        km = distance_km(where(tech, now), job.location)
        beyond = km > tech.radius_km
        if beyond or _fault_kind(tech, job, now, beyond=False):
            others.append((km, tech, beyond))
        else:
            eligible.append(score(tech, job, now, weights, pressure, km))
    eligible.sort(key=_rank_order)
    return SortedOut(job, now, weights, pressure, eligible, others)


def shortlist(
    candidates: Sequence[Candidate],
    job: Job,
    now: datetime,
    weights: Weights = Weights(),
    pressure: Mapping[str, float] | None = None,
    *,
    limit: int = EXPLAIN_LIMIT,
) -> tuple[list[Scored], dict[str, int]]:
    """rank(), cut to what an offer needs (sort_out, then ranked): every eligible candidate,
    best first, then the best of the others until `limit` are ranked, each exactly as rank()
    gives them; and the rest, unscored, counted by the kind of their first reason."""
    return sort_out(candidates, job, now, weights, pressure).ranked(limit)


def _score_at_most(km_floor: float, weights: Weights) -> float:
    """The most a score's ETA part can be this far away (an answer's cost only lowers it).
    Every other part is at most its weight: a smoothed rating and acceptance stay within
    their range, load and fairness at most 1, and skill pressures are never negative."""
    if weights.miss_penalty_min < 0:
        return max(0.0, weights.eta)
    return max(0.0, weights.eta) * 30.0 / (30.0 + max(0.0, eta_min(km_floor) - SET_OFF_MIN))


def best(ranked: Sequence[Scored], kind: Kind | None, kinds: dict[str, Kind]) -> Scored | None:
    """The best eligible candidate (of a kind, when given)."""
    for scored in ranked:
        if scored.eligible and (kind is None or kinds[scored.technician_id] is kind):
            return scored
    return None


def explain(
    ranked: Sequence[Scored],
    lacking: Sequence[Candidate],
    job: Job,
    now: datetime,
    *,
    chosen: str | None = None,
    limit: int = EXPLAIN_LIMIT,
    weights: Weights = Weights(),
    pressure: Mapping[str, float] | None = None,
    unranked: Mapping[str, int] | None = None,
) -> tuple[list[Scored], dict[str, int]]:
    """What an offer keeps to say why: at most `limit` candidates, in rank order, the chosen
    one always, filled up with those lacking the skills (ranked the same) if there is room;
    and how many of the others were left out, by the kind of their first reason
    (LEFT_OUT_ELIGIBLE for eligible ones). ranked: rank() of those holding the job's skills,
    or shortlist() (with a limit of at least this one's) and its count of the rest, unranked;
    lacking: the others, scored only if listed. In a crowd of thousands, an offer then stores
    and shows the few that could have had it, not everyone."""
    listed = list(ranked[:limit])
    if chosen is not None and all(s.technician_id != chosen for s in listed):
        listed[-1:] = [s for s in ranked if s.technician_id == chosen]
    room = limit - len(listed)
    if room > 0 and lacking:
        listed += shortlist(lacking, job, now, weights, pressure, limit=room)[0][:room]
    kept = {s.technician_id for s in listed}
    left_out: dict[str, int] = dict(unranked or {})
    for scored in ranked:
        if scored.technician_id not in kept:
            why = scored.why_not or LEFT_OUT_ELIGIBLE
            left_out[why] = left_out.get(why, 0) + 1
    unlisted = len(lacking) - sum(1 for s in listed if s.why_not == LACKS_SKILLS)
    if unlisted:
        left_out[LACKS_SKILLS] = unlisted
    return listed, left_out
