"""The ingest worker, built in one place.

Two paths so a burst of telemetry never delays a button press:
- events (button, fault, status): one message, one transaction; the receipt goes out after
  the commit, then the broker gets its acknowledgement;
- bulk (telemetry, heartbeats): drained in batches, one transaction per batch, acknowledged
  after the commit; InfluxDB gets the batch afterwards.
A housekeeping thread relays queued commands (feedback), sweeps presence, runs the
dispatcher, raises and clears operators' alerts and prunes; a webhook thread POSTs
technicians' notices and operators' alerts (retried with a backoff, given up once out of
date), so a slow or dead webhook never holds up a device's feedback.
Bad input is quarantined with its reason and acknowledged; the worker keeps running.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.adapters.influx import InfluxSink
from cloud.adapters.mqtt import CloudMqtt
from cloud.alerts import service as alerts
from cloud.clock import utc_now
from cloud.config import CloudSettings
from cloud.db import transaction
from cloud.devices import service as devices
from cloud.dispatch import ratings
from cloud.dispatch import service as dispatcher
from cloud.dispatch.models import Technician
from cloud.ingest.service import (
    BulkMessage,
    DeviceDirectory,
    EventMessage,
    IngestContext,
    IngestResult,
    ingest_bulk,
    ingest_event,
    presence_candidates,
    sweep_device,
)
from cloud.metrics import metrics
from cloud.outbound import delivery, signing
from cloud.outbound import service as outbound
from cloud.quarantine import service as quarantine
from cloud.telemetry import service as telemetry
from cloud.tickets.taxonomy import Taxonomy
from contracts import Command, ContractViolation, Receipt, decode_uplink
from mqttlink import Inbound

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
DB_RETRY_MAX_S = 10.0
BULK_MAX = 500  # messages per bulk transaction (short transactions: events wait less)
BULK_WAIT_S = 0.05  # how long a bulk batch may gather
RELAY_EVERY_S = 0.2
MAX_CHANNEL_LABELS = 16
PRUNE_EVERY_S = 600.0
YIELD_EVERY = 50  # bulk messages between looks at whether an event is waiting
DISPATCH_EVERY_S = 1.0
ALERTS_EVERY_S = 10.0  # on-site clocks run in minutes
WEBHOOK_TIMEOUT_S = 2.0
DELIVERY_HEADER = "X-Crowdfix-Delivery"  # the same on every try of one notice: dedupe by it
BULK_CHANNELS = ("telemetry", "heartbeat")
DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
DRAIN_SETTLE_S = 0.3
# Young-generation collections every 10,000 allocations instead of 700 (each message makes
# dozens of short-lived objects, nearly none of them in cycles); older ones accordingly.
GC_THRESHOLDS = (10_000, 20, 20)


@dataclass
class IngestStats:
    """Counters of one worker (tests and logs; Prometheus has the process totals)."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    tickets_opened: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


