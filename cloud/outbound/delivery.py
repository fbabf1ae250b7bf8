"""Webhook delivery rules, pure: which POSTs of a batch to try, in what order, and when to try
again or give up.

A technician's webhook gets its notices in the order they were queued: once a POST to a URL
fails, the later ones of the batch for that URL wait behind it (they are not tried, so a dead
URL costs one timeout per attempt, not one per notice). A failed POST is tried again after a
backoff that doubles from RETRY_FIRST to RETRY_MAX; a notice that is out of date (an offer past
its deadline, anything a day old) is given up instead of delivered late.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

RETRY_FIRST = timedelta(seconds=5)
RETRY_MAX = timedelta(minutes=5)
KEEP_TRYING = timedelta(days=1)  # a notice without a deadline of its own is given up after this


@dataclass(frozen=True)
class Webhook:
    """One queued POST: its row, where it goes, its body and how it went so far."""

    id: int
    technician_id: str | None
    url: str
    payload: bytes
    attempts: int
    expires_at: datetime | None


class Result(StrEnum):
    """What became of one POST of a batch."""

    DELIVERED = "delivered"
    FAILED = "failed"  # tried, and it failed: try again after the backoff
    WAITING = "waiting"  # not tried: an earlier one to the same URL failed
    GIVEN_UP = "given_up"  # out of date: never to be sent


@dataclass(frozen=True)
class Outcome:
    """A POST's result, and when to try it again (FAILED, WAITING) or why it failed."""

    id: int
    result: Result
    retry_at: datetime | None = None
    error: str | None = None


def backoff(attempts: int) -> timedelta:
    """How long to wait after the attempts-th failed try (5 s, 10 s, 20 s … up to 5 min)."""
    return min(RETRY_MAX, RETRY_FIRST * 2 ** max(0, min(attempts - 1, 16)))


def expiry(created_at: datetime, deadline: datetime | None) -> datetime:
    """When a notice stops being worth delivering: its own deadline, or KEEP_TRYING."""
    return deadline if deadline is not None else created_at + KEEP_TRYING


def deliver(
    batch: Iterable[Webhook], post: Callable[[Webhook], str | None], now: datetime
) -> list[Outcome]:
    """Try the batch in order of queueing; post returns None when delivered, else what went
    wrong. A URL that failed keeps its later notices waiting until its next try."""
    failed: dict[str, datetime] = {}  # url → when it is tried again
    outcomes = []
    for hook in sorted(batch, key=lambda h: h.id):
        if hook.expires_at is not None and now >= hook.expires_at:
            outcomes.append(Outcome(hook.id, Result.GIVEN_UP, error="out of date"))
        elif hook.url in failed:
            outcomes.append(Outcome(hook.id, Result.WAITING, retry_at=failed[hook.url]))
        elif (error := post(hook)) is None:
            outcomes.append(Outcome(hook.id, Result.DELIVERED))
        else:
            failed[hook.url] = now + backoff(hook.attempts + 1)
            outcomes.append(Outcome(hook.id, Result.FAILED, failed[hook.url], error))
    return outcomes
