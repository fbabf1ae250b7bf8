"""Topic layout: the device id at a fixed depth, separate channels, no foreign topics parsed."""

from __future__ import annotations

import pytest

from contracts import (
    Channel,
    Command,
    command_topic,
    device_commands_filter,
    parse_command_topic,
    parse_uplink_topic,
    uplink_filter,
    uplink_topic,
)
from contracts.topics import TopicAddress


def test_topics_put_the_device_at_the_fourth_level() -> None:
    assert uplink_topic("pos-0001", Channel.BUTTON) == "dt/crowdfix/v1/pos-0001/button"
    assert command_topic("pos-0001", Command.RECEIPT) == "cmd/crowdfix/v1/pos-0001/receipt"
    assert device_commands_filter("pos-0001") == "cmd/crowdfix/v1/pos-0001/+"
    assert uplink_filter() == "dt/crowdfix/v1/+/+"
    assert uplink_filter(Channel.FAULT) == "dt/crowdfix/v1/+/fault"


@pytest.mark.parametrize("channel", list(Channel))
def test_every_channel_parses_back(channel: Channel) -> None:
    topic = uplink_topic("kiosk-7", channel)
    assert parse_uplink_topic(topic) == TopicAddress("kiosk-7", channel.value)
    assert parse_command_topic(topic) is None


@pytest.mark.parametrize(
    "device_id",
    ["", "UPPER", "has/slash", "has+plus", "has#hash", "-leading", "trailing-", "a" * 65],
)
def test_unsafe_device_ids_cannot_build_topics(device_id: str) -> None:
    with pytest.raises(ValueError, match="device id"):
        uplink_topic(device_id, Channel.BUTTON)


@pytest.mark.parametrize(
    "topic",
    [
        "dt/crowdfix/v1/pos-0001/button/extra",
        "dt/crowdfix/v1/pos-0001/unknown",
        "dt/other/v1/pos-0001/button",
        "cmd/crowdfix/v1/pos-0001/button",
        "$SYS/broker/uptime",
    ],
)
def test_foreign_topics_are_not_ours(topic: str) -> None:
    assert parse_uplink_topic(topic) is None
