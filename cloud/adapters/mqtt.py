"""The cloud's MQTT session: a durable (shared) subscription to device uplinks, and downlink."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel

from contracts import Command, command_topic, encode, uplink_filter
from mqttlink import BrokerSettings, Inbound, MqttLink

RECEIVE_MAXIMUM = 2000


def ingest_filter(group: str) -> str:
    """`$share/<group>/dt/crowdfix/v1/+/+` so workers of a group split the stream, or plain."""
    base = uplink_filter()
    return f"$share/{group}/{base}" if group else base


class CloudMqtt:
    """Receives device messages (acked only after they are stored) and sends commands to devices."""

    def __init__(
        self,
        broker: BrokerSettings,
        client_id: str,
        group: str,
        on_message: Callable[[Inbound], None],
        session_expiry_s: int = 600,
    ) -> None:
        self.filter = ingest_filter(group)
        self.link = MqttLink(
            broker,
            client_id=client_id,
            on_message=on_message,
            persistent_session=True,
            session_expiry_s=session_expiry_s,
            manual_ack=True,
            # A bulk batch is acknowledged after its commit: let a whole batch be in flight.
            receive_maximum=RECEIVE_MAXIMUM,
        )
        self.link.subscribe(self.filter, qos=1)

    def start(self) -> None:
        """Connect in the background."""
        self.link.start()

    def leave(self) -> None:
        """Stop being handed new messages (leave the shared subscription)."""
        self.link.unsubscribe(self.filter)

    def stop(self, *, end_session: bool) -> None:
        """Disconnect. end_session: the broker forgets this worker (a graceful scale-down);
        otherwise unacknowledged messages wait in its session for it to come back."""
        self.link.stop(end_session=end_session)

    def ack(self, inbound: Inbound) -> bool:
        """Tell the broker this message is safely stored."""
        return self.link.ack(inbound)

    def ack_many(self, batch: Sequence[Inbound]) -> bool:
        """Tell the broker a batch is safely stored, in one write."""
        return self.link.ack_many(batch)

    def send(self, device_id: str, command: Command, message: BaseModel) -> bool:
        """Publish a command to one device (QoS 1); False when not connected."""
        return self.link.publish(command_topic(device_id, command), encode(message), qos=1).sent
