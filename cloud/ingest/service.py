"""The ingest use cases: validated device messages become devices, tickets and telemetry.

Events (button, fault, status) are handled one per transaction, idempotent by message id.
Bulk messages (telemetry, heartbeats) are handled a batch per transaction; they are
idempotent by nature (latest-wins updates, insert-or-ignore buckets).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from cloud.devices import service as devices
from cloud.devices.models import Device, DeviceFault
from cloud.devices.presence import Presence, offline_ticket_due, presence
from cloud.devices.schemas import DeviceIn
from cloud.ingest.models import IngestedMessage
from cloud.telemetry import service as telemetry
from cloud.telemetry.service import Sample
from cloud.tickets import engine
from cloud.tickets.taxonomy import Taxonomy
from contracts import (
    ButtonEvent,
    ContractViolation,
    FaultEvent,
    FaultState,
    Heartbeat,
    Rejection,
    Severity,
    Status,
    Telemetry,
)

_LOGGER = logging.getLogger(__name__)
EventMessage = ButtonEvent | FaultEvent | Status
BulkMessage = Telemetry | Heartbeat


@dataclass(frozen=True, slots=True)
class IngestContext:
    """Policy the ingest path applies."""

    taxonomy: Taxonomy
    max_clock_skew: timedelta = timedelta(minutes=5)
    auto_register: bool = False


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to one event; `receipt` says the device should get a receipt."""

    message_id: str
    device_id: str
    duplicate: bool
    receipt: bool
    ticket_id: int | None = None
    opened: bool = False
    category: str | None = None


def check_clock(message: EventMessage | BulkMessage, now: datetime, ctx: IngestContext) -> None:
    """Refuse timestamps absurdly far in the future (a device clock gone wrong)."""
    if message.timestamp > now + ctx.max_clock_skew:
        ahead = (message.timestamp - now).total_seconds()
        raise ContractViolation(
            Rejection.FUTURE_TIMESTAMP,
            f"timestamp {message.timestamp.isoformat()} is {ahead:.0f}s ahead of the cloud's "
            f"clock (more than {ctx.max_clock_skew.total_seconds():.0f}s): fix the device's NTP",
        )


def known_device(db_session: Session, device_id: str, ctx: IngestContext, now: datetime) -> Device:
    """The registered device (row-locked: one device's events are applied one at a time)."""
    device = devices.get(db_session=db_session, device_id=device_id, lock=True)
    if device is not None:
        return device
    if ctx.auto_register:
        return devices.register(db_session=db_session, device_in=DeviceIn(id=device_id), now=now)
    raise ContractViolation(
        Rejection.UNKNOWN_DEVICE,
        f"device {device_id!r} is not registered: provision it (crowdfix provision device) "
        "or register it (PUT /api/devices/{id})",
    )


def ingest_event(
    *, db_session: Session, message: EventMessage, ctx: IngestContext, now: datetime
) -> IngestResult:
    """Apply one event. The caller commits; a concurrent duplicate fails on the primary key."""
    check_clock(message, now, ctx)
    if isinstance(message, Status):
        device = known_device(db_session, message.device_id, ctx, now)
        devices.apply_status(
            device, message.state, message.timestamp, message.profile, message.agent_version
        )
        devices.refresh_presence(device, now, ctx.taxonomy.presence)
        return IngestResult(message.message_id, message.device_id, False, False)
    previous = db_session.get(IngestedMessage, message.message_id)
    if previous is not None:
        return IngestResult(message.message_id, message.device_id, True, True, previous.ticket_id)
    device = known_device(db_session, message.device_id, ctx, now)
    devices.seen(device, message.timestamp)
    site = devices.site_of(db_session=db_session, device=device)
    if isinstance(message, ButtonEvent):
        outcome = engine.on_button(
            db_session=db_session,
            taxonomy=ctx.taxonomy,
            device=device,
            site=site,
            event=message,
            now=now,
        )
    else:
        outcome = engine.on_fault(
            db_session=db_session,
            taxonomy=ctx.taxonomy,
            device=device,
            site=site,
            fault=_fault_report(message),
            now=now,
        )
    # Recorded last, in one INSERT with its ticket: a concurrent duplicate fails on the
    # primary key at commit, is retried, and then finds this record.
    record = _record(message, ctx, now, outcome.ticket_id if outcome else None)
    db_session.add(record)
    return IngestResult(
        message.message_id,
        message.device_id,
        False,
        True,
        record.ticket_id,
        outcome is not None and outcome.opened,
        outcome.category if outcome else None,
    )


