"""The broker configuration in deploy/ against a real Mosquitto: nobody in who should not be.

Negative checks need no sleeps: MQTT keeps one publisher's messages in order per subscriber,
so once a later, allowed message has arrived, an earlier forbidden one would have too.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from contracts import Channel, Command, command_topic, uplink_topic
from mqttlink import BrokerSettings, Inbound, MqttLink
from tests.conftest import CLOUD_ACCOUNT, SecureBroker
from tests.helpers import wait_for

A, B = "shop-a-pos", "shop-b-pos"


class Client:
    """A connected MqttLink and what it received."""

    def __init__(self, settings: BrokerSettings, client_id: str) -> None:
        self.inbox: queue.Queue[Inbound] = queue.Queue()
        self.link = MqttLink(settings, client_id, on_message=self.inbox.put)

    def start(self, *filters: str) -> Client:
        for topic_filter in filters:
            self.link.subscribe(topic_filter)
        self.link.start()
        return self

    def send(self, topic: str, payload: bytes) -> None:
        wait_for(lambda: self.link.publish(topic, payload).sent, 10, f"publish to {topic}")

    def received_until(self, last: bytes) -> list[tuple[str, bytes]]:
        """Everything received up to and including the payload `last`."""
        got = []
        while True:
            message = self.inbox.get(timeout=10)
            got.append((message.topic, message.payload))
            if message.payload == last:
                return got


def assert_refused(settings: BrokerSettings) -> None:
    """The broker turns this login away (and keeps doing so on retries)."""
    link = MqttLink(settings, "intruder")
    link.start()
    try:
        wait_for(lambda: "refused" in link.last_error, 10, f"refusal of {settings.describe()}")
        assert not link.connected
    finally:
        link.stop()


@pytest.fixture
def fleet(secure_mosquitto: SecureBroker) -> Iterator[tuple[SecureBroker, list[Client]]]:
    secure_mosquitto.add(A)
    secure_mosquitto.add(B)
    secure_mosquitto.broker.reload()
    clients: list[Client] = []
    yield secure_mosquitto, clients
    for client in clients:
        client.link.stop()


def connect(secure: SecureBroker, clients: list[Client], user: str, *filters: str) -> Client:
    client = Client(secure.settings(user), f"{user}-test").start(*filters)
    clients.append(client)
    assert client.link.wait_subscribed(10), client.link.last_error
    return client


def test_a_device_cannot_publish_as_another_device(fleet) -> None:
    secure, clients = fleet
    cloud = connect(secure, clients, CLOUD_ACCOUNT, "dt/crowdfix/v1/+/+")
    device_a = connect(secure, clients, A)
    device_a.send(uplink_topic(B, Channel.BUTTON), b"forged by A")
    device_a.send(uplink_topic(A, Channel.BUTTON), b"A's own press")
    assert cloud.received_until(b"A's own press") == [
        (uplink_topic(A, Channel.BUTTON), b"A's own press")
    ]


def test_a_device_reads_only_its_own_commands_and_no_data(fleet) -> None:
    secure, clients = fleet
    device_a = connect(secure, clients, A, "cmd/crowdfix/v1/+/+", "dt/crowdfix/v1/+/+")
    device_b = connect(secure, clients, B, "cmd/crowdfix/v1/+/+")
    cloud = connect(secure, clients, CLOUD_ACCOUNT)
    device_b.send(uplink_topic(B, Channel.TELEMETRY), b"B's readings")
    cloud.send(command_topic(B, Command.FEEDBACK), b"for B only")
    cloud.send(command_topic(A, Command.FEEDBACK), b"for A")
    assert device_a.received_until(b"for A") == [(command_topic(A, Command.FEEDBACK), b"for A")]
    assert device_b.received_until(b"for B only") == [
        (command_topic(B, Command.FEEDBACK), b"for B only")
    ]


def test_the_cloud_writes_only_command_channels(fleet) -> None:
    secure, clients = fleet
    watcher = connect(secure, clients, CLOUD_ACCOUNT, "dt/crowdfix/v1/+/+", "anything/#")
    cloud = Client(secure.settings(CLOUD_ACCOUNT), "cloud-2").start()
    clients.append(cloud)
    assert cloud.link.wait_connected(10)
    device_a = connect(secure, clients, A, "cmd/crowdfix/v1/+/+")
    cloud.send(uplink_topic(A, Channel.BUTTON), b"forged by the cloud")
    cloud.send("anything/else", b"forged by the cloud")
    cloud.send(command_topic(A, Command.FEEDBACK), b"allowed")
    # The broker handled the forged messages before the command A now holds.
    assert device_a.received_until(b"allowed")
    device_a.send(uplink_topic(A, Channel.STATUS), b"probe")
    assert [p for _t, p in watcher.received_until(b"probe")] == [b"probe"]


@pytest.mark.parametrize(
    ("username", "password"),
    [(None, None), (A, "wrong-password"), ("nobody", "anything"), (CLOUD_ACCOUNT, "")],
)
def test_anonymous_and_wrong_passwords_are_refused(fleet, username, password) -> None:
    secure, _clients = fleet
    settings = BrokerSettings.from_url(secure.broker.url, reconnect_max_s=0.5)
    if username is not None:
        settings = secure.settings(username, password or "x")
    assert_refused(settings)


def test_a_revoked_device_is_refused_after_reload_and_others_carry_on(fleet) -> None:
    secure, clients = fleet
    online = connect(secure, clients, B)
    secure.store.revoke(B)
    secure.broker.reload()
    # Its open connection is cut, and it cannot come back.
    wait_for(lambda: not online.link.connected, 10, "the revoked device's connection cut")
    wait_for(lambda: "refused" in online.link.last_error, 10, "its reconnects refused")
    assert_refused(secure.settings(B))
    connect(secure, clients, A)


def test_a_rotated_password_replaces_the_old_one(fleet) -> None:
    secure, clients = fleet
    old = secure.passwords[A]
    secure.passwords[A] = secure.store.rotate(A)
    secure.broker.reload()
    assert_refused(secure.settings(A, old))
    connect(secure, clients, A)


def test_a_technicians_app_reads_only_its_own_offers_and_cannot_forge_them(fleet) -> None:
    from cloud.dispatch.service import technician_topic
    from cloud.provisioning.mosquitto import AccountKind

    secure, clients = fleet
    secure.add("ana.m", AccountKind.TECHNICIAN)
    secure.add("ben", AccountKind.TECHNICIAN)
    secure.broker.reload()
    ana = connect(secure, clients, "ana.m", "tech/crowdfix/v1/+/+", "dt/crowdfix/v1/+/+")
    ben = connect(secure, clients, "ben", "tech/crowdfix/v1/ben/+")
    cloud = connect(secure, clients, CLOUD_ACCOUNT, "dt/crowdfix/v1/+/+")
    # Ana cannot put an offer in her own list, or in Ben's, or speak for a device.
    ana.send(technician_topic("ana.m"), b"forged by ana")
    ana.send(technician_topic("ben"), b"forged by ana for ben")
    ana.send(uplink_topic(A, Channel.BUTTON), b"forged press")
    cloud.send(technician_topic("ben", "job"), b"ben's job called off")
    cloud.send(technician_topic("ana.m"), b"an offer for ana")
    cloud.send(technician_topic("ana.m", "job"), b"ana's job called off")
    assert ana.received_until(b"ana's job called off") == [
        (technician_topic("ana.m"), b"an offer for ana"),
        (technician_topic("ana.m", "job"), b"ana's job called off"),
    ]
    assert ben.received_until(b"ben's job called off") == [
        (technician_topic("ben", "job"), b"ben's job called off")
    ]
    device_a = connect(secure, clients, A)
    device_a.send(uplink_topic(A, Channel.STATUS), b"probe")
    assert [p for _t, p in cloud.received_until(b"probe")] == [b"probe"]  # no forged press
