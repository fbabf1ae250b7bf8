"""Topic builders and parsers: the device id sits at a fixed depth so ACLs can bind it to `%u`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

APP = "crowdfix"
NAMESPACE_VERSION = "v1"
DEVICE_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)


class Channel(StrEnum):
    """Uplink channels: what a device publishes, each on its own topic."""

    BUTTON = "button"
    FAULT = "fault"
    TELEMETRY = "telemetry"
    STATUS = "status"
    HEARTBEAT = "heartbeat"


class Command(StrEnum):
    """Downlink channels: what the cloud sends to one device."""

    RECEIPT = "receipt"
    FEEDBACK = "feedback"


@dataclass(frozen=True, slots=True)
class TopicAddress:
    """A parsed topic: which device, which channel."""

    device_id: str
    channel: str


def is_device_id(value: str) -> bool:
    """True when value is usable as a device id (and therefore as a topic level and a username)."""
    return bool(_DEVICE_ID_RE.match(value))


def _checked(device_id: str) -> str:
    if not is_device_id(device_id):
        raise ValueError(
            f"device id {device_id!r} is not valid: use 1-64 lowercase letters, digits and dashes"
        )
    return device_id


def uplink_topic(device_id: str, channel: Channel) -> str:
    """`dt/crowdfix/v1/<device>/<channel>`: data a device publishes."""
    return f"dt/{APP}/{NAMESPACE_VERSION}/{_checked(device_id)}/{channel.value}"


def command_topic(device_id: str, command: Command) -> str:
    """`cmd/crowdfix/v1/<device>/<command>`: downlink to one device."""
    return f"cmd/{APP}/{NAMESPACE_VERSION}/{_checked(device_id)}/{command.value}"


def uplink_filter(channel: Channel | None = None) -> str:
    """Subscription filter for every device's uplink (one channel, or all of them)."""
    last = channel.value if channel else "+"
    return f"dt/{APP}/{NAMESPACE_VERSION}/+/{last}"


def device_commands_filter(device_id: str) -> str:
    """Subscription filter for everything the cloud sends to one device."""
    return f"cmd/{APP}/{NAMESPACE_VERSION}/{_checked(device_id)}/+"


def _parse(prefix: str, topic: str, names: set[str]) -> TopicAddress | None:
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != prefix or parts[1] != APP or parts[2] != NAMESPACE_VERSION:
        return None
    if not is_device_id(parts[3]) or parts[4] not in names:
        return None
    return TopicAddress(device_id=parts[3], channel=parts[4])


_UPLINK = {c.value for c in Channel}
_COMMANDS = {c.value for c in Command}


def parse_uplink_topic(topic: str) -> TopicAddress | None:
    """Device and channel of an uplink topic, or None when it is not one of ours."""
    return _parse("dt", topic, _UPLINK)


def parse_command_topic(topic: str) -> TopicAddress | None:
    """Device and command of a downlink topic, or None when it is not one of ours."""
    return _parse("cmd", topic, _COMMANDS)
