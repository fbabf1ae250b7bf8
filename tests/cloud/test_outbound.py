"""The outbox's two lanes on SQLite and PostgreSQL: MQTT messages never wait behind webhooks;
a webhook is leased to one relay at a time, tried again after a backoff, given up once out of
date, and counted for monitoring."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta

from pydantic import BaseModel
from sqlalchemy import select

from cloud.db import transaction
from cloud.outbound import service as outbound
from cloud.outbound.delivery import Outcome, Result, backoff
from cloud.outbound.models import OutboundMessage
from tests.cloud.factories import T0
from tests.helpers import WebhookReceiver


class Note(BaseModel):
    n: int


def queue(sessions, n: int, topic: str, expires_in: timedelta | None = None) -> None:
    with transaction(sessions) as db:
        for i in range(n):
            expires = None if expires_in is None else T0 + expires_in
            outbound.enqueue(
                db_session=db, topic=topic, message=Note(n=i), now=T0, expires_at=expires
            )


DEAD = outbound.webhook_topic("ana", "https://dead.example/hook")


def row(sessions, id: int) -> OutboundMessage:
    with sessions() as db:
        found = db.get(OutboundMessage, id)
        assert found is not None
        db.expunge(found)
        return found


def test_mqtt_messages_never_wait_behind_webhooks(sessions) -> None:
    queue(sessions, 150, DEAD)  # more than a relay's batch, all for a dead URL
    queue(sessions, 1, "cmd/crowdfix/v1/pos-1/feedback")
    with transaction(sessions) as db:
        claimed = outbound.claim(db_session=db)
        assert [m.topic for m in claimed] == ["cmd/crowdfix/v1/pos-1/feedback"]
        leased = outbound.lease_webhooks(db_session=db, now=T0)
    assert len(leased) == 100 and leased[0].url == "https://dead.example/hook"
    assert [h.id for h in leased] == sorted(h.id for h in leased)  # oldest first


def test_a_webhook_is_leased_to_one_relay_until_its_lease_runs_out(sessions) -> None:
    queue(sessions, 3, DEAD)
    with transaction(sessions) as db:
        first = outbound.lease_webhooks(db_session=db, now=T0)
    with transaction(sessions) as db:
        assert outbound.lease_webhooks(db_session=db, now=T0) == []  # another relay: nothing
    with transaction(sessions) as db:  # the first relay died mid-batch: the lease runs out
        again = outbound.lease_webhooks(db_session=db, now=T0 + outbound.LEASE)
    assert [h.id for h in again] == [h.id for h in first]


def test_relays_racing_take_each_notice_once_and_each_webhooks_in_order(sessions) -> None:
    """Four relays lease and deliver at once: every notice is leased once, and a webhook's
    notices are leased in the order they were made (its next batch only once the last one
    is settled)."""
    hooks = [outbound.webhook_topic(f"t{i}", f"https://t{i}.example/hook") for i in range(12)]
    for topic in hooks:
        queue(sessions, 10, topic)
    taken: list[tuple[str, int]] = []
    sqlite = sessions.kw["bind"].dialect.name == "sqlite"
    lock = threading.Lock()  # SQLite: one writer at a time, as the worker's gate does

    def relay() -> None:
        while True:
            with lock if sqlite else contextlib.nullcontext(), transaction(sessions) as db:
                batch = outbound.lease_webhooks(db_session=db, now=T0, limit=7)
                taken.extend((f"webhook:{h.technician_id}:{h.url}", h.id) for h in batch)
            if not batch:
                return
            delivered = [Outcome(h.id, Result.DELIVERED) for h in batch]
            with lock if sqlite else contextlib.nullcontext(), transaction(sessions) as db:
                outbound.settle(db_session=db, outcomes=delivered, now=T0)

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = [i for _topic, i in taken]
    assert len(ids) == len(set(ids)) == 120
    for topic in hooks:
        mine = [i for t, i in taken if t == topic]
        assert mine == sorted(mine) and len(mine) == 10


def test_outcomes_are_recorded_and_counted(sessions) -> None:
    queue(sessions, 4, DEAD)
    queue(sessions, 1, "tech/crowdfix/v1/ana/offer")
    with transaction(sessions) as db:
        a, b, c, d = (h.id for h in outbound.lease_webhooks(db_session=db, now=T0))
        retry = T0 + backoff(1)
        outbound.settle(
            db_session=db,
            now=T0,
            outcomes=[
                Outcome(a, Result.DELIVERED),
                Outcome(b, Result.FAILED, retry, "HTTP 503"),
                Outcome(c, Result.WAITING, retry),
                Outcome(d, Result.GIVEN_UP, error="out of date"),
            ],
        )
    assert row(sessions, a).sent_at == T0
    failed = row(sessions, b)
    assert (failed.attempts, failed.next_attempt_at, failed.last_error) == (1, retry, "HTTP 503")
    waiting = row(sessions, c)
    assert (waiting.attempts, waiting.next_attempt_at) == (0, retry)  # not tried: no attempt
    assert row(sessions, d).failed_at == T0 and row(sessions, d).sent_at is None
    with transaction(sessions) as db:
        assert outbound.lease_webhooks(db_session=db, now=retry - timedelta(seconds=1)) == []
        assert [h.id for h in outbound.lease_webhooks(db_session=db, now=retry)] == [b, c]
        assert outbound.backlog(db_session=db) == {"mqtt": 1, "webhook": 2, "given_up": 1}
        outbound.prune(db_session=db, now=T0 + timedelta(days=2), keep=timedelta(days=1))
        left = db.scalars(select(OutboundMessage.id).order_by(OutboundMessage.id)).all()
    assert a not in left and d not in left and {b, c} <= set(left)  # sent and given up: gone


def test_a_given_up_message_is_never_claimed(sessions) -> None:
    queue(sessions, 1, "tech/crowdfix/v1/ana/offer", expires_in=timedelta(minutes=5))
    with transaction(sessions) as db:
        (message,) = outbound.claim(db_session=db)
        outbound.give_up(db_session=db, ids=[message.id], now=T0, error="out of date")
    with transaction(sessions) as db:
        assert outbound.claim(db_session=db) == []


def test_a_stopping_worker_posts_nothing_more_and_the_notice_waits(sessions, worker_for) -> None:
    """A worker told to stop makes no more POSTs from its batch (each could wait its whole
    timeout): the notice is tried again after the backoff, by whichever worker runs then."""
    with WebhookReceiver() as hook:
        topic = outbound.webhook_topic("ana", hook.url)
        with transaction(sessions) as db:
            outbound.enqueue(db_session=db, topic=topic, message=Note(n=1), now=T0)
        worker = worker_for(sessions)
        worker._stopping.set()
        assert worker.relay_webhooks() == 0 and hook.taken == []
        with sessions() as db:
            (left,) = db.scalars(select(OutboundMessage)).all()
        assert (left.sent_at, left.attempts, left.last_error) == (
            None,
            1,
            "the worker stopped first",
        )
        assert worker_for(sessions).relay_webhooks() == 0  # resting until its backoff ends
