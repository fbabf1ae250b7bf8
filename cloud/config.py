"""Settings of the cloud deployable (env prefix CROWDFIX_)."""

from __future__ import annotations

from pathlib import Path
from socket import gethostname
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from cloud.errors import ConfigError
from cloud.tickets.taxonomy import Taxonomy, load_taxonomy
from mqttlink import BrokerSettings, Protocol

DEFAULT_DATABASE_URL = "sqlite:///var/crowdfix.sqlite3"
# Values from examples and tutorials that must never guard a real deployment.
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "password", "crowdfix", "admin"}
MIN_SECRET_LENGTH = 16


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
    # How long the broker keeps a vanished worker's session (and queues its share of the
    # stream for it). Events are resent by the agents' outboxes; telemetry waiting for a
    # worker that never returns is lost when this runs out.
    ingest_session_expiry_s: int = Field(default=600, ge=0, le=7 * 24 * 3600)
    # Unique and stable per worker: its durable session (unacked messages) is bound to it.
    ingest_client_id: str = Field(default_factory=lambda: f"crowdfix-ingest-{gethostname()}")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The ticket taxonomy (categories, skills, SLA, policies); the built-in one by default.
    taxonomy_file: Path | None = None
    # Refuse device timestamps further than this ahead of the cloud's clock.
    max_clock_skew_s: float = Field(default=300, ge=1)
    # Accept messages from unregistered devices (registering them); off: they are refused.
    auto_register: bool = False
    # Worker housekeeping: presence sweep interval, recent telemetry window kept in SQL.
    sweep_interval_s: float = Field(default=5, gt=0)
    recent_window_h: float = Field(default=6, gt=0)
    # Workers run the dispatcher (offers, deadlines, cascade) once technicians exist.
    dispatch: bool = True
    # Prometheus endpoint of an ingest worker (the API serves /metrics itself); 0: none.
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    # InfluxDB for telemetry history; off when no URL is set.
    influx_url: str | None = None
    influx_token: SecretStr | None = None
    influx_org: str = "crowdfix"
    influx_bucket: str = "telemetry"
    # The address people reach the dashboard at (rating links for requesters); the request's
    # own address when unset.
    public_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=500)] | None = None
    # Grafana's fleet telemetry dashboard, linked from the operator's pages when set.
    grafana_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=500)] | None = None

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> CloudSettings:
        """Outside development, refuse to run on missing, example or short secrets."""
        if self.environment != "production":
            return self
        secrets = {"CROWDFIX_MQTT_PASSWORD": _secret(self.mqtt_password)}
        if self.influx_url:
            secrets["CROWDFIX_INFLUX_TOKEN"] = _secret(self.influx_token)
        database_password = make_url(self.database_url).password
        if database_password is not None:
            secrets["the password in CROWDFIX_DATABASE_URL"] = str(database_password)
        for name, value in secrets.items():
            if value.lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"{name} is missing or a placeholder; production needs a random secret of "
                    f'{MIN_SECRET_LENGTH}+ characters (python3 -c "import secrets; '
                    'print(secrets.token_urlsafe(32))"; for the broker: crowdfix provision '
                    "cloud-account)"
                )
        if not self.mqtt_username:
            raise ConfigError(
                "CROWDFIX_MQTT_USERNAME is missing: the broker has no anonymous access"
            )
        return self

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

    def taxonomy(self) -> Taxonomy:
        """The taxonomy file, validated."""
        return load_taxonomy(self.taxonomy_file)


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""