def _record(
    message: ButtonEvent | FaultEvent, ctx: IngestContext, now: datetime, ticket_id: int | None
) -> IngestedMessage:
    """The idempotency record of an event (its message id is the primary key)."""
    if isinstance(message, ButtonEvent):
        action, problem = message.action.value, ctx.taxonomy.for_button(message.category).name
    else:
        action, problem = message.state.value, ctx.taxonomy.for_fault(message.code).name
    return IngestedMessage(
        message_id=message.message_id,
        device_id=message.device_id,
        type=message.type,
        seq=message.seq,
        action=action,
        problem_key=problem,
        received_at=now,
        ticket_id=ticket_id,
    )


def _fault_report(message: FaultEvent) -> engine.FaultReport:
    return engine.FaultReport(
        code=message.code,
        raised=message.state is FaultState.RAISED,
        severity=message.severity,
        summary=message.summary,
        readings=dict(message.readings),
        at=message.timestamp,
        seq=message.seq,
        source_message_id=message.message_id,
    )


# -- bulk --------------------------------------------------------------------------------


@dataclass
class BulkResult:
    """What a batch did: rejected messages (by index) and the samples stored."""

    rejected: list[tuple[int, ContractViolation]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    buckets: list[telemetry.BucketKey] = field(default_factory=list)
    devices: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


def ingest_bulk(
    *,
    db_session: Session,
    messages: Sequence[BulkMessage],
    ctx: IngestContext,
    now: datetime,
    written: telemetry.WrittenBuckets | None = None,
    directory: DeviceDirectory | None = None,
) -> BulkResult:
    """Apply telemetry and heartbeats in one go; refused ones are returned, not raised."""
    result = BulkResult()
    ids = {m.device_id for m in messages}
    known = directory.known(ids) if directory is not None else {}
    if missing := ids - known.keys():
        known |= _devices_of(db_session, missing, ctx, now)
    newest: dict[str, datetime] = {}
    beats: dict[str, tuple[datetime, dict[str, Any]]] = {}
    for index, message in enumerate(messages):
        try:
            check_clock(message, now, ctx)
            if message.device_id not in known:
                known_device(db_session, message.device_id, ctx, now)  # raises: unknown
        except ContractViolation as exc:
            result.rejected.append((index, exc))
            continue
        if message.device_id not in newest or message.timestamp > newest[message.device_id]:
            newest[message.device_id] = message.timestamp
        if isinstance(message, Telemetry):
            result.samples.extend(
                Sample(message.device_id, r.name, r.value, r.unit, r.timestamp)
                for r in message.readings
            )
        elif message.device_id not in beats or message.timestamp > beats[message.device_id][0]:
            beats[message.device_id] = (message.timestamp, _heartbeat_values(message))
    result.buckets = telemetry.store(db_session=db_session, samples=result.samples, written=written)
    devices.mark_seen(db_session=db_session, newest=newest)
    devices.apply_heartbeats(db_session=db_session, beats=[v for _, v in beats.values()])
    result.devices = known
    return result


class DeviceDirectory:
    """Site and profile of registered devices for the bulk path, kept in memory so a batch
    needs no query for devices it has seen: it learns only what a committed batch found
    (remember), and forgets everything every TTL, so a device moved to another site is
    tagged with it within the TTL. Unknown ids are asked of the database on every batch."""

    def __init__(self, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, tuple[str | None, str | None]] = {}
        self._ttl_s = ttl_s
        self._clock = clock
        self._loaded_at = clock()

    def known(self, ids: set[str]) -> dict[str, tuple[str | None, str | None]]:
        """The remembered ones among ids."""
        if self._clock() - self._loaded_at > self._ttl_s:
            self._entries, self._loaded_at = {}, self._clock()
        entries = self._entries
        return {i: entries[i] for i in ids if i in entries}

    def remember(self, devices: Mapping[str, tuple[str | None, str | None]]) -> None:
        """Devices a committed batch found registered."""
        self._entries.update(devices)


def _devices_of(
    db_session: Session, ids: set[str], ctx: IngestContext, now: datetime
) -> dict[str, tuple[str | None, str | None]]:
    rows = db_session.execute(
        select(Device.id, Device.site_id, Device.profile).where(Device.id.in_(ids))
    ).all()
    known = {row[0]: (row[1], row[2]) for row in rows}
    if ctx.auto_register:
        for device_id in ids - set(known):
            devices.register(db_session=db_session, device_in=DeviceIn(id=device_id), now=now)
            known[device_id] = (None, None)
    return known


def _heartbeat_values(message: Heartbeat) -> dict[str, Any]:
    return {
        "b_id": message.device_id,
        "b_version": message.agent_version,
        "b_profile": message.profile,
        "b_hash": message.config_hash,
        "b_backlog": message.backlog,
        "b_oldest": message.oldest_pending_s,
        "b_dropped": message.telemetry_dropped,
        "b_interval": message.interval_s,
    }


# -- presence ----------------------------------------------------------------------------


def sweep_device(
    *, db_session: Session, device: Device, ctx: IngestContext, now: datetime
) -> engine.Outcome | None:
    """Presence of one device; an offline device past its grace period gets a ticket, and a
    returning one clears it."""
    policy = ctx.taxonomy.presence
    if devices.refresh_presence(device, now, policy):
        _LOGGER.info("device %s is %s", device.id, device.presence)
    record = devices.fault(db_session=db_session, device_id=device.id, code=engine.OFFLINE_CODE)
    since = device.presence_since
    if device.presence == Presence.OFFLINE and not record.active and not device.maintenance:
        if not offline_ticket_due(now, since, policy):
            return None
        summary = f"No word from the device since {since or now:%Y-%m-%d %H:%M:%S} UTC"
        fault = engine.FaultReport(
            engine.OFFLINE_CODE, True, Severity.MAJOR, summary, {}, since or now, -1, None
        )
    elif device.presence == Presence.ONLINE and record.active:
        fault = engine.FaultReport(
            engine.OFFLINE_CODE,
            False,
            Severity.MAJOR,
            "the device is back",
            {},
            device.last_seen_at or now,
            -1,
            None,
        )
    else:
        return None
    site = devices.site_of(db_session=db_session, device=device)
    return engine.on_fault(
        db_session=db_session, taxonomy=ctx.taxonomy, device=device, site=site, fault=fault, now=now
    )


def presence_candidates(*, db_session: Session, ctx: IngestContext, now: datetime) -> list[str]:
    """Devices whose presence changes now, or whose offline ticket is due or over (one query;
    only these get a transaction of their own)."""
    policy = ctx.taxonomy.presence
    rows = db_session.execute(
        select(
            Device.id,
            Device.presence,
            Device.presence_since,
            Device.last_seen_at,
            Device.status,
            Device.heartbeat_interval_s,
            Device.maintenance,
            DeviceFault.active,
        ).outerjoin(
            DeviceFault,
            and_(DeviceFault.device_id == Device.id, DeviceFault.code == engine.OFFLINE_CODE),
        )
    ).all()
    due = []
    for row in rows:
        device_id, stored, since, last_seen, status, heartbeat, maintenance, offline_active = row
        current = presence(
            now, last_seen=last_seen, status=status, heartbeat_s=heartbeat, policy=policy
        )
        if (
            current.value != stored
            or (
                current is Presence.OFFLINE
                and not offline_active
                and not maintenance
                and offline_ticket_due(now, since, policy)
            )
            or (current is Presence.ONLINE and offline_active)
        ):
            due.append(device_id)
    return due
