"""The ticket engine on real SQLite and PostgreSQL: each rule, end to end through ingest."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from cloud.db import transaction
from cloud.devices import service as devices
from cloud.errors import Conflict
from cloud.ingest.service import DeviceDirectory, IngestContext, ingest_bulk, sweep_device
from cloud.outbound.models import OutboundMessage
from cloud.telemetry.models import LatestReading
from cloud.telemetry.service import Sample, store
from cloud.tickets import service as tickets
from cloud.tickets.lifecycle import TicketState
from cloud.tickets.models import Ticket
from contracts import ContractViolation, Heartbeat, Reading, Rejection, Telemetry
from tests.cloud.factories import CTX, T0, at, fault, ingest, press, register, status


def all_tickets(sessions) -> list[Ticket]:
    with sessions() as db:
        return list(db.scalars(select(Ticket).order_by(Ticket.id)))


def trail(sessions, ticket_id: int) -> list[tuple[str, str | None]]:
    with sessions() as db:
        return [(e.kind, e.to_state) for e in tickets.events(db_session=db, ticket_id=ticket_id)]


def test_repeats_join_the_open_ticket_and_urgent_raises_priority(sessions) -> None:
    register(sessions, "pos-1")
    first = ingest(sessions, press("pos-1"))
    again = ingest(sessions, press("pos-1", minutes=1))
    urgent = ingest(sessions, press("pos-1", action="urgent", minutes=2))
    assert first.opened and not again.opened and not urgent.opened
    assert first.ticket_id == again.ticket_id == urgent.ticket_id
    [ticket] = all_tickets(sessions)
    assert (ticket.occurrences, ticket.priority, ticket.urgent) == (3, "high", True)
    assert ticket.last_occurrence_at == at(2) and ticket.opened_at == at(0)
    assert ticket.category == "receipt-printer" and ticket.skills == ["printers"]
    assert ticket.sla_accept_by == at(5) and ticket.sla_arrive_by == at(60)
    assert [k for k, _ in trail(sessions, ticket.id)] == ["opened", "occurrence", "occurrence"]


def test_descriptions_come_from_the_devices_own_data(sessions) -> None:
    register(sessions, "pos-1", site="zurich-hb")
    with transaction(sessions) as db:
        store(
            db_session=db,
            samples=[
                Sample("pos-1", "pi_cpu_c", 48.5, "C", at(0)),
                Sample("pos-1", "terminal_reachable", 0.0, "", at(0)),
            ],
        )
    ingest(sessions, fault("pos-1", "terminal-unreachable", minutes=1))
    [ticket] = all_tickets(sessions)
    assert ticket.category == "till" and ticket.site_id == "zurich-hb"
    assert "Site zurich-hb" in ticket.title
    for words in (
        "terminal-unreachable (major",
        "pi_cpu_c 48.5 C",
        "terminal_reachable 0",
        "Skills needed: pos",
    ):
        assert words in ticket.description, words
    assert ticket.snapshot["readings"][0]["name"] == "pi_cpu_c"
    assert ticket.snapshot["faults"][0]["code"] == "terminal-unreachable"


def test_cancel_cancels_the_request_and_tells_the_device(sessions) -> None:
    register(sessions, "pos-1")
    opened = ingest(sessions, press("pos-1"))
    cancelled = ingest(sessions, press("pos-1", action="cancel", minutes=1))
    assert cancelled.ticket_id == opened.ticket_id
    [ticket] = all_tickets(sessions)
    assert (ticket.state, ticket.resolution) == ("cancelled", "cancelled")
    with sessions() as db:
        [command] = db.scalars(select(OutboundMessage)).all()
        assert (
            command.topic == "cmd/crowdfix/v1/pos-1/feedback" and b'"cancelled"' in command.payload
        )


def test_a_cancel_arriving_before_its_request_still_wins(sessions) -> None:
    register(sessions, "pos-1")
    request, cancel = press("pos-1", seq=10), press("pos-1", action="cancel", seq=11, minutes=1)
    assert ingest(sessions, cancel).ticket_id is None
    assert ingest(sessions, request).ticket_id is None
    assert all_tickets(sessions) == []


def test_a_fault_that_clears_before_dispatch_resolves_its_ticket(sessions) -> None:
    register(sessions, "cold-1")
    opened = ingest(sessions, fault("cold-1", "temperature-high"))
    ingest(sessions, fault("cold-1", "temperature-high", raised=False, minutes=3))
    [ticket] = all_tickets(sessions)
    assert ticket.id == opened.ticket_id and (ticket.state, ticket.resolution) == (
        "resolved",
        "auto",
    )
    assert ("transition", "resolved") in trail(sessions, ticket.id)


def test_after_dispatch_a_clear_is_only_noted(sessions) -> None:
    register(sessions, "cold-1")
    opened = ingest(sessions, fault("cold-1", "temperature-high"))
    with transaction(sessions) as db:
        ticket = tickets.get_or_raise(db_session=db, ticket_id=opened.ticket_id)
        tickets.transition(
            db_session=db,
            ticket=ticket,
            to=TicketState.ASSIGNED,
            actor="operator",
            reason="sent Ana",
            now=at(1),
        )
    ingest(sessions, fault("cold-1", "temperature-high", raised=False, minutes=3))
    [ticket] = all_tickets(sessions)
    assert ticket.state == "assigned" and ticket.active_faults == []
    assert ("fault_cleared", None) in trail(sessions, ticket.id)


def test_a_flapping_fault_holds_one_ticket(sessions) -> None:
    register(sessions, "net-1")
    ids = set()
    for i in range(4):  # raised and cleared every 5 minutes
        ids.add(ingest(sessions, fault("net-1", "router-down", minutes=i * 5)).ticket_id)
        ingest(sessions, fault("net-1", "router-down", raised=False, minutes=i * 5 + 2))
    [ticket] = all_tickets(sessions)
    assert ids == {ticket.id}
    assert ticket.flapping and ticket.state == "new"
    kinds = [k for k, _ in trail(sessions, ticket.id)]
    # resolved, reopened, resolved, reopened (now flapping); later clears are only noted
    assert "flapping" in kinds and kinds.count("transition") == 4


def test_old_transitions_do_not_undo_newer_ones(sessions) -> None:
    register(sessions, "cold-1")
    ingest(sessions, fault("cold-1", "door-left-open", raised=False, seq=20, minutes=5))
    assert ingest(sessions, fault("cold-1", "door-left-open", seq=19)).ticket_id is None
    assert all_tickets(sessions) == []


def test_three_devices_of_one_site_make_a_site_ticket(sessions) -> None:
    register(sessions, "pos-1", "pos-2", "pos-3", "pos-4", site="zurich-hb")
    for i, device in enumerate(["pos-1", "pos-2", "pos-3"]):
        ingest(sessions, fault(device, "router-down", minutes=i))
    site_tickets = [t for t in all_tickets(sessions) if t.is_site]
    assert len(site_tickets) == 1
    site = site_tickets[0]
    device_tickets = [t for t in all_tickets(sessions) if not t.is_site]
    assert {t.parent_id for t in device_tickets} == {site.id}
    assert site.priority == "critical" and "3 devices" in site.description
    ingest(sessions, fault("pos-4", "router-down", minutes=4))  # a latecomer joins
    assert len([t for t in all_tickets(sessions) if t.parent_id == site.id]) == 4
    with transaction(sessions) as db:
        ticket = tickets.get_or_raise(db_session=db, ticket_id=site.id)
        tickets.transition(
            db_session=db,
            ticket=ticket,
            to=TicketState.ASSIGNED,
            actor="operator",
            reason="one technician for the site",
            now=at(5),
        )
    assert {t.state for t in all_tickets(sessions)} == {"assigned"}
    with sessions() as db:
        assert len(db.scalars(select(OutboundMessage)).all()) == 4  # each device told


def test_illegal_transitions_are_refused_with_the_options(sessions) -> None:
    register(sessions, "pos-1")
    opened = ingest(sessions, press("pos-1"))
    with transaction(sessions) as db:
        ticket = tickets.get_or_raise(db_session=db, ticket_id=opened.ticket_id)
        with pytest.raises(Conflict, match=r"cannot become on_site.*possible: assigned"):
            tickets.transition(
                db_session=db,
                ticket=ticket,
                to=TicketState.ON_SITE,
                actor="operator",
                reason="x",
                now=at(1),
            )


def test_unknown_devices_and_future_timestamps_are_refused(sessions) -> None:
    with pytest.raises(ContractViolation) as unknown:
        ingest(sessions, press("ghost-1"))
    assert unknown.value.reason is Rejection.UNKNOWN_DEVICE
    register(sessions, "pos-1")
    with pytest.raises(ContractViolation) as future:
        ingest(sessions, press("pos-1", minutes=60), now=T0)
    assert future.value.reason is Rejection.FUTURE_TIMESTAMP
    assert all_tickets(sessions) == []
    auto = IngestContext(CTX.taxonomy, auto_register=True)
    assert ingest(sessions, press("new-1"), ctx=auto).opened


def test_heartbeats_and_telemetry_update_the_device(sessions) -> None:
    register(sessions, "pos-1")
    beat = Heartbeat(
        device_id="pos-1",
        timestamp=at(1),
        seq=5,
        agent_version="9.9",
        profile="pos-terminal",
        interval_s=30,
        backlog=2,
        oldest_pending_s=12.5,
    )
    with transaction(sessions) as db:
        result = ingest_bulk(db_session=db, messages=[beat], ctx=CTX, now=at(1))
    assert not result.rejected
    with sessions() as db:
        device = devices.get_or_raise(db_session=db, device_id="pos-1")
        assert (device.agent_version, device.heartbeat_interval_s, device.backlog) == ("9.9", 30, 2)
        assert device.last_seen_at == at(1)


def test_an_offline_device_gets_a_ticket_after_the_grace_and_clears_on_return(sessions) -> None:
    register(sessions, "pos-1")
    ingest(sessions, status("pos-1", "online"))
    ingest(sessions, status("pos-1", "offline", minutes=1))  # the last will

    def sweep(minutes: float):
        with transaction(sessions) as db:
            device = devices.get(db_session=db, device_id="pos-1", lock=True)
            return sweep_device(db_session=db, device=device, ctx=CTX, now=at(minutes))

    assert sweep(3) is None  # offline, within the 5 minute grace
    outcome = sweep(7)
    assert outcome is not None and outcome.opened
    [ticket] = all_tickets(sessions)
    assert (ticket.category, ticket.source, ticket.priority) == (
        "device-offline",
        "offline",
        "critical",
    )
    ingest(sessions, status("pos-1", "online", minutes=8))
    sweep(8.5)
    [ticket] = all_tickets(sessions)
    assert (ticket.state, ticket.resolution) == ("resolved", "auto")
    with sessions() as db:
        assert devices.get_or_raise(db_session=db, device_id="pos-1").presence == "online"


def test_the_bulk_paths_device_directory_learns_committed_devices_and_forgets(sessions) -> None:
    """Devices a batch found are not queried again until the TTL passes; unknown ones are
    asked every time, so a device registered now is accepted at once."""
    clock = [0.0]
    directory = DeviceDirectory(ttl_s=30, clock=lambda: clock[0])

    def batch(*device_ids: str):
        readings = [Reading(name="t", value=1.0, timestamp=at(1))]
        messages = [Telemetry(device_id=d, timestamp=at(1), seq=1, readings=readings)
                    for d in device_ids]  # fmt: skip
        with transaction(sessions) as db:
            result = ingest_bulk(
                db_session=db, messages=messages, ctx=CTX, now=at(1), directory=directory
            )
        directory.remember(result.devices)
        return result

    register(sessions, "pos-1", site="hb")
    first = batch("pos-1", "pos-2")
    assert first.devices == {"pos-1": ("hb", "pos-terminal")}
    assert [exc.reason for _i, exc in first.rejected] == [Rejection.UNKNOWN_DEVICE]
    register(sessions, "pos-2", site="hb")  # registered now: accepted at once
    register(sessions, "pos-1", site="west")  # moved: seen once the directory forgets
    second = batch("pos-1", "pos-2")
    assert not second.rejected
    assert second.devices == {"pos-1": ("hb", "pos-terminal"), "pos-2": ("hb", "pos-terminal")}
    clock[0] = 31
    assert batch("pos-1").devices == {"pos-1": ("west", "pos-terminal")}


def test_concurrent_batches_over_the_same_devices_do_not_deadlock(sessions) -> None:
    """Two workers' batches name the same devices in opposite orders: rows are written in key
    order, so on PostgreSQL one batch waits for the other instead of both being killed as a
    deadlock (what made two workers slower than one)."""
    device_ids = [f"pos-{i:03d}" for i in range(200)]
    register(sessions, *device_ids)
    errors: list[BaseException] = []

    def batch(order: list[str], second: int) -> list[Telemetry | Heartbeat]:
        when = at(1 + second / 60)
        readings = [Reading(name=f"s{k}", value=float(k), timestamp=when) for k in range(3)]
        messages: list[Telemetry | Heartbeat] = [
            Telemetry(device_id=d, timestamp=when, seq=second, readings=readings) for d in order
        ]
        return messages + [
            Heartbeat(
                device_id=d, timestamp=when, seq=second, agent_version="1", profile="pos-terminal"
            )
            for d in order
        ]

    def worker(order: list[str]) -> None:
        try:
            for second in range(10):
                with transaction(sessions) as db:
                    ingest_bulk(db_session=db, messages=batch(order, second), ctx=CTX, now=at(2))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(order,))
        for order in (device_ids, list(reversed(device_ids)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(LatestReading)) == 600
