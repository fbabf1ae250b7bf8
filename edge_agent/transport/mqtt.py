"""The device's MQTT session: retained birth and last will, uplink publishing, downlink commands."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from contracts import (
    Channel,
    ContractViolation,
    DownlinkMessage,
    Status,
    UplinkMessage,
    decode_downlink,
    device_commands_filter,
    encode,
    uplink_topic,
)
from mqttlink import BrokerSettings, Inbound, MqttLink, PublishResult, Will

_LOGGER = logging.getLogger(__name__)
# Commands queued for an offline device survive this long in the broker's session.
SESSION_EXPIRY_S = 24 * 3600


class DeviceTransport:
    """Publishes a device's messages and hands its commands to the agent."""

    def __init__(
        self,
        broker: BrokerSettings,
        device_id: str,
        *,
        make_status: Callable[[Literal["online", "offline"], datetime], Status],
        on_command: Callable[[DownlinkMessage], None],
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self._device_id = device_id
        self._make_status = make_status
        self._on_command = on_command
        self._on_connect_cb = on_connect
        self._status_topic = uplink_topic(device_id, Channel.STATUS)
        self._session_started = datetime.now(UTC)
        self._link = MqttLink(
            broker,
            client_id=device_id,
            on_message=self._handle_message,
            on_connect=self._handle_connect,
            will=self._will,
            persistent_session=True,
            session_expiry_s=SESSION_EXPIRY_S,
        )
        self._link.subscribe(device_commands_filter(device_id), qos=1)

    @property
    def link(self) -> MqttLink:
        """The underlying connection (state, protocol in use, last error)."""
        return self._link

    def start(self) -> None:
        """Connect in the background."""
        self._link.start()

    def stop(self) -> None:
        """Publish a retained offline status (a clean exit is not a crash) and disconnect."""
        if self._link.connected:
            self._link.publish(self._status_topic, self._status("offline"), 1, True)
        self._link.stop()

    def _will(self) -> Will:
        """Called before every connection attempt: a new session begins. Its last will and its
        birth carry the session's start, so the cloud can tell sessions apart."""
        self._session_started = datetime.now(UTC)
        return Will(self._status_topic, self._status("offline"), 1, True)

    def _status(self, state: Literal["online", "offline"]) -> bytes:
        return encode(self._make_status(state, self._session_started))

    def send(self, message: UplinkMessage) -> PublishResult:
        """Publish an uplink message with QoS 1 on its channel."""
        return self.send_encoded(Channel(message.type), encode(message))

    def send_encoded(self, channel: Channel, payload: bytes) -> PublishResult:
        """Publish an already encoded message (from the outbox) with QoS 1."""
        topic = uplink_topic(self._device_id, channel)
        return self._link.publish(topic, payload, qos=1, retain=channel is Channel.STATUS)

    def _handle_connect(self, _generation: int) -> None:
        self._link.publish(self._status_topic, self._status("online"), 1, True)
        if self._on_connect_cb is not None:
            self._on_connect_cb()

    def _handle_message(self, inbound: Inbound) -> None:
        try:
            command = decode_downlink(inbound.topic, inbound.payload)
        except ContractViolation as exc:
            _LOGGER.warning("ignoring command on %s: %s", inbound.topic, exc)
            return
        self._on_command(command)


def publish_once(broker: BrokerSettings, message: UplinkMessage, timeout: float) -> bool:
    """Connect, publish one message with QoS 1, wait for the broker's PUBACK, disconnect."""
    acked = threading.Event()
    link = MqttLink(
        broker,
        client_id=f"crowdfix-cli-{uuid.uuid4().hex[:8]}",
        on_published=lambda _mid, _gen: acked.set(),
    )
    link.start()
    try:
        if not link.wait_connected(timeout):
            _LOGGER.error("%s", link.last_error or "broker not reachable")
            return False
        topic = uplink_topic(message.device_id, Channel(message.type))
        return link.publish(topic, encode(message), qos=1).sent and acked.wait(timeout)
    finally:
        link.stop()
