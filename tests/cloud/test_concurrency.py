"""Two ingest workers on a shared subscription, 10,000 messages with duplicates, redeliveries
(a worker stopped mid-stream and restarted) and garbage: exactly the expected tickets, on
PostgreSQL and on SQLite. Unique constraints and row locks, not luck.

Refused messages carry no id to recognise them by: one the stopped worker had quarantined
but not yet acknowledged comes back and is quarantined again. So the quarantine must hold
every garbage message at least once, and no more extra copies than the broker can have had
in flight to the stopped worker."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from cloud.adapters.mqtt import RECEIVE_MAXIMUM
from cloud.clock import utc_now
from cloud.config import CloudSettings
from cloud.ingest.models import IngestedMessage
from cloud.quarantine.models import QuarantinedMessage
from cloud.tickets.models import Ticket
from cloud.tickets.taxonomy import load_taxonomy
from cloud.worker import IngestWorker
from contracts import Channel, Reading, Telemetry, encode, uplink_topic
from crowdfix.brokers import MosquittoBroker
from mqttlink import BrokerSettings, MqttLink
from tests.cloud.factories import at, fault, press, register
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("one-at-a-time")]
DEVICES = [f"dev-{i:03d}" for i in range(100)]
CATEGORIES = ["till", "receipt-printer", "network", "kiosk-printer"]
CODES = ["temperature-high", "door-left-open", "router-down", "power-failure"]
EVENTS, DUPLICATES, TELEMETRY, GARBAGE = 6000, 2000, 1000, 1000


Message = tuple[str, bytes]  # topic, payload


def workload(rng: random.Random) -> tuple[list[Message], set[tuple[str, str]], int, list[Message]]:
    """10,000 (topic, payload) pairs, the (device, ticket category) pairs they must open,
    how many occurrences the tickets must count in all (every press, and the first raise of
    each (device, fault code): a fault already raised is not raised again), and the garbage
    among them."""
    taxonomy = load_taxonomy()
    base = utc_now() - timedelta(minutes=2)  # recent: the devices count as online
    events, expected, raised = [], set(), set()
    presses = 0
    for i in range(EVENTS):
        device = rng.choice(DEVICES)
        if rng.random() < 0.6:
            category = rng.choice(CATEGORIES)
            message = press(
                device, category, rng.choice(["request", "urgent"]), i / 1000, base=base
            )
            expected.add((device, taxonomy.for_button(category).name))
            presses += 1
        else:  # raises only: order-independent, they all join one ticket per problem
            code = rng.choice(CODES)
            message = fault(device, code, minutes=i / 1000, base=base)
            expected.add((device, taxonomy.for_fault(code).name))
            raised.add((device, code))
        events.append((uplink_topic(device, Channel(message.type)), encode(message)))
    duplicates = [rng.choice(events) for _ in range(DUPLICATES)]
    telemetry = []
    for i in range(TELEMETRY):
        device = rng.choice(DEVICES)
        t = Telemetry(
            device_id=device,
            timestamp=at(i / 1000, base),
            seq=10**6 + i,
            readings=[
                Reading(name="temp_c", value=rng.uniform(2, 9), timestamp=at(i / 1000, base))
            ],
        )
        telemetry.append((uplink_topic(device, Channel.TELEMETRY), encode(t)))
    garbage = [_garbage(rng, i) for i in range(GARBAGE)]
    messages = events + duplicates + telemetry + garbage
    rng.shuffle(messages)
    return messages, expected, presses + len(raised), garbage


def _garbage(rng: random.Random, i: int) -> tuple[str, bytes]:
    device = rng.choice(DEVICES)
    kind = i % 4
    if kind == 0:
        return uplink_topic(device, Channel.BUTTON), b"{not json" + bytes([i % 256])
    if kind == 1:
        return uplink_topic(device, Channel.FAULT), json.dumps({"schema_version": 1}).encode()
    if kind == 2:  # spoofing: another device's topic
        other = next(d for d in DEVICES if d != device)
        return uplink_topic(other, Channel.BUTTON), encode(press(device, base=utc_now()))
    return uplink_topic("ghost-device", Channel.BUTTON), encode(
        press("ghost-device", base=utc_now())
    )


class Publisher:
    """Several connections publishing in parallel (one paho publisher tops out near 10k/s)."""

    def __init__(self, url: str, n: int = 4) -> None:
        self.links = [MqttLink(BrokerSettings.from_url(url), f"load-{i}") for i in range(n)]

    def publish(self, messages: list[tuple[str, bytes]]) -> None:
        for link in self.links:
            link.start()
            assert link.wait_connected(10), link.last_error
        chunks = [messages[i :: len(self.links)] for i in range(len(self.links))]
        threads = [
            threading.Thread(target=self._send, args=(link, chunk))
            for link, chunk in zip(self.links, chunks, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    @staticmethod
    def _send(link: MqttLink, chunk: list[tuple[str, bytes]]) -> None:
        for topic, payload in chunk:
            wait_for(lambda t=topic, p=payload: link.publish(t, p, qos=1).sent, 30, "publish")

    def stop(self) -> None:
        for link in self.links:
            link.stop()


@pytest.fixture
def workers(mosquitto: MosquittoBroker, database_url: str, sessions) -> Iterator[list]:
    settings = CloudSettings(
        database_url=database_url, mqtt_url=mosquitto.url, sweep_interval_s=3600, metrics_port=0
    )
    running = [
        IngestWorker(settings.model_copy(update={"ingest_client_id": f"w{i}"}), sessions)
        for i in (1, 2)
    ]
    for worker in running:
        worker.start()
        assert worker.mqtt.link.wait_subscribed(10)
    yield running
    for worker in running:
        worker.stop()


def _count(sessions, model) -> int:
    with sessions() as db:
        return db.scalar(select(func.count()).select_from(model)) or 0


def test_two_workers_produce_exactly_the_expected_tickets(
    mosquitto: MosquittoBroker, sessions, workers: list[IngestWorker]
) -> None:
    register(sessions, *DEVICES)
    messages, expected, occurrences, garbage_sent = workload(random.Random(42))
    assert len(messages) == 10_000
    garbage = Counter(garbage_sent)
    publisher = Publisher(mosquitto.url)
    half = len(messages) // 2
    try:
        publisher.publish(messages[:half])
        # Stop one worker mid-stream (what it received but did not acknowledge stays with the
        # broker) and start it again under the same client id: it gets those again.
        workers[0].stop(drain=False)  # as if it crashed
        workers[0] = IngestWorker(workers[0]._settings, sessions)
        workers[0].start()
        publisher.publish(messages[half:])
        wait_for(
            lambda: (
                _count(sessions, IngestedMessage) == EVENTS
                and not garbage - _quarantined(sessions)  # each at least as often as sent
            ),
            300,
            "all 10,000 handled",
        )
    finally:
        publisher.stop()
    with sessions() as db:
        tickets = db.scalars(select(Ticket)).all()
    assert {(t.device_id, t.category) for t in tickets} == expected
    assert len(tickets) == len(expected), "one ticket per device and problem, never two"
    assert sum(t.occurrences for t in tickets) == occurrences, "each event counted exactly once"
    assert sum(w.stats.tickets_opened for w in workers) <= len(expected)
    again = sum(_quarantined(sessions).values()) - GARBAGE
    assert 0 <= again <= RECEIVE_MAXIMUM, "only what the stopped worker held comes back"
    with sessions() as db:
        reasons = dict(
            db.execute(
                select(QuarantinedMessage.reason, func.count()).group_by(QuarantinedMessage.reason)
            ).all()
        )
    assert set(reasons) == {
        "malformed_json",
        "schema_violation",
        "device_mismatch",
        "unknown_device",
    }
    assert sum(reasons.values()) == GARBAGE + again and min(reasons.values()) >= 250


def _quarantined(sessions) -> Counter[tuple[str, bytes]]:
    with sessions() as db:
        rows = db.execute(select(QuarantinedMessage.topic, QuarantinedMessage.payload)).all()
    return Counter((topic, bytes(payload)) for topic, payload in rows)
