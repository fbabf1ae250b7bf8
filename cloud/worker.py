"""The ingest worker, built in one place: MQTT in, validate, store, receipt out, then ack."""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.adapters.mqtt import CloudMqtt
from cloud.config import CloudSettings
from cloud.db import transaction
from cloud.ingest.service import IngestResult, ingest
from contracts import Command, ContractViolation, Receipt, UplinkMessage, decode_uplink
from mqttlink import Inbound

_LOGGER = logging.getLogger(__name__)
DB_RETRY_MAX_S = 10.0


def utc_now() -> datetime:
    """The cloud's clock."""
    return datetime.now(UTC)


@dataclass
class IngestStats:
    """Counters of one worker."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    tickets_opened: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


def store_message(
    sessions: sessionmaker[Session], message: UplinkMessage, stopping: threading.Event
) -> IngestResult | None:
    """Ingest in its own transaction, retrying while the database is away; None if stopping."""
    attempt = 0
    while not stopping.is_set():
        try:
            with transaction(sessions) as db_session:
                return ingest(db_session=db_session, message=message, now=utc_now())
        except IntegrityError:
            # Another worker stored the same message first: the next pass sees it as a duplicate.
            _LOGGER.info("concurrent duplicate of %s", message.message_id)
        except DBAPIError as exc:
            delay = min(DB_RETRY_MAX_S, 0.2 * 2**attempt)
            _LOGGER.error("database unavailable (%s); retrying in %.1fs", exc.orig, delay)
            stopping.wait(delay)
        attempt += 1
    return None


class IngestWorker:
    """Consumes device messages; a message is acknowledged only after its transaction commits."""

    def __init__(self, settings: CloudSettings, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._inbox: queue.Queue[Inbound] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = IngestStats()
        self.mqtt = CloudMqtt(
            settings.broker(), settings.ingest_client_id, settings.ingest_group, self._inbox.put
        )

    def start(self) -> None:
        """Connect and start processing in a background thread."""
        self._thread = threading.Thread(target=self._serve, name="ingest", daemon=True)
        self._thread.start()
        self.mqtt.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages; what is not acknowledged is redelivered to the next worker."""
        self._stopping.set()
        self.mqtt.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                inbound = self._inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            self.process(inbound)

    def process(self, inbound: Inbound) -> None:
        """Validate, store, send the receipt, then acknowledge one message."""
        self.stats.received += 1
        try:
            message = decode_uplink(inbound.topic, inbound.payload)
        except ContractViolation as exc:
            self.stats.rejected[exc.reason.value] += 1
            _LOGGER.warning("rejected message on %s: %s", inbound.topic, exc)
            self.mqtt.ack(inbound)
            return
        result = store_message(self._sessions, message, self._stopping)
        if result is None:
            return  # stopping before the database came back: the broker redelivers it
        if result.duplicate:
            self.stats.duplicates += 1
        else:
            self.stats.accepted += 1
            self.stats.tickets_opened += result.ticket_id is not None
        if result.receipt:
            self._send_receipt(result)
        self.mqtt.ack(inbound)

    def _send_receipt(self, result: IngestResult) -> None:
        receipt = Receipt(
            device_id=result.device_id,
            timestamp=utc_now(),
            message_ids=[result.message_id],
            ticket_id=result.ticket_id,
        )
        if not self.mqtt.send(result.device_id, Command.RECEIPT, receipt):
            _LOGGER.warning("receipt for %s not sent (not connected)", result.message_id)
