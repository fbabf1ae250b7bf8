"""Provisioning use cases: a device joins the registry and the broker in one step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from cloud.db import transaction
from cloud.devices import service as devices
from cloud.devices.schemas import DeviceIn
from cloud.provisioning.mosquitto import AccountKind
from cloud.provisioning.store import CredentialStore, write_agent_credentials, write_file

RELOAD_HINT = (
    "the broker applies this when it reloads: `docker compose kill -s HUP mosquitto`, "
    "or `kill -HUP <mosquitto pid>`"
)


@dataclass(frozen=True)
class AgentEndpoint:
    """Where provisioned agents connect: the broker URL as devices see it, and its CA."""

    broker_url: str
    ca_file: Path | None = None


def provision_device(
    *,
    sessions: sessionmaker[Session] | None,
    store: CredentialStore,
    device_in: DeviceIn,
    credentials_dir: Path,
    endpoint: AgentEndpoint,
    now: datetime,
) -> Path:
    """Register the device (unless sessions is None), create its broker account and write
    its credentials; returns the folder of the agent's files."""
    if sessions is not None:
        with transaction(sessions) as db:
            devices.register(db_session=db, device_in=device_in, now=now)
    password = store.add(device_in.id, AccountKind.DEVICE)
    return write_agent_credentials(
        credentials_dir,
        device_id=device_in.id,
        password=password,
        broker_url=endpoint.broker_url,
        ca_file=endpoint.ca_file,
    )


def rotate_device(
    *, store: CredentialStore, device_id: str, credentials_dir: Path, endpoint: AgentEndpoint
) -> Path:
    """A new password for a device, written to its credentials folder."""
    password = store.rotate(device_id)
    return write_agent_credentials(
        credentials_dir,
        device_id=device_id,
        password=password,
        broker_url=endpoint.broker_url,
        ca_file=endpoint.ca_file,
    )


def set_env_values(path: Path, values: dict[str, str]) -> None:
    """Set KEY=value lines in an env file (compose's .env), keeping every other line."""
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in values]
    kept += [f"{key}={value}" for key, value in values.items()]
    write_file(path, "\n".join(kept) + "\n", 0o600)
