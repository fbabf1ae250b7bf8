"""Storage on real SQLite and PostgreSQL: the schema, and duplicates under concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import Base
from cloud.ingest.service import ingest_event
from cloud.tickets.models import Ticket
from tests.cloud.factories import press, register


def test_migrations_match_the_models(sessions: sessionmaker[Session]) -> None:
    with sessions() as db_session:
        context = MigrationContext.configure(db_session.connection())
        assert compare_metadata(context, Base.metadata) == []


def _count(sessions, model=Ticket) -> int:
    with sessions() as db_session:
        return db_session.scalar(select(func.count()).select_from(model)) or 0


def test_racing_workers_store_a_message_once_and_open_one_ticket(sessions, worker_for) -> None:
    """Four threads deliver the same press and four different presses for one problem."""
    register(sessions, "pos-1")
    same = press("pos-1")
    different = [press("pos-1") for _ in range(4)]
    worker = worker_for(sessions)
    barrier = threading.Barrier(4)

    def deliver(message) -> None:
        barrier.wait()
        worker._retrying(
            lambda db: ingest_event(
                db_session=db, message=message, ctx=worker.ctx, now=message.timestamp
            )
        )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(deliver, [same] * 4))
        list(pool.map(deliver, different))
    assert _count(sessions) == 1
    with sessions() as db:
        ticket = db.scalars(select(Ticket)).one()
        assert ticket.occurrences == 5


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
        ),
    )
)
def test_sqlite_time_is_naive_utc_with_microseconds(at: datetime) -> None:
    from cloud.db import sqlite_time

    expected = at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    assert sqlite_time(at) == expected