def settle_heap() -> None:
    """Tune the garbage collector of a worker process once it is set up: what exists now
    (modules, schemas, the ORM's mappings) is frozen out of every later collection, and the
    young generation is collected less often. The collector's passes over a heap it cannot
    free cost a third of a telemetry message's processing otherwise (python -m bench ingest)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class IngestWorker:
    """Consumes device messages; a message is acknowledged only after its transaction commits."""

    def __init__(
        self,
        settings: CloudSettings,
        sessions: sessionmaker[Session],
        *,
        taxonomy: Taxonomy | None = None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self.ctx = IngestContext(
            taxonomy or settings.taxonomy(),
            max_clock_skew=timedelta(seconds=settings.max_clock_skew_s),
            auto_register=settings.auto_register,
        )
        self._events: queue.Queue[Inbound] = queue.Queue()
        self._bulk = Batches()
        self._stopping = threading.Event()
        self._event_busy = threading.Event()  # an event is being handled: bulk work waits
        self._rules = settings.dispatch_policy()
        # The technicians' answers and profiles, kept across rounds.
        self._answers = dispatcher.AnswerBook()
        self._profiles = dispatcher.ProfileBook()
        self._alert_channel = settings.alert_channel()
        self._alerts_resent = 0.0  # (monotonic) when alerts that hold are next sent again
        self._threads: list[threading.Thread] = []
        self.stats = IngestStats()
        self._written = telemetry.WrittenBuckets()
        self._directory = DeviceDirectory()
        sqlite = sessions.kw["bind"].dialect.name == "sqlite"
        self._sqlite_gate: threading.Lock | None = threading.Lock() if sqlite else None
        self._metrics = metrics()
        self._counters: dict[str, Any] = {}
        self._influx = _influx(settings)
        self.mqtt = CloudMqtt(
            settings.broker(),
            settings.ingest_client_id,
            settings.ingest_group,
            self._route,
            session_expiry_s=settings.ingest_session_expiry_s,
        )
        self.mqtt.link.subscribe(DROPPED_TOPIC, qos=0)

    def start(self) -> None:
        """Start the processing threads, then connect."""
        for name, target in (
            ("ingest-events", self._serve_events),
            ("ingest-bulk", self._serve_bulk),
            ("housekeeping", self._housekeeping),
            ("webhooks", self._serve_webhooks),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.mqtt.start()

    def stop(self, timeout: float = 10.0, *, drain: bool = True) -> None:
        """Stop. drain (a graceful stop): leave the shared subscription, finish and acknowledge
        what was received, and end the broker session, so no message waits for a worker that
        is gone (Mosquitto keeps handing a share to offline members of a group). Without it
        (as after a crash) what is unacknowledged waits in the session for this client id."""
        if drain and self.mqtt.link.connected:
            self.mqtt.leave()
            self._drain_queues(timeout)
        self._stopping.set()
        self.mqtt.stop(end_session=drain)
        for thread in self._threads:
            thread.join(timeout)
        if self._influx is not None:
            self._influx.close()

    def _drain_queues(self, timeout: float) -> None:
        """Wait until what was delivered before leaving is processed (or timeout)."""
        deadline = time.monotonic() + timeout
        time.sleep(DRAIN_SETTLE_S)  # deliveries already on the wire when we left
        while time.monotonic() < deadline and (
            self._events.unfinished_tasks or self._bulk.unfinished
        ):
            time.sleep(0.05)

    # -- routing (paho's thread: only enqueue) ----------------------------------------------

    def _route(self, inbound: Inbound) -> None:
        if inbound.topic == DROPPED_TOPIC:
            self._broker_dropped(inbound.payload)
            return
        channel = inbound.topic.rsplit("/", 1)[-1]
        counter = self._counters.get(channel)
        if counter is None:  # labels() costs more than the count: one child per channel,
            # and a bounded number of them (a device chooses its topic's last level)
            known = channel.isidentifier() and len(self._counters) < MAX_CHANNEL_LABELS
            counter = self._metrics.messages.labels(channel if known else "other")
            if known:
                self._counters[channel] = counter
        counter.inc()
        (self._bulk if channel in BULK_CHANNELS else self._events).put(inbound)

    def _broker_dropped(self, payload: bytes) -> None:
        with contextlib.suppress(ValueError):
            self._metrics.broker_dropped.set(float(payload))

    # -- the event path ---------------------------------------------------------------------

    def _serve_events(self) -> None:
        while not self._stopping.is_set():
            try:
                inbound = self._events.get(timeout=0.5)
            except queue.Empty:
                continue
            self._event_busy.set()
            try:
                self.process(inbound)
            finally:
                self._events.task_done()
                if not self._events.unfinished_tasks:
                    self._event_busy.clear()

    def process(self, inbound: Inbound) -> None:
        """Validate, store, send the receipt, then acknowledge one event."""
        started = inbound.received or time.monotonic()
        self.stats.received += 1
        try:
            message = decode_uplink(inbound.topic, inbound.payload)
            result = self._retrying(
                lambda db: ingest_event(
                    db_session=db, message=_event(message), ctx=self.ctx, now=utc_now()
                )
            )
        except ContractViolation as exc:
            self._quarantine([(inbound, exc)])
            self.mqtt.ack(inbound)
            self._metrics.processed.labels("event").inc()
            return
        except _Stopping:
            return  # not acknowledged: the broker redelivers it
        self._count(result)
        if result.receipt:
            self._send_receipt(result)
        self.mqtt.ack(inbound)
        self._metrics.processed.labels("event").inc()
        self._metrics.latency.labels("event").observe(time.monotonic() - started)

    def _count(self, result: IngestResult) -> None:
        if result.duplicate:
            self.stats.duplicates += 1
            self._metrics.duplicates.inc()
            return
        self.stats.accepted += 1
        if result.opened:
            self.stats.tickets_opened += 1
            self._metrics.tickets_opened.labels(result.category or "").inc()

    def _send_receipt(self, result: IngestResult) -> None:
        receipt = Receipt(
            device_id=result.device_id,
            timestamp=utc_now(),
            message_ids=[result.message_id],
            ticket_id=result.ticket_id,
        )
        if not self.mqtt.send(result.device_id, Command.RECEIPT, receipt):
            _LOGGER.warning(
                "receipt for %s not sent (not connected); the device will resend", result.message_id
            )

    # -- the bulk path ----------------------------------------------------------------------

    def _serve_bulk(self) -> None:
        while not self._stopping.is_set():
            batch = self._bulk.take(BULK_MAX, BULK_WAIT_S)
            while self._events.unfinished_tasks and not self._stopping.is_set():
                time.sleep(0.001)  # events first: a telemetry burst never delays a press
            if batch:
                self._metrics.queue_depth.labels("bulk").set(self._bulk.qsize())
                try:
                    self.process_bulk(batch)
                finally:
                    self._bulk.done(len(batch))

    def process_bulk(self, batch: list[Inbound]) -> None:
        """Validate and store a batch in one transaction, then acknowledge all of it."""
        started = min((i.received for i in batch if i.received), default=time.monotonic())
        self.stats.received += len(batch)
        good: list[tuple[Inbound, BulkMessage]] = []
        bad: list[tuple[Inbound, ContractViolation]] = []
        for n, inbound in enumerate(batch):
            if n % YIELD_EVERY == 0:
                self._yield_to_events()
            try:
                good.append((inbound, _bulk(decode_uplink(inbound.topic, inbound.payload))))
            except ContractViolation as exc:
                bad.append((inbound, exc))
        try:
            result = self._retrying(
                lambda db: ingest_bulk(
                    db_session=db,
                    messages=[m for _, m in good],
                    ctx=self.ctx,
                    now=utc_now(),
                    written=self._written,
                    directory=self._directory,
                )
            )
        except _Stopping:
            return
        self._written.add(result.buckets)
        self._directory.remember(result.devices)
        bad += [(good[index][0], exc) for index, exc in result.rejected]
        if bad:
            self._quarantine(bad)
        self.stats.accepted += len(good) - len(result.rejected)
        if self._influx is not None and result.samples:
            self._influx.write(result.samples, result.devices)
        self._yield_to_events()
        self.mqtt.ack_many(batch)  # one write for the batch's PUBACKs
        self._metrics.processed.labels("bulk").inc(len(batch))
        self._metrics.latency.labels("bulk").observe(time.monotonic() - started)

    def _yield_to_events(self) -> None:
        """Telemetry work steps aside while a press or fault is being handled: the two
        threads share one interpreter lock, and every database call of the event hands it
        over and waits to get it back."""
        while self._event_busy.is_set() and not self._stopping.is_set():
            time.sleep(0.0005)

    # -- housekeeping -----------------------------------------------------------------------

    def _housekeeping(self) -> None:
        next_sweep = next_prune = next_dispatch = next_alerts = time.monotonic()
        while not self._stopping.wait(RELAY_EVERY_S):
            now = time.monotonic()
            self._guard(self.relay)
            if now >= next_dispatch and self._settings.dispatch:
                self._guard(self.dispatch)
                next_dispatch = now + DISPATCH_EVERY_S
            if now >= next_alerts:
                self._guard(self.raise_alerts)
                next_alerts = now + ALERTS_EVERY_S
            if now >= next_sweep:
                self._guard(self.sweep)
                next_sweep = now + self._settings.sweep_interval_s
            if now >= next_prune:
                self._guard(self.prune)
                next_prune = now + PRUNE_EVERY_S

    def relay(self) -> int:
        """Publish queued commands (feedback to devices) and technicians' notices on MQTT; a
        notice past its expiry is given up. Returns how many went out."""
        if not self.mqtt.link.connected:
            return 0
        now = utc_now()
        with self._writing(), transaction(self._sessions) as db:
            rows = outbound.claim(db_session=db)
            stale = {r.id for r in rows if r.expires_at is not None and r.expires_at <= now}
            sent = [
                r.id
                for r in rows
                if r.id not in stale
                and self.mqtt.link.publish(r.topic, r.payload, 1, r.retain).sent
            ]
            outbound.mark_sent(db_session=db, ids=sent, now=now)
            outbound.give_up(
                db_session=db, ids=sorted(stale), now=now, error="out of date before publishing"
            )
        return len(sent)

    def _serve_webhooks(self) -> None:
        while not self._stopping.wait(RELAY_EVERY_S):
            self._guard(self.relay_webhooks)

    def relay_webhooks(self) -> int:
        """POST the webhook notices that are due, signed, outside any transaction (a lease
        keeps other relays off them meanwhile); record what was delivered, what is to be tried
        again and when, and what was given up. Returns how many were delivered."""
        with self._writing(), transaction(self._sessions) as db:
            batch = outbound.lease_webhooks(db_session=db, now=utc_now())
            ids = {hook.technician_id for hook in batch if hook.technician_id}
            key = self._settings.webhook_signing_key()
            techs = db.scalars(select(Technician).where(Technician.id.in_(ids)))
            secrets = {tech.id: dispatcher.webhook_secret(tech, key) for tech in techs}
            secrets[alerts.SENDER] = self._settings.alert_webhook_signing_secret()
        if not batch:
            return 0

        def post(hook: delivery.Webhook) -> str | None:  # a stopping worker tries no more
            return "the worker stopped first" if self._stopping.is_set() else _post(hook, secrets)

        outcomes = delivery.deliver(batch, post, utc_now())
        with self._writing(), transaction(self._sessions) as db:
            outbound.settle(db_session=db, outcomes=outcomes, now=utc_now())
        for outcome in outcomes:
            self._metrics.webhook_posts.labels(outcome.result.value).inc()
        return sum(o.result is delivery.Result.DELIVERED for o in outcomes)

    def sweep(self) -> None:
        """Presence of every device; offline tickets opened and cleared."""
        with self._sessions() as db:
            due = presence_candidates(db_session=db, ctx=self.ctx, now=utc_now())
        for device_id in due:
            with self._writing(), transaction(self._sessions) as db:
                device = devices.get(db_session=db, device_id=device_id, lock=True)
                if device is not None:
                    sweep_device(db_session=db, device=device, ctx=self.ctx, now=utc_now())

    def dispatch(self) -> int:
        """One dispatcher round (offers, deadlines, cascade); how many offers moved."""
        return dispatcher.run_round(
            sessions=self._sessions,
            now=utc_now,
            rules=self._rules,
            writing=self._writing,
            book=self._answers,
            profiles=self._profiles,
        )

    def raise_alerts(self) -> int:
        """Tell operators of escalations and on-site clocks running out, and when that stops
        holding (each once; on PostgreSQL one worker sweeps at a time). How many alerts were
        raised."""
        channel = self._alert_channel
        # Alertmanager forgets an alert not sent again before its end: those that hold go
        # again every minute.
        resend = channel.format == "alertmanager" and time.monotonic() >= self._alerts_resent
        with self._sessions() as db:  # a look first, without the write lock
            if not resend and not alerts.anything_due(
                db_session=db, now=utc_now(), rules_=self._rules, channel=channel
            ):
                return 0
        with self._writing(), transaction(self._sessions) as db:
            swept = alerts.sweep(
                db_session=db, now=utc_now(), rules_=self._rules, channel=channel, resend=resend
            )
        if resend:
            self._alerts_resent = time.monotonic() + alerts.RESEND.total_seconds()
        kinds = [row.kind for row in swept.raised]
        for kind in kinds:
            self._metrics.alerts.labels(kind).inc()
        for cleared in swept.cleared:
            self._metrics.alerts_cleared.labels(cleared.kind.value).inc()
        if kinds or swept.cleared:
            _LOGGER.info(
                "alerts: %d raised (%s), %d cleared",
                len(kinds), ", ".join(sorted(set(kinds))), len(swept.cleared),
            )  # fmt: skip
        return len(kinds)

    def prune(self) -> None:
        """Forget old telemetry buckets, fault history, sent commands, expired rating links."""
        now = utc_now()
        with self._writing(), transaction(self._sessions) as db:
            telemetry.prune(
                db_session=db, now=now, keep=timedelta(hours=self._settings.recent_window_h)
            )
            devices.prune_fault_history(db_session=db, before=now - timedelta(days=7))
            outbound.prune(db_session=db, now=now, keep=timedelta(days=1))
            ratings.purge_expired(db_session=db, now=now)

    def _guard(self, job: Callable[[], Any]) -> None:
        try:
            job()
        except (IntegrityError, DBAPIError) as exc:
            _LOGGER.warning(
                "housekeeping %s failed (%s); trying again later", job.__name__, exc.orig
            )

    # -- helpers ----------------------------------------------------------------------------

    def _quarantine(self, rejected: list[tuple[Inbound, ContractViolation]]) -> None:
        for inbound, exc in rejected:
            self.stats.rejected[exc.reason.value] += 1
            self._metrics.rejected.labels(exc.reason.value).inc()
            _LOGGER.warning("quarantined message on %s: %s", inbound.topic, exc)

        def keep(db: Session) -> None:
            for inbound, exc in rejected:
                quarantine.add(
                    db_session=db,
                    topic=inbound.topic,
                    payload=inbound.payload,
                    reason=exc.reason,
                    detail=exc.detail,
                    now=utc_now(),
                )

        with contextlib.suppress(_Stopping):
            self._retrying(keep)

    def _writing(self) -> contextlib.AbstractContextManager[object]:
        """SQLite takes one writer at a time and its busy handler sleeps in steps of up to
        100 ms: the worker's threads queue on a lock of their own instead (which wakes at
        once). PostgreSQL locks rows, so its transactions run side by side."""
        return self._sqlite_gate if self._sqlite_gate is not None else contextlib.nullcontext()

    def _retrying(self, work: Callable[[Session], T]) -> T:
        """Run work in a transaction; retry after a lost race or while the database is away."""
        attempt = 0
        while not self._stopping.is_set():
            try:
                with self._writing(), transaction(self._sessions) as db_session:
                    return work(db_session)
            except IntegrityError as exc:
                # Another worker got there first: the next pass sees what it stored.
                _LOGGER.info("lost a race (%s); retrying", type(exc.orig).__name__)
            except DBAPIError as exc:
                delay = min(DB_RETRY_MAX_S, 0.2 * 2**attempt)
                _LOGGER.error("database unavailable (%s); retrying in %.1fs", exc.orig, delay)
                self._stopping.wait(delay)
            attempt += 1
        raise _Stopping


class _Stopping(Exception):
    """The worker stops before the database came back; the message stays unacknowledged."""


def _event(message: object) -> EventMessage:
    assert not isinstance(message, BulkMessage)
    return message  # type: ignore[return-value]


def _bulk(message: object) -> BulkMessage:
    return message  # type: ignore[return-value]


class Batches:
    """The bulk path's queue: put one by one (paho's thread), taken and finished a batch at
    a time (one lock round per batch, not two per message: at thousands of messages a
    second, queue.Queue's per-item locking shows in the profile)."""

    def __init__(self) -> None:
        self._items: deque[Inbound] = deque()
        self._ready = threading.Condition(threading.Lock())
        self.unfinished = 0  # taken or waiting, not yet done
        self._want = 1  # how many the taker waits for: it is woken for the first and the last

    def put(self, item: Inbound) -> None:
        """Add one."""
        with self._ready:
            self._items.append(item)
            self.unfinished += 1
            if len(self._items) in (1, self._want):
                self._ready.notify()

    def qsize(self) -> int:
        """How many wait to be taken."""
        return len(self._items)

    def take(self, limit: int, wait_s: float, first_wait_s: float = 0.5) -> list[Inbound]:
        """Up to limit items: wait (up to first_wait_s) for the first, then up to wait_s for
        the batch to fill."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._items, first_wait_s):
                return []
            deadline = time.monotonic() + wait_s
            self._want = limit
            while len(self._items) < limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._ready.wait(remaining):
                    break
            self._want = 1
            items = self._items
            return [items.popleft() for _ in range(min(limit, len(items)))]

    def done(self, n: int) -> None:
        """n taken items are finished."""
        with self._ready:
            self.unfinished -= n


def _influx(settings: CloudSettings) -> InfluxSink | None:
    if not settings.influx_url:
        return None
    token = settings.influx_token.get_secret_value() if settings.influx_token else ""
    return InfluxSink(settings.influx_url, token, settings.influx_org, settings.influx_bucket)


def _post(hook: delivery.Webhook, secrets: dict[str, str | None]) -> str | None:
    """POST one notice, signed with its technician's secret; None, or what went wrong."""
    headers = {DELIVERY_HEADER: str(hook.id)}
    secret = secrets.get(hook.technician_id or "")
    if secret:
        headers[signing.SIGNATURE_HEADER] = signing.sign(secret, hook.payload, int(time.time()))
    return post_webhook(hook.url, hook.payload, headers)


def post_webhook(url: str, payload: bytes, headers: dict[str, str] | None = None) -> str | None:
    """POST a JSON payload (with these extra headers); None on a 2xx answer, else what was
    wrong (an HTTP status, or why the connection failed)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=payload,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
            if 200 <= response.status < 300:
                return None
            error = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        error = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = str(getattr(exc, "reason", exc))
    _LOGGER.warning("webhook %s failed: %s", url, error)
    return error
