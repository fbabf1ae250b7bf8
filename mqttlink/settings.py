"""Where the broker is and how to talk to it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Protocol(StrEnum):
    """MQTT protocol version; `auto` tries 5 and falls back to 3.1.1 when the broker refuses it."""

    AUTO = "auto"
    V5 = "5"
    V311 = "3.1.1"


class BrokerSettings(BaseModel):
    """Connection settings for one MQTT client."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Protocol = Protocol.AUTO
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    # Longest wait between reconnect attempts (None: mqttlink.link.RECONNECT_MAX_S).
    reconnect_max_s: float | None = Field(default=None, ge=0.1, le=3600)

    @classmethod
    def from_url(cls, url: str, **overrides: object) -> BrokerSettings:
        """Parse `mqtt://[user[:password]@]host[:port]` (`mqtts://` turns TLS on)."""
        parts = urlsplit(url)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError(
                f"broker URL {url!r} is not valid: use mqtt://host:port or mqtts://host:port"
            )
        tls = parts.scheme == "mqtts"
        values: dict[str, object] = {
            "host": parts.hostname,
            "port": parts.port or (8883 if tls else 1883),
            "tls": tls,
        }
        if parts.username:
            values["username"] = unquote(parts.username)
        if parts.password:
            values["password"] = SecretStr(unquote(parts.password))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)

    def describe(self) -> str:
        """Where this points, without secrets, for logs and messages."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"
