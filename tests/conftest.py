"""Shared fixtures: a Mosquitto the test owns, fresh SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.devices.models import Device
from cloud.ingest.models import IngestedMessage
from cloud.main import create_app
from cloud.provisioning.mosquitto import AccountKind
from cloud.provisioning.store import CredentialStore
from cloud.server import ApiServer
from cloud.worker import IngestWorker
from crowdfix.brokers import MosquittoBroker, SecureConfig, find_mosquitto, free_port
from mqttlink import BrokerSettings

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "CROWDFIX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the developer's shell must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("CROWDFIX_") and not name.startswith("CROWDFIX_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A real Mosquitto on a free loopback port, with its config and files in tmp_path."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (.ci/run installs it: apt-get install mosquitto)")
    broker = MosquittoBroker(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@dataclass
class SecureBroker:
    """Mosquitto running deploy/mosquitto/mosquitto.conf, with accounts the test provisions."""

    broker: MosquittoBroker
    store: CredentialStore
    passwords: dict[str, str]

    def add(self, username: str, kind: AccountKind = AccountKind.DEVICE) -> str:
        """Provision an account (the broker sees it after reload())."""
        self.passwords[username] = self.store.add(username, kind)
        return self.passwords[username]

    def settings(self, username: str, password: str | None = None) -> BrokerSettings:
        """Broker settings that log in as username (with its password unless one is given)."""
        return BrokerSettings.from_url(
            self.broker.url,
            username=username,
            password=SecretStr(password or self.passwords[username]),
            reconnect_max_s=0.5,
        )


CLOUD_ACCOUNT = "crowdfix-cloud"


@pytest.fixture
def secure_devices() -> list[str]:
    """Devices the secure broker knows from the start (override in a module)."""
    return []


@pytest.fixture
def secure_mosquitto(tmp_path: Path, secure_devices: list[str]) -> Iterator[SecureBroker]:
    """Mosquitto with the production config (no anonymous access, per-device ACL), a cloud
    account and `secure_devices`; tests add more with .add() and then broker.reload()."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (.ci/run installs it: apt-get install mosquitto)")
    store = CredentialStore(tmp_path / "secrets" / "mosquitto")
    secure = SecureBroker(
        MosquittoBroker(tmp_path / "mosquitto", secure=SecureConfig(store.directory)), store, {}
    )
    secure.add(CLOUD_ACCOUNT, AccountKind.CLOUD)
    for device_id in secure_devices:
        secure.add(device_id)
    secure.broker.start()
    yield secure
    secure.broker.stop()


@pytest.fixture
def secure_cloud_overrides(secure_mosquitto: SecureBroker) -> dict[str, object]:
    """CloudSettings that log the cloud in with its service account."""
    return {
        "mqtt_username": CLOUD_ACCOUNT,
        "mqtt_password": secure_mosquitto.passwords[CLOUD_ACCOUNT],
    }


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'crowdfix.sqlite3'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; skipped when no server is reachable."""
    import psycopg

    admin = make_url(POSTGRES_URL)
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL reachable at {admin.render_as_string()}: {exc}".strip())
    name = f"crowdfix_test_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite and on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated database's session factory."""
    engine = make_engine(database_url)
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@dataclass
class CloudStack:
    """The real cloud on the test's broker and database."""

    api_url: str
    worker: IngestWorker
    sessions: sessionmaker[Session]
    token: str = ""

    def get(self, path: str) -> Any:
        """GET an API path as an operator; the JSON answer."""
        import httpx

        response = httpx.get(
            f"{self.api_url}{path}", headers={"Authorization": f"Bearer {self.token}"}
        )
        response.raise_for_status()
        return response.json()

    def ingested(self, device_id: str, *types: str) -> list[IngestedMessage]:
        """Messages the cloud stored for a device, oldest first."""
        from sqlalchemy import select

        with self.sessions() as db_session:
            query = select(IngestedMessage).where(IngestedMessage.device_id == device_id)
            if types:
                query = query.where(IngestedMessage.type.in_(types))
            return list(db_session.scalars(query.order_by(IngestedMessage.received_at)))

    def readings(self, device_id: str) -> dict[str, float]:
        """The latest value of each signal the cloud stored for a device."""
        from cloud.telemetry import service as telemetry

        with self.sessions() as db_session:
            rows = telemetry.latest(db_session=db_session, device_id=device_id)
            return {r.name: r.value for r in rows}

    def device(self, device_id: str) -> Device | None:
        """The device's registry entry and presence, if registered."""
        from cloud.devices import service as devices

        with self.sessions() as db_session:
            return devices.get(db_session=db_session, device_id=device_id)


@pytest.fixture
def cloud_overrides() -> dict[str, object]:
    """CloudSettings a test module wants different (override this fixture)."""
    return {}


@pytest.fixture
def cloud(
    mosquitto: MosquittoBroker, database_url: str, cloud_overrides: dict[str, object]
) -> Iterator[CloudStack]:
    """Ingest worker and API (real uvicorn) on the test's Mosquitto and database."""
    settings = CloudSettings.model_validate(
        {
            "database_url": database_url,
            "mqtt_url": mosquitto.url,
            "auto_register": True,
            "sweep_interval_s": 0.5,
            "metrics_port": 0,
            **cloud_overrides,
        }
    )
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    worker = IngestWorker(settings, sessions)
    worker.start()
    api = ApiServer(create_app(settings, sessions), "127.0.0.1", free_port()).start()
    assert worker.mqtt.link.wait_subscribed(10), worker.mqtt.link.last_error
    from tests.cloud.factories import token_for

    yield CloudStack(api.url, worker, sessions, token_for(sessions, "operator"))
    api.stop()
    worker.stop()
    engine.dispose()


@pytest.fixture
def worker_for() -> Iterator[object]:
    """An IngestWorker over given sessions, never started (its DB paths called directly)."""
    made: list[IngestWorker] = []

    def make(sessions: sessionmaker[Session], **settings: object) -> IngestWorker:
        worker = IngestWorker(CloudSettings(mqtt_url="mqtt://127.0.0.1:1", **settings), sessions)
        made.append(worker)
        return worker

    yield make
