"""The agent's own settings: who this device is, where its broker is (env CROWDFIX_AGENT_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import DEVICE_ID_PATTERN
from edge_agent.errors import SettingsError
from mqttlink import BrokerSettings, Protocol

PinFactoryChoice = Literal["auto", "mock", "native"]


def default_state_dir() -> Path:
    """Where the agent keeps its outbox when nothing else is configured."""
    return Path.home() / ".local" / "state" / "crowdfix-agent"


class AgentSettings(BaseSettings):
    """Identity, broker and storage of one agent; secrets come from the environment or a file."""

    model_config = SettingsConfigDict(env_prefix="CROWDFIX_AGENT_", frozen=True, extra="ignore")

    device_id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    profile: Path
    broker_url: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: Protocol = Protocol.AUTO
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_password_file: Path | None = None
    mqtt_ca_file: Path | None = None
    state_dir: Path = Field(default_factory=default_state_dir)
    pins: PinFactoryChoice = "auto"

    def broker(self) -> BrokerSettings:
        """Broker settings; the username defaults to the device id, as the broker ACLs expect."""
        password = self.mqtt_password
        if password is None and self.mqtt_password_file is not None:
            try:
                password = SecretStr(self.mqtt_password_file.read_text().strip())
            except OSError as exc:
                raise SettingsError(
                    f"cannot read the MQTT password file {self.mqtt_password_file}: {exc.strerror}"
                ) from exc
        try:
            return BrokerSettings.from_url(
                self.broker_url,
                protocol=self.mqtt_protocol,
                username=self.mqtt_username or (self.device_id if password else None),
                password=password,
                ca_file=self.mqtt_ca_file,
            )
        except (ValueError, ValidationError) as exc:
            raise SettingsError(str(exc)) from exc
