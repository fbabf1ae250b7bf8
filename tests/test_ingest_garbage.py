"""Defence in depth: the worker refuses what a correctly configured broker would already stop
(another device's topic, oversized payloads), so this runs on an anonymous Mosquitto."""

from __future__ import annotations

import pytest

from crowdfix.brokers import MosquittoBroker
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def test_garbage_is_counted_and_the_worker_keeps_going(cloud, mosquitto: MosquittoBroker) -> None:
    from datetime import UTC, datetime

    from contracts import ButtonEvent, Channel, encode, uplink_topic
    from mqttlink import BrokerSettings, MqttLink

    worker = cloud.worker
    sender = MqttLink(BrokerSettings.from_url(mosquitto.url), "garbage-sender")
    sender.start()
    try:
        assert sender.wait_connected(10) and worker.mqtt.link.wait_subscribed(10)
        good = ButtonEvent(
            device_id="pos-7", timestamp=datetime.now(UTC), seq=1, button="till", category="till"
        )
        for topic, payload in [
            ("dt/crowdfix/v1/pos-7/button", b"\x00\xff not json"),
            ("dt/crowdfix/v1/pos-7/button", b'{"schema_version": 9}'),
            ("dt/crowdfix/v1/pos-8/button", encode(good)),  # spoofing another device's topic
            ("dt/crowdfix/v1/pos-7/button", b"{}" + b" " * 70_000),
            (uplink_topic("pos-7", Channel.BUTTON), encode(good)),
        ]:
            assert sender.publish(topic, payload).sent
        tickets = wait_for(lambda: cloud.get("/api/tickets")["items"], 10, "ticket")
        assert [t["device_id"] for t in tickets] == ["pos-7"]
        wait_for(lambda: sum(worker.stats.rejected.values()) == 4, 10, "4 rejections")
        assert dict(worker.stats.rejected) == {
            "malformed_json": 1,
            "unsupported_schema_version": 1,
            "device_mismatch": 1,
            "oversized": 1,
        }
    finally:
        sender.stop()
