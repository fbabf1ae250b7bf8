"""The paho adapter against real brokers: protocol choice, reconnects, durable sessions, acks."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from crowdfix.brokers import EmbeddedBroker, MosquittoBroker
from mqttlink import BrokerSettings, Inbound, MqttLink, Protocol
from mqttlink import link as link_module
from tests.helpers import wait_for


@pytest.fixture(autouse=True)
def _fast_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link_module, "RECONNECT_MIN_S", 0.05)
    monkeypatch.setattr(link_module, "RECONNECT_MAX_S", 0.3)


@pytest.fixture
def embedded() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker().start()
    yield broker
    broker.stop()


def _link(url: str, client_id: str, inbox: queue.Queue | None = None, **kw) -> MqttLink:
    return MqttLink(
        BrokerSettings.from_url(url), client_id, on_message=inbox.put if inbox else None, **kw
    )


def test_auto_speaks_mqtt5_to_mosquitto_and_311_to_the_embedded_broker(
    mosquitto: MosquittoBroker, embedded: EmbeddedBroker
) -> None:
    for broker, expected in ((mosquitto, Protocol.V5), (embedded, Protocol.V311)):
        inbox: queue.Queue[Inbound] = queue.Queue()
        link = _link(broker.url, "probe", inbox)
        link.subscribe("t/#")
        link.start()
        try:
            assert link.wait_subscribed(10), link.last_error
            assert link.protocol is expected
            wait_for(lambda lk=link: lk.publish("t/x", b"hi").sent, 5, "publish")
            assert inbox.get(timeout=5).payload == b"hi"
        finally:
            link.stop()


def test_reconnects_and_resubscribes_after_the_broker_restarts(mosquitto: MosquittoBroker):
    inbox: queue.Queue[Inbound] = queue.Queue()
    connects: list[int] = []
    sub = _link(mosquitto.url, "sub", inbox, on_connect=connects.append)
    pub = _link(mosquitto.url, "pub")
    sub.subscribe("t/#")
    sub.start()
    pub.start()
    try:
        assert sub.wait_connected(10) and pub.wait_connected(10)
        mosquitto.restart(kill=True)
        wait_for(lambda: len(connects) >= 2 and pub.connected, 20, "reconnect")
        # Resubscribed (the session was clean): a new message arrives.
        assert sub.wait_subscribed(10)
        wait_for(lambda: pub.publish("t/after", b"2").sent, 5, "publish")
        assert inbox.get(timeout=5).topic == "t/after"
    finally:
        sub.stop()
        pub.stop()


def test_publish_while_disconnected_is_refused_not_queued(mosquitto: MosquittoBroker) -> None:
    link = _link(mosquitto.url, "offline")
    assert not link.publish("t/x", b"x").sent  # never started


def _next(inbox: queue.Queue[Inbound], payload: bytes, consumer: MqttLink) -> Inbound:
    """The next message with this payload (late probes are acked and skipped); not acked."""
    while True:
        message = inbox.get(timeout=20)
        if message.payload == payload:
            return message
        consumer.ack(message)


@contextmanager
def _durable_consumer(
    url: str, client_id: str, inbox: queue.Queue[Inbound], **kw
) -> Iterator[tuple[MqttLink, MqttLink]]:
    """A consumer of jobs/# with a durable session and manual acks, and a producer."""
    consumer = _link(url, client_id, inbox, persistent_session=True, manual_ack=True, **kw)
    consumer.subscribe("jobs/#")
    consumer.start()
    producer = _link(url, "producer")
    producer.start()
    try:
        assert consumer.wait_subscribed(10) and producer.wait_connected(10)
        yield consumer, producer
    finally:
        consumer.stop()
        producer.stop()


def test_unacked_messages_come_back_to_a_durable_session(mosquitto: MosquittoBroker) -> None:
    """manual ack: what was not acked before the connection dropped is delivered again."""
    inbox: queue.Queue[Inbound] = queue.Queue()
    with _durable_consumer(mosquitto.url, "consumer", inbox) as (consumer, producer):
        wait_for(lambda: producer.publish("jobs/1", b"first").sent, 5, "publish")
        first = _next(inbox, b"first", consumer)
        mosquitto.restart()  # a clean restart saves the session (persistence on)
        again = _next(inbox, b"first", consumer)
        assert again.generation > first.generation
        assert not consumer.ack(first), "an ack for an old connection's mid must not be sent"
        assert consumer.ack(again)


def test_a_refused_login_is_reported_and_retried(mosquitto: MosquittoBroker, tmp_path) -> None:
    password_file = tmp_path / "passwd"
    password_file.write_text("")
    mosquitto.extra_config = f"allow_anonymous false\npassword_file {password_file}\n"
    mosquitto.config_file.unlink()
    mosquitto.restart()
    refused = threading.Event()
    link = _link(mosquitto.url.replace("mqtt://", "mqtt://nobody:wrong@"), "intruder")
    link.start()
    try:
        wait_for(lambda: "refused" in link.last_error, 10, "refusal")
        refused.set()
        assert not link.connected
    finally:
        link.stop()


