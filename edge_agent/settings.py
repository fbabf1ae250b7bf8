"""The agent's own settings: who this device is, where its broker is (env CROWDFIX_AGENT_*).

Plain pydantic rather than pydantic-settings: on a Pi every megabyte counts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from contracts.topics import DEVICE_ID_PATTERN
from edge_agent.errors import SettingsError
from mqttlink import BrokerSettings, Protocol

PinFactoryChoice = Literal["auto", "mock", "native"]
ENV_PREFIX = "CROWDFIX_AGENT_"
DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"


def default_state_dir() -> Path:
    """Where the agent keeps its outbox when nothing else is configured."""
    return Path.home() / ".local" / "state" / "crowdfix-agent"


class AgentSettings(BaseModel):
    """Identity, broker and storage of one agent; secrets come from the environment or a file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    profile: Path
    broker_url: str | None = None  # default: the profile's, else DEFAULT_BROKER_URL
    mqtt_protocol: Protocol | None = None
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_password_file: Path | None = None
    mqtt_ca_file: Path | None = None
    state_dir: Path = Field(default_factory=default_state_dir)
    pins: PinFactoryChoice = "auto"
    reconnect_max_s: Annotated[float, Field(ge=0.1, le=3600)] = 30.0

    @classmethod
    def from_env(
        cls, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> AgentSettings:
        """CROWDFIX_AGENT_<FIELD> variables, then explicit overrides (CLI options) on top."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            name: env[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in env
        }
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            fields = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise SettingsError(
                f"agent settings: {fields} (pass the option or set {ENV_PREFIX}<NAME>)"
            ) from exc

    def broker(
        self,
        profile_url: str | None = None,
        profile_protocol: Protocol | None = None,
        profile_ca: Path | None = None,
    ) -> BrokerSettings:
        """Broker settings: these settings over the profile's defaults; the username defaults
        to the device id, as the broker's ACL expects."""
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
                self.broker_url or profile_url or DEFAULT_BROKER_URL,
                protocol=self.mqtt_protocol or profile_protocol,
                username=self.mqtt_username or (self.device_id if password else None),
                password=password,
                ca_file=self.mqtt_ca_file or profile_ca,
                reconnect_max_s=self.reconnect_max_s,
            )
        except (ValueError, ValidationError) as exc:
            raise SettingsError(f"broker: {exc}") from exc
