"""The ingest use case: one validated message, one transaction, idempotent by message id."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cloud.devices import service as devices
from cloud.ingest.models import IngestedMessage
from cloud.tickets import service as tickets
from cloud.tickets.rules import TicketDraft, draft_from_button, draft_from_fault
from contracts import ButtonEvent, FaultEvent, Heartbeat, Status, UplinkMessage

_LOGGER = logging.getLogger(__name__)
# Events the agent keeps in its outbox until the cloud confirms them.
CONFIRMED_TYPES = frozenset({"button", "fault"})


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to one message; `receipt` says the device should get a receipt."""

    message_id: str
    device_id: str
    duplicate: bool
    receipt: bool
    ticket_id: int | None = None


def already_ingested(*, db_session: Session, message_id: str) -> IngestedMessage | None:
    """The record of an earlier delivery of this message, if any."""
    return db_session.get(IngestedMessage, message_id)


def ingest(*, db_session: Session, message: UplinkMessage, now: datetime) -> IngestResult:
    """Apply one message. The caller commits; a concurrent duplicate fails on the primary key."""
    previous = already_ingested(db_session=db_session, message_id=message.message_id)
    receipt = message.type in CONFIRMED_TYPES
    if previous is not None:
        return IngestResult(
            message.message_id, message.device_id, True, receipt, previous.ticket_id
        )
    profile = message.profile if isinstance(message, Status | Heartbeat) else None
    device = devices.seen(
        db_session=db_session, device_id=message.device_id, at=message.timestamp, profile=profile
    )
    if isinstance(message, Status):
        device.presence = message.state
    if isinstance(message, Heartbeat):
        device.agent_version = message.agent_version
        device.presence = "online"
    ticket_id = _open_ticket_for(db_session, message, now)
    db_session.add(
        IngestedMessage(
            message_id=message.message_id,
            device_id=message.device_id,
            type=message.type,
            seq=message.seq,
            received_at=now,
            ticket_id=ticket_id,
        )
    )
    db_session.flush()
    return IngestResult(message.message_id, message.device_id, False, receipt, ticket_id)


def _open_ticket_for(db_session: Session, message: UplinkMessage, now: datetime) -> int | None:
    draft: TicketDraft | None = None
    if isinstance(message, ButtonEvent):
        draft = draft_from_button(message)
    elif isinstance(message, FaultEvent):
        draft = draft_from_fault(message)
    if draft is None:
        return None
    ticket = tickets.open_ticket(
        db_session=db_session,
        draft=draft,
        device_id=message.device_id,
        opened_at=message.timestamp,
        source_message_id=message.message_id,
        now=now,
    )
    _LOGGER.info(
        "ticket %d opened: %s (device=%s message=%s)",
        ticket.id,
        draft.category,
        message.device_id,
        message.message_id,
    )
    return ticket.id
