"""The one small adapter around paho-mqtt that both deployables use; paho objects never leave it."""

from mqttlink.link import (
    Inbound,
    MqttLink,
    PublishResult,
    Will,
)
from mqttlink.settings import BrokerSettings, Protocol

__all__ = ["BrokerSettings", "Inbound", "MqttLink", "Protocol", "PublishResult", "Will"]