def test_wait_subscribed_covers_filters_added_while_connected(mosquitto: MosquittoBroker) -> None:
    """After wait_subscribed() the broker holds every filter: nothing published later is missed."""
    inbox: queue.Queue[Inbound] = queue.Queue()
    sub = _link(mosquitto.url, "late-sub", inbox)
    pub = _link(mosquitto.url, "late-pub")
    sub.start()
    pub.start()
    try:
        assert sub.wait_subscribed(10) and pub.wait_connected(10)  # no filters yet: at once
        for n in range(20):
            sub.subscribe(f"late/{n}")
        assert sub.wait_subscribed(10)
        for n in range(20):
            wait_for(lambda n=n: pub.publish(f"late/{n}", b"%d" % n).sent, 5, "publish")
        assert sorted(int(inbox.get(timeout=5).payload) for _ in range(20)) == list(range(20))
    finally:
        sub.stop()
        pub.stop()


def test_a_batch_acknowledged_at_once_is_not_delivered_again(mosquitto: MosquittoBroker) -> None:
    """ack_many: the batch's PUBACKs reach the broker (none of it comes back after a restart);
    what was left out of the batch does come back, and an old connection's batch is refused."""
    inbox: queue.Queue[Inbound] = queue.Queue()
    published: queue.Queue[tuple[int, int]] = queue.Queue()
    with _durable_consumer(
        mosquitto.url, "batcher", inbox, on_published=lambda mid, gen: published.put((mid, gen))
    ) as (consumer, producer):
        for n in range(20):  # Mosquitto's default in-flight window
            wait_for(lambda n=n: producer.publish(f"jobs/{n}", b"%d" % n).sent, 5, "publish")
        got = [inbox.get(timeout=10) for _ in range(20)]
        assert consumer.ack_many(got[:15])
        # The broker reads a connection's packets in order: once it has acknowledged a later
        # publish of ours, it has taken the batch's PUBACKs.
        marker = consumer.publish("probe/after-acks", b"").mid
        wait_for(lambda: published.get(timeout=5)[0] == marker, 10, "the marker's PUBACK")
        mosquitto.restart()  # a clean restart saves the session (persistence on)
        assert consumer.wait_subscribed(20)
        again = sorted(int(inbox.get(timeout=20).payload) for _ in range(5))
        assert again == sorted(int(m.payload) for m in got[15:])
        assert not consumer.ack_many(got[15:]), "their connection is gone"
        with pytest.raises(queue.Empty):
            inbox.get(timeout=1)  # nothing of the acknowledged 15 came back


def test_messages_read_ahead_are_handled_without_waiting_for_the_socket(
    mosquitto: MosquittoBroker, monkeypatch
) -> None:
    """The read buffer holds many messages after one read; paho's loop must go on reading
    them (pending()) rather than wait in select() for the socket, here for 60 s a turn."""
    monkeypatch.setattr(link_module, "LOOP_TIMEOUT_S", 60.0)
    inbox: queue.Queue[Inbound] = queue.Queue()
    sub = _link(mosquitto.url, "reader", inbox)
    sub.subscribe("burst/#")
    pub = _link(mosquitto.url, "burster")
    sub.start()
    pub.start()
    try:
        assert sub.wait_subscribed(10) and pub.wait_connected(10)
        for n in range(200):  # far more than one read's worth: some reads hold many
            wait_for(lambda n=n: pub.publish(f"burst/{n}", b"x" * 500).sent, 5, "publish")
        assert {inbox.get(timeout=10).topic for _ in range(200)} == {
            f"burst/{n}" for n in range(200)
        }
    finally:
        pub.stop(timeout=1)
        sub.stop(timeout=1)


def _publish_packet(
    topic: bytes, payload: bytes, *, qos: int = 1, mid: int = 7, props: bytes | None = b""
) -> bytes:
    """A PUBLISH packet as a broker sends it (props None: MQTT 3.1.1, no properties field)."""
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += mid.to_bytes(2, "big")
    if props is not None:
        body += bytes([len(props)]) + props
    body += payload
    length, size = b"", len(body)
    while True:
        size, digit = divmod(size, 128)
        length += bytes([digit | (128 if size else 0)])
        if not size:
            break
    return bytes([0x30 | qos << 1 | 1]) + length + body


