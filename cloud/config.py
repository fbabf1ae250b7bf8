"""Settings of the cloud deployable (env prefix CROWDFIX_)."""

from __future__ import annotations

from pathlib import Path
from socket import gethostname
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.errors import ConfigError
from mqttlink import BrokerSettings, Protocol

DEFAULT_DATABASE_URL = "sqlite:///var/crowdfix.sqlite3"


class CloudSettings(BaseSettings):
    """One settings class for the API and the ingest worker."""

    model_config = SettingsConfigDict(env_prefix="CROWDFIX_", frozen=True, extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: Protocol = Protocol.AUTO
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: Path | None = None
    # Workers of one group share the stream ($share/<group>/...); empty = plain subscription.
    ingest_group: str = "crowdfix-ingest"
    # Unique per worker: its durable session (unacked messages) is bound to this id.
    ingest_client_id: str = Field(default_factory=lambda: f"crowdfix-ingest-{gethostname()}")
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    def broker(self) -> BrokerSettings:
        """Broker settings of the cloud's service account."""
        try:
            return BrokerSettings.from_url(
                self.mqtt_url,
                protocol=self.mqtt_protocol,
                username=self.mqtt_username,
                password=self.mqtt_password,
                ca_file=self.mqtt_ca_file,
            )
        except ValueError as exc:
            raise ConfigError(f"CROWDFIX_MQTT_URL: {exc}") from exc
