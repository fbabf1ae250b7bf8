"""Settings of the cloud deployable (env prefix CROWDFIX_)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from socket import gethostname
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from cloud.alerts.rules import AlertChannel, AlertKind
from cloud.dispatch.policy import DispatchPolicy
from cloud.errors import ConfigError
from cloud.tickets.taxonomy import Taxonomy, load_taxonomy
from mqttlink import BrokerSettings, Protocol

DEFAULT_DATABASE_URL = "sqlite:///var/crowdfix.sqlite3"
# Values from examples and tutorials that must never guard a real deployment.
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "password", "crowdfix", "admin"}
MIN_SECRET_LENGTH = 16
URL_PATTERN = r"^https?://[^\s]+$"
DEVELOPMENT_WEBHOOK_KEY = "crowdfix-development-only-webhook-key"


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
    # Technicians' webhook secrets are derived from it (rotating it changes every one of them).
    webhook_key: SecretStr | None = None
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
    # Dispatch rules (docs/dispatch.md): how long a technician has to answer an offer (cut
    # short, never below the minimum, when the SLA has less slack); how many crowd offers, or
    # minutes, before staff get a ticket, and how many staff offers before an operator must
    # act; below which rating (over at least so many ratings) or acceptance (over the last so
    # many offers) a crowd technician is paused; when an SLA clock warns.
    dispatch_offer_timeout_s: int = Field(default=300, ge=30, le=3600)
    dispatch_min_offer_timeout_s: int = Field(default=120, ge=15, le=3600)
    dispatch_crowd_attempts: int = Field(default=3, ge=0, le=100)
    dispatch_crowd_minutes: float = Field(default=15, ge=0, le=24 * 60)
    dispatch_staff_attempts: int = Field(default=2, ge=0, le=100)
    dispatch_min_rating: float = Field(default=4.8, ge=1, le=5)
    dispatch_min_ratings: int = Field(default=10, ge=1, le=10_000)
    dispatch_min_acceptance: float = Field(default=0.8, ge=0, le=1)
    dispatch_acceptance_window: int = Field(default=20, ge=1, le=1000)
    sla_warning_share: float = Field(default=0.8, gt=0, lt=1)
    # Prometheus endpoint of an ingest worker (the API serves /metrics itself); 0: none.
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    # InfluxDB for telemetry history; off when no URL is set.
    influx_url: str | None = None
    influx_token: SecretStr | None = None
    influx_org: str = "crowdfix"
    influx_bucket: str = "telemetry"
    # The address people reach the dashboard at (rating links for requesters); the request's
    # own address when unset.
    public_url: Annotated[str, Field(pattern=URL_PATTERN, max_length=500)] | None = None
    # Grafana's fleet telemetry dashboard, linked from the operator's pages when set.
    grafana_url: Annotated[str, Field(pattern=URL_PATTERN, max_length=500)] | None = None
    # The map a technician opens to find a job: {lat} and {lon} are filled in; empty: no link.
    map_url: Annotated[str, Field(pattern=r"^$|^https?://[^\s]*\{lat\}[^\s]*$", max_length=500)] = (
        "https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=18/{lat}/{lon}"
    )

    # Operator alerts (docs/operations.md): the kinds raised (comma-separated; empty: none),
    # and the webhook they are POSTed to (none: listed by the API only), as crowdfix's JSON
    # or, for a chat's incoming webhook, {"text": ...} alone; signed when a secret is set.
    alerts: str = ",".join(kind.value for kind in AlertKind)
    alert_webhook_url: (
        Annotated[str, Field(pattern=f"^$|{URL_PATTERN}", max_length=2000)] | None
    ) = None  # empty as none: docker-compose passes it on empty when .env leaves it out
    alert_webhook_format: Literal["crowdfix", "chat", "alertmanager"] = "crowdfix"
    alert_webhook_secret: SecretStr | None = None
    # The operators' time zone (IANA), for the times an alert's words give.
    alert_timezone: str = "UTC"

    @model_validator(mode="after")
    def _known_alert_kinds(self) -> CloudSettings:
        self.alert_kinds()
        return self

    @model_validator(mode="after")
    def _known_alert_timezone(self) -> CloudSettings:
        try:
            ZoneInfo(self.alert_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"CROWDFIX_ALERT_TIMEZONE: {self.alert_timezone!r} is not a time zone; use an "
                "IANA name like 'Europe/Zurich'"
            ) from exc
        return self

    def alert_kinds(self) -> frozenset[AlertKind]:
        """The kinds CROWDFIX_ALERTS names."""
        names = {name.strip() for name in self.alerts.split(",") if name.strip()}
        known = {kind.value for kind in AlertKind}
        if unknown := sorted(names - known):
            raise ConfigError(
                f"CROWDFIX_ALERTS: no alert kind {', '.join(unknown)}; the kinds are "
                f"{', '.join(kind.value for kind in AlertKind)} (empty: no alerts)"
            )
        return frozenset(AlertKind(name) for name in names)

    def alert_channel(self) -> AlertChannel:
        """What alerts are raised and where they go."""
        return AlertChannel(
            kinds=self.alert_kinds(),
            url=self.alert_webhook_url or None,
            format=self.alert_webhook_format,
            public_url=self.public_url,
            timezone=self.alert_timezone,
        )

    def alert_webhook_signing_secret(self) -> str | None:
        """What signs the alert webhook's POSTs (None: they go unsigned)."""
        return _secret(self.alert_webhook_secret) or None

    @model_validator(mode="after")
    def _offer_timeouts_in_order(self) -> CloudSettings:
        if self.dispatch_min_offer_timeout_s > self.dispatch_offer_timeout_s:
            raise ConfigError(
                f"CROWDFIX_DISPATCH_MIN_OFFER_TIMEOUT_S ({self.dispatch_min_offer_timeout_s}) is "
                f"above CROWDFIX_DISPATCH_OFFER_TIMEOUT_S ({self.dispatch_offer_timeout_s}): "
                "the shortest deadline cannot be longer than the usual one"
            )
        return self

    def dispatch_policy(self) -> DispatchPolicy:
        """The dispatch rules these settings make (the API and every worker use the same)."""
        return DispatchPolicy(
            offer_timeout=timedelta(seconds=self.dispatch_offer_timeout_s),
            min_offer_timeout=timedelta(seconds=self.dispatch_min_offer_timeout_s),
            crowd_attempts=self.dispatch_crowd_attempts,
            crowd_minutes=self.dispatch_crowd_minutes,
            staff_attempts=self.dispatch_staff_attempts,
            sla_warning_share=self.sla_warning_share,
            min_rating=self.dispatch_min_rating,
            min_ratings=self.dispatch_min_ratings,
            min_acceptance=self.dispatch_min_acceptance,
            acceptance_window=self.dispatch_acceptance_window,
            map_url=self.map_url,
        )

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> CloudSettings:
        """Outside development, refuse to run on missing, example or short secrets."""
        if self.environment != "production":
            return self
        secrets = {
            "CROWDFIX_MQTT_PASSWORD": _secret(self.mqtt_password),
            "CROWDFIX_WEBHOOK_KEY": _secret(self.webhook_key),
        }
        if self.influx_url:
            secrets["CROWDFIX_INFLUX_TOKEN"] = _secret(self.influx_token)
        if _secret(self.alert_webhook_secret):  # optional; when set, a real one
            secrets["CROWDFIX_ALERT_WEBHOOK_SECRET"] = _secret(self.alert_webhook_secret)
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

    def webhook_signing_key(self) -> bytes:
        """The key technicians' webhook secrets are derived from (development: a fixed one;
        production refuses to start without its own)."""
        return (_secret(self.webhook_key) or DEVELOPMENT_WEBHOOK_KEY).encode()

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