def test_the_fast_lane_parses_plain_publish_packets_and_leaves_the_rest_to_paho() -> None:
    parse = link_module.parse_publish
    big = b"p" * 300  # a remaining length of two bytes
    stream = _publish_packet(b"dev/a/telemetry", b'{"x":1}') + _publish_packet(b"t/b", big)
    first = parse(stream, 0, v5=True, manual_ack=True)
    assert first is not None
    end, topic, payload, qos, retain, mid = first
    assert (topic, payload, qos, retain, mid) == ("dev/a/telemetry", b'{"x":1}', 1, True, 7)
    second = parse(stream, end, v5=True, manual_ack=True)
    assert second is not None and second[0] == len(stream) and second[2] == big
    assert parse(stream[: len(stream) - 1], end, v5=True, manual_ack=True) is None, "cut off"
    v311 = _publish_packet(b"t", b"x", props=None)
    assert parse(v311, 0, v5=False, manual_ack=True) == (len(v311), "t", b"x", 1, True, 7)
    qos0 = _publish_packet(b"t", b"x", qos=0)
    assert parse(qos0, 0, v5=True, manual_ack=False) == (len(qos0), "t", b"x", 0, True, 0)
    for refused in (
        _publish_packet(b"t", b"x", props=b"\x26\x00\x01k\x00\x01v"),  # a user property
        _publish_packet(b"t", b"x", qos=2),
        _publish_packet(b"\xff\xfe", b"x"),  # not UTF-8
        _publish_packet(b"", b"x", props=b"\x23\x00\x01"),  # a topic alias
        bytes([0x90, 3, 0, 1, 0]),  # a SUBACK
        bytes([0x32, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),  # a remaining length of five bytes
    ):
        assert parse(refused, 0, v5=True, manual_ack=True) is None
    assert parse(stream, 0, v5=True, manual_ack=False) is None, "paho acknowledges"


def test_the_fast_lane_and_paho_deliver_a_mixed_stream_whole_and_in_order(
    mosquitto: MosquittoBroker,
) -> None:
    """Plain messages take the fast lane; ones with properties, and one larger than the read
    buffer, take paho's reader in between: every message arrives once and whole, the QoS 1
    ones in order."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    inbox: queue.Queue[Inbound] = queue.Queue()
    sub = _link(mosquitto.url, "mixed-reader", inbox, manual_ack=True)
    sub.subscribe("mixed/#")
    sub.start()
    pub = paho.Client(CallbackAPIVersion.VERSION2, "mixed-writer", protocol=paho.MQTTv5)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    expected: list[tuple[str, bytes, int]] = []
    try:
        assert sub.wait_subscribed(10)
        for n in range(300):
            topic, payload, props = f"mixed/{n}", b"%d:" % n + b"v" * (n % 50), None
            if n % 37 == 0:
                props = Properties(PacketTypes.PUBLISH)
                props.UserProperty = ("n", str(n))
            if n == 151:
                payload = bytes(range(256)) * 400  # 100 KiB: more than one read
            qos = 0 if n % 10 == 5 else 1
            pub.publish(topic, payload, qos=qos, properties=props).wait_for_publish(5)
            expected.append((topic, payload, qos))
        got = []
        for _ in range(300):  # acknowledged as they come: the broker keeps 20 in flight
            got.append(inbox.get(timeout=10))
            assert sub.ack(got[-1])
        # QoS 1 in order (QoS 0 ones may overtake those the broker holds back for its window)
        assert [(m.topic, m.payload, m.qos) for m in got if m.qos] == [e for e in expected if e[2]]
        assert sorted((m.topic, m.payload, m.qos) for m in got) == sorted(expected)
        with pytest.raises(queue.Empty):
            inbox.get(timeout=0.5)
        reader = sub._client._packet_read  # type: ignore[union-attr]
        assert isinstance(reader, link_module._LeanReader) and reader.taken > 200
    finally:
        pub.loop_stop()
        pub.disconnect()
        sub.stop(timeout=1)


def test_a_handler_that_fails_on_one_message_does_not_stop_the_others(
    mosquitto: MosquittoBroker, caplog
) -> None:
    """Through either lane (plain messages, and one with properties that paho's reader
    takes): the failure is logged, the connection stays up and later messages arrive."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    inbox: queue.Queue[Inbound] = queue.Queue()

    def handler(message: Inbound) -> None:
        if message.payload.startswith(b"bad"):
            raise ValueError("cannot take this one")
        inbox.put(message)

    sub = MqttLink(BrokerSettings.from_url(mosquitto.url), "picky", on_message=handler)
    sub.subscribe("picky/#", qos=0)
    sub.start()
    pub = paho.Client(CallbackAPIVersion.VERSION2, "picky-writer", protocol=paho.MQTTv5)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        assert sub.wait_subscribed(10)
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = ("k", "v")
        for n, (payload, properties) in enumerate(
            [(b"bad-plain", None), (b"ok-1", None), (b"bad-props", props), (b"ok-2", None)]
        ):
            pub.publish(f"picky/{n}", payload, qos=0, properties=properties).wait_for_publish(5)
        assert [inbox.get(timeout=10).payload for _ in range(2)] == [b"ok-1", b"ok-2"]
        assert sub.connected
        failures = [r for r in caplog.records if "the handler failed" in r.getMessage()]
        assert len(failures) == 2
    finally:
        pub.loop_stop()
        pub.disconnect()
        sub.stop(timeout=1)
