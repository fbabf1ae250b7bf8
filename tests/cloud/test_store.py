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


def test_migration_0018_names_whom_each_past_assignment_went_to(tmp_path) -> None:
    """Before 0018 the dispatcher's assignments (an operator's too) named their technician as
    the actor; other assignments name no one: a site's device tickets following their site
    ticket, an operator's bare transition. Down again and up again: the same."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")  # no foreign keys: events alone
    config = Config()
    config.set_main_option("script_location", "cloud:migrations")

    def to(revision: str, down: bool = False) -> None:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)

    to("0017")
    rows = [
        (1, "ana", "transition", "assigned"),
        (1, "ana", "transition", "on_site"),
        (2, "site ticket 1", "transition", "assigned"),
        (3, "ben", "comment", None),
        (4, "operator:olga", "transition", "assigned"),
    ]
    with engine.begin() as connection:
        for technician in ("ana", "ben"):
            connection.execute(
                text(
                    "INSERT INTO technicians (id, name, kind, skills, certifications, home_lat,"
                    " home_lon, radius_km, available, capacity, rating_sum, rating_count,"
                    " paused, paused_reason, created_at, retired_reason)"
                    " VALUES (:id, :id, 'crowd', '[]', '{}', 47.0, 8.0, 10, 1, 1, 0, 0, 0, '',"
                    " '2026-11-25 08:00:00.000000', '')"
                ),
                {"id": technician},
            )
        for ticket, actor, kind, state in rows:
            connection.execute(
                text(
                    "INSERT INTO ticket_events (ticket_id, at, actor, kind, to_state, reason, data)"
                    " VALUES (:t, '2026-11-25 08:00:00.000000', :a, :k, :s, '', '{}')"
                ),
                {"t": ticket, "a": actor, "k": kind, "s": state},
            )
    for _ in range(2):
        to("head")
        with engine.connect() as connection:
            named = connection.execute(
                text("SELECT actor, to_state, assigned_to FROM ticket_events ORDER BY id")
            ).all()
        assert named == [
            ("ana", "assigned", "ana"),
            ("ana", "on_site", None),
            ("site ticket 1", "assigned", None),
            ("ben", None, None),
            ("operator:olga", "assigned", None),
        ]
        indexes = {i["name"] for i in inspect(engine).get_indexes("ticket_events")}
        assert "ix_ticket_events_state_assigned_to" in indexes
        assert "ix_ticket_events_state_actor" not in indexes
        to("0017", down=True)
        indexes = {i["name"] for i in inspect(engine).get_indexes("ticket_events")}
        assert "ix_ticket_events_state_actor" in indexes
