"""Dispatch policy, pure: offer deadlines, the cascade to staff and operators, SLA clocks,
and when a technician stops getting crowd offers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from cloud.dispatch.matching import Weights


@dataclass(frozen=True)
class DispatchPolicy:
    """Tunables, with the defaults from the product brief."""

    offer_timeout: timedelta = timedelta(minutes=5)
    min_offer_timeout: timedelta = timedelta(minutes=2)  # what a person needs to answer
    crowd_attempts: int = 3  # crowd offers before staff get it
    crowd_minutes: float = 15.0  # or this long since dispatch began
    staff_attempts: int = 2  # staff offers before an operator must act
    sla_warning_share: float = 0.8  # warn when this share of the target has passed
    min_rating: float = 4.8
    min_ratings: int = 10
    min_acceptance: float = 0.8
    acceptance_window: int = 20
    weights: Weights = field(default_factory=Weights)
    # Switches, so the simulation can run a naive dispatcher on the same machinery.
    shorten_deadlines: bool = True  # cut the timeout when the SLA has less slack
    cascade: bool = True  # crowd first, then staff, then an operator; off: anyone, nearest
    pause: bool = True  # pause crowd technicians below the rating/acceptance policy
    # When technicians are scarce, serve first the tickets that can still be reached within
    # their on-site target (earliest due first); the ones already too late wait their turn.
    triage: bool = True
    # The deployment's map (CROWDFIX_MAP_URL, {lat} and {lon} filled in): each offer pushed
    # to a technician links to the spot. Empty: no link.
    map_url: str = ""


# Minutes a technician takes to read an offer and say yes, on top of the travel time.
ANSWER_MIN = 2.0
# Tickets due further out than this are reachable whatever the ETA (no need to work it out).
TRIAGE_HORIZON = timedelta(minutes=90)


@dataclass(frozen=True)
class Waiting:
    """A ticket waiting for an offer, as triage sees it."""

    ticket_id: int
    due: datetime  # its on-site target
    best_eta_min: float | None  # the nearest eligible technician's ETA now (None: nobody)


def triage(waiting: list[Waiting], now: datetime) -> list[int]:
    """The order to serve waiting tickets in while technicians are scarce: first those someone
    can still reach in time (due - now >= answer time + ETA of the nearest eligible
    technician), earliest due first; then the rest, earliest due first. Under overload,
    sending the free technician to a ticket that will be late anyway makes the next one late
    too; this keeps the on-time ones on time."""

    def reachable(w: Waiting) -> bool:
        if w.best_eta_min is None:
            return False
        return w.due - now >= timedelta(minutes=ANSWER_MIN + w.best_eta_min)

    ordered = sorted(waiting, key=lambda w: (not reachable(w), w.due, w.ticket_id))
    return [w.ticket_id for w in ordered]


class Stage(StrEnum):
    """Who the next offer goes to."""

    CROWD = "crowd"
    STAFF = "staff"
    OPERATOR = "operator"  # escalated: a person must assign
    ANY = "any"  # no cascade: whoever is best


def offer_deadline(
    now: datetime, arrive_by: datetime, eta_min: float, policy: DispatchPolicy
) -> datetime:
    """The default timeout, shorter when the SLA cannot wait that long: the slack (time left
    to be on site minus the travel time), but never less than a person needs to answer."""
    if not policy.shorten_deadlines:
        return now + policy.offer_timeout
    slack = arrive_by - now - timedelta(minutes=eta_min)
    timeout = min(policy.offer_timeout, max(policy.min_offer_timeout, slack))
    return now + timeout


def stage(
    crowd_offers: int,
    staff_offers: int,
    dispatch_started: datetime,
    now: datetime,
    policy: DispatchPolicy,
) -> Stage:
    """Crowd first; staff after enough crowd offers or minutes; then an operator."""
    crowd_done = crowd_offers >= policy.crowd_attempts or now - dispatch_started >= timedelta(
        minutes=policy.crowd_minutes
    )
    if not crowd_done:
        return Stage.CROWD
    if staff_offers < policy.staff_attempts:
        return Stage.STAFF
    return Stage.OPERATOR


@dataclass(frozen=True)
class SlaClock:
    """Where a ticket stands against one SLA target."""

    target: str
    due: datetime
    met_at: datetime | None
    breached: bool
    warning: bool
    remaining_s: float


def sla_clock(
    target: str,
    started: datetime,
    due: datetime,
    met_at: datetime | None,
    now: datetime,
    policy: DispatchPolicy,
) -> SlaClock:
    """Met, running, warned or breached."""
    end = met_at or now
    breached = end > due
    span = (due - started).total_seconds()
    elapsed = (end - started).total_seconds()
    warning = (
        met_at is None and not breached and span > 0 and elapsed >= policy.sla_warning_share * span
    )
    return SlaClock(target, due, met_at, breached, warning, (due - end).total_seconds())


def below_policy(
    rating_sum: float, rating_count: int, recent_outcomes: list[bool], policy: DispatchPolicy
) -> str | None:
    """Why a crowd technician must be paused (None: fine). recent_outcomes: newest last,
    True for an accepted offer, False for a declined or missed one."""
    if rating_count >= policy.min_ratings and rating_sum / rating_count < policy.min_rating:
        return (
            f"rating {rating_sum / rating_count:.2f} below {policy.min_rating} "
            f"over {rating_count} ratings"
        )
    window = recent_outcomes[-policy.acceptance_window :]
    if len(window) >= policy.acceptance_window:
        rate = sum(window) / len(window)
        if rate < policy.min_acceptance:
            return (
                f"acceptance {rate:.0%} below {policy.min_acceptance:.0%} "
                f"over the last {len(window)} offers"
            )
    return None
