"""The ingest use case on real SQLite and PostgreSQL: tickets stored once, devices registered."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import Base, transaction
from cloud.devices import service as devices
from cloud.ingest.service import IngestResult, ingest
from cloud.tickets import service as tickets
from cloud.tickets.models import Ticket
from cloud.worker import store_message
from contracts import ButtonEvent, FaultEvent, Heartbeat, Status

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def press(device: str = "pos-0001", **kw) -> ButtonEvent:
    return ButtonEvent(
        device_id=device, timestamp=NOW, seq=1, button="printer", category="receipt-printer", **kw
    )


def test_migrations_match_the_models(sessions: sessionmaker[Session]) -> None:
    with sessions() as db_session:
        context = MigrationContext.configure(db_session.connection())
        assert compare_metadata(context, Base.metadata) == []


def test_a_press_opens_one_ticket_and_registers_the_device(sessions) -> None:
    event = press()
    with transaction(sessions) as db_session:
        result = ingest(db_session=db_session, message=event, now=NOW + timedelta(seconds=1))
    assert result.ticket_id is not None and result.receipt and not result.duplicate
    with sessions() as db_session:
        ticket = tickets.get_or_raise(db_session=db_session, ticket_id=result.ticket_id)
        assert (ticket.device_id, ticket.category, ticket.state) == (
            "pos-0001",
            "receipt-printer",
            "new",
        )
        assert ticket.opened_at == NOW  # the device's time, as an aware UTC datetime
        device = devices.get(db_session=db_session, device_id="pos-0001")
        assert device is not None and device.last_seen_at == NOW


def test_redelivery_is_recognised_and_opens_nothing(sessions) -> None:
    event = press()
    with transaction(sessions) as db_session:
        first = ingest(db_session=db_session, message=event, now=NOW)
    with transaction(sessions) as db_session:
        again = ingest(db_session=db_session, message=event, now=NOW)
    assert again.duplicate and again.ticket_id == first.ticket_id and again.receipt
    with sessions() as db_session:
        assert db_session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_two_workers_racing_on_one_message_store_it_once(sessions) -> None:
    """The loser of the race fails on the key (or waits for the lock) and then sees a duplicate."""
    event = press()
    barrier = threading.Barrier(4)
    stopping = threading.Event()

    def worker() -> IngestResult | None:
        barrier.wait()
        return store_message(sessions, event, stopping)

    with ThreadPoolExecutor(4) as pool:
        results = [r for r in pool.map(lambda _: worker(), range(4)) if r is not None]
    assert len(results) == 4
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert len({r.ticket_id for r in results}) == 1
    with sessions() as db_session:
        assert db_session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_status_heartbeat_and_faults(sessions) -> None:
    base = {"device_id": "cold-1", "timestamp": NOW, "seq": 1}
    with transaction(sessions) as db_session:
        ingest(
            db_session=db_session,
            message=Status(**base, state="online", profile="cold-room"),
            now=NOW,
        )
        ingest(
            db_session=db_session,
            message=Heartbeat(**base, agent_version="1.2.3", profile="cold-room"),
            now=NOW,
        )
        raised = ingest(
            db_session=db_session,
            message=FaultEvent(
                **base,
                code="temp-high",
                state="raised",
                severity="critical",
                readings={"temp_c": 9.5},
            ),
            now=NOW,
        )
        cleared = ingest(
            db_session=db_session,
            message=FaultEvent(**base, code="temp-high", state="cleared"),
            now=NOW,
        )
        ingest(db_session=db_session, message=Status(**base, state="offline"), now=NOW)
    assert raised.ticket_id is not None and cleared.ticket_id is None
    with sessions() as db_session:
        device = devices.get(db_session=db_session, device_id="cold-1")
        assert device is not None
        assert (device.presence, device.profile, device.agent_version) == (
            "offline",
            "cold-room",
            "1.2.3",
        )
        ticket = tickets.get_or_raise(db_session=db_session, ticket_id=raised.ticket_id)
        assert ticket.priority == "critical" and "temp_c=9.5" in ticket.description


def test_cancel_opens_no_ticket_and_urgent_is_high(sessions) -> None:
    with transaction(sessions) as db_session:
        cancel = ingest(db_session=db_session, message=press(action="cancel"), now=NOW)
        urgent = ingest(db_session=db_session, message=press(action="urgent"), now=NOW)
    assert cancel.ticket_id is None
    with sessions() as db_session:
        assert tickets.get_or_raise(db_session=db_session, ticket_id=urgent.ticket_id).priority == (
            "high"
        )
