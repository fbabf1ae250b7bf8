"""`crowdfix demo`: broker, cloud (API + ingest on SQLite) and simulated agents in one process."""

from __future__ import annotations

import logging
import random
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sqlalchemy.orm import Session, sessionmaker

from cloud.auth import service as auth
from cloud.auth.passwords import new_password
from cloud.auth.roles import Role
from cloud.clock import utc_now
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate, transaction
from cloud.devices import service as devices
from cloud.devices.schemas import DeviceIn
from cloud.main import create_app
from cloud.provisioning.mosquitto import AccountKind
from cloud.provisioning.store import CredentialStore, write_agent_credentials
from cloud.server import ApiServer
from cloud.sites import service as sites
from cloud.sites.schemas import SiteIn
from cloud.worker import IngestWorker
from contracts import Channel, uplink_topic
from crowdfix.brokers import (
    BrokerChoice,
    RunningBroker,
    SecureConfig,
    free_port,
    port_open,
    start_broker,
)
from crowdfix.crew import CREW, CrewApp, register_crew
from crowdfix.simulation import simulated_collectors, start_incident
from edge_agent.app import EdgeAgent
from edge_agent.collectors import Collector
from edge_agent.hardware.pins import mock_pin
from edge_agent.profile import Profile, load_profile
from edge_agent.settings import AgentSettings

_LOGGER = logging.getLogger(__name__)
DEFAULT_MQTT_PORT = 11883
PRESS_HOLD_S = 0.1
INCIDENT_SHARE = 0.15  # of the demo's events, the rest are button presses
CLOUD_ACCOUNT = "crowdfix-cloud"


class DemoError(RuntimeError):
    """The demo cannot start; the message says what to change."""


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs and where."""

    broker: BrokerChoice = "auto"
    mqtt_port: int | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    devices: int = 4
    press_every_s: float = 20.0
    state_dir: Path = Path("var/demo")
    profiles_dir: Path = Path("firmware_configs")
    fresh: bool = False


def find_profiles(directory: Path) -> list[tuple[Path, Profile]]:
    """Every profile in the directory, validated, by file name."""
    if not directory.is_dir():
        raise DemoError(
            f"no device profiles at {directory.resolve()}: run the demo from the project folder "
            "or pass --profiles DIR"
        )
    profiles = [(p, load_profile(p)) for p in sorted(directory.glob("*.yaml"))]
    if not any(prof.buttons for _, prof in profiles):
        raise DemoError(f"no profile with buttons in {directory}")
    return profiles


# Two places for the simulated devices (real coordinates, for the maps and ETAs to come).
DEMO_SITES = [
    SiteIn(
        id="zurich-hb",
        name="Shop Zurich HB",
        address="Bahnhofplatz, 8001 Zurich",
        latitude=47.3779,
        longitude=8.5403,
        timezone="Europe/Zurich",
        criticality="high",
    ),
    SiteIn(
        id="oerlikon-depot",
        name="Cold store Oerlikon",
        address="Binzmuhlestrasse, 8050 Zurich",
        latitude=47.4111,
        longitude=8.5446,
        timezone="Europe/Zurich",
    ),
]


class PlannedDevice(NamedTuple):
    """A simulated device: its id, profile and site."""

    device_id: str
    path: Path
    profile: Profile
    site_id: str


@dataclass(frozen=True)
class DemoLogin:
    """An account the demo made, with its password and an API token."""

    username: str
    role: str
    password: str
    token: str


def demo_accounts(sessions: sessionmaker[Session], state_dir: Path) -> list[DemoLogin]:
    """An admin and an operator with fresh random passwords; their tokens in state_dir."""
    logins = []
    now = utc_now()
    with transaction(sessions) as db:
        for username, role in (("admin", Role.ADMIN), ("operator", Role.OPERATOR)):
            password = new_password(16)
            user = auth.get_by_name(db_session=db, username=username)
            if user is None:
                user = auth.create_user(
                    db_session=db, username=username, role=role, password=password, now=now
                )
            else:
                auth.set_password(db_session=db, user=user, password=password)
            token, _ = auth.issue_token(db_session=db, user=user, name="demo", now=now)
            (state_dir / f"{username}.token").write_text(token + "\n")
            logins.append(DemoLogin(username, role.value, password, token))
    return logins


def technician_login(
    sessions: sessionmaker[Session], state_dir: Path, technician_id: str
) -> DemoLogin:
    """A login for one demo technician (their token in state_dir/<id>.token)."""
    now = utc_now()
    password = new_password(16)
    with transaction(sessions) as db:
        user = auth.get_by_name(db_session=db, username=technician_id)
        if user is None:
            user = auth.create_user(
                db_session=db,
                username=technician_id,
                role=Role.TECHNICIAN,
                password=password,
                now=now,
                technician_id=technician_id,
            )
        else:
            auth.set_password(db_session=db, user=user, password=password)
        token, _ = auth.issue_token(db_session=db, user=user, name="demo", now=now)
    (state_dir / f"{technician_id}.token").write_text(token + "\n")
    return DemoLogin(technician_id, Role.TECHNICIAN.value, password, token)


def register_fleet(sessions: sessionmaker[Session], plan: list[PlannedDevice]) -> None:
    """Register the demo's sites and devices (a real fleet is provisioned the same way)."""
    now = utc_now()
    with transaction(sessions) as db:
        for site in DEMO_SITES:
            sites.upsert(db_session=db, site_in=site, now=now)
        for device in plan:
            devices.register(
                db_session=db,
                device_in=DeviceIn(
                    id=device.device_id,
                    site_id=device.site_id,
                    profile=device.profile.profile,
                    name=device.profile.description[:200],
                ),
                now=now,
            )


class SimulatedDevice:
    """A real EdgeAgent on mock pins with simulated sensors, running in its own thread."""

    def __init__(self, agent: EdgeAgent, collectors: list[Collector]) -> None:
        self.agent = agent
        self.collectors = collectors
        self._stop = threading.Event()
        self._thread = threading.Thread(target=agent.run, args=(self._stop,), name=agent.device_id)

    def start(self) -> None:
        """Run the agent."""
        self._thread.start()

    def press(self, button: str, hold_s: float = PRESS_HOLD_S) -> None:
        """Press and release a button by driving its mock pin."""
        spec = next(b for b in self.agent.profile.buttons if b.name == button)
        pin = mock_pin(self.agent.pin_factory, spec.pin)
        pin.drive_low()
        threading.Timer(hold_s, pin.drive_high).start()

    def stop(self) -> None:
        """Stop the agent (it publishes its offline status) and join its thread."""
        self._stop.set()
        self._thread.join(10)


class Demo:
    """The whole system on embedded defaults; start() then stop()."""

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.broker: RunningBroker | None = None
        self.worker: IngestWorker | None = None
        self.api: ApiServer | None = None
        self.devices: list[SimulatedDevice] = []
        self.logins: list[DemoLogin] = []
        self.store = CredentialStore(config.state_dir / "broker-secrets")
        self.crew: CrewApp | None = None
        self.passwords: dict[str, str] = {}
        self._stop = threading.Event()
        self._presser = threading.Thread(target=self._press_now_and_then, name="presser")

    def start(self) -> None:
        """Start broker, database, ingest worker, API and devices, in that order."""
        cfg = self.config
        if port_open(cfg.api_host, cfg.api_port):
            raise DemoError(f"port {cfg.api_port} is already in use: pass --api-port")
        if cfg.fresh and cfg.state_dir.exists():
            shutil.rmtree(cfg.state_dir)
        profiles = find_profiles(cfg.profiles_dir)
        mqtt_port = cfg.mqtt_port or DEFAULT_MQTT_PORT
        if port_open("127.0.0.1", mqtt_port):
            if cfg.mqtt_port:
                raise DemoError(f"port {mqtt_port} is already in use: pass --mqtt-port")
            mqtt_port = free_port()
        plan = self._plan(profiles)
        self.passwords = self._credentials(plan, mqtt_port)
        self.broker = start_broker(
            cfg.broker, cfg.state_dir / "broker", mqtt_port, SecureConfig(self.store.directory)
        )
        if self.broker.kind != "mosquitto":
            self.passwords = {}  # the embedded broker is anonymous (loopback only)
        settings = CloudSettings(
            database_url=f"sqlite:///{cfg.state_dir / 'crowdfix.sqlite3'}",
            mqtt_url=self.broker.url,
            mqtt_username=CLOUD_ACCOUNT if self.passwords else None,
            mqtt_password=self.passwords.get(CLOUD_ACCOUNT),
            mqtt_protocol=self.broker.protocol,
            ingest_group="crowdfix-ingest" if self.broker.shared_subscriptions else "",
            api_host=cfg.api_host,
            api_port=cfg.api_port,
            public_url=f"http://{cfg.api_host}:{cfg.api_port}",  # alerts link to the tickets
        )
        engine = make_engine(settings.database_url)
        migrate(engine)
        sessions = make_sessionmaker(engine)
        register_fleet(sessions, plan)
        self.logins = demo_accounts(sessions, cfg.state_dir)
        register_crew(sessions, utc_now())
        self.logins.append(technician_login(sessions, cfg.state_dir, CREW[0][0]))
        self.crew = CrewApp(sessions, rules=settings.dispatch_policy())
        self.crew.start()
        self.worker = IngestWorker(settings, sessions)
        self.worker.start()
        self.api = ApiServer(create_app(settings, sessions), cfg.api_host, cfg.api_port).start()
        self._start_devices(plan)
        self._presser.start()

    def _credentials(self, plan: list[PlannedDevice], mqtt_port: int) -> dict[str, str]:
        """Broker accounts for the cloud and every device, new passwords each run, written
        the way `crowdfix provision` writes them (agent files under state_dir/devices)."""
        passwords = {CLOUD_ACCOUNT: self.store.issue(CLOUD_ACCOUNT, AccountKind.CLOUD)}
        for device in plan:
            password = self.store.issue(device.device_id, AccountKind.DEVICE)
            passwords[device.device_id] = password
            write_agent_credentials(
                self.config.state_dir / "devices",
                device_id=device.device_id,
                password=password,
                broker_url=f"mqtt://127.0.0.1:{mqtt_port}",
                ca_file=None,
            )
        return passwords

    def _plan(self, profiles: list[tuple[Path, Profile]]) -> list[PlannedDevice]:
        usable = [(path, prof) for path, prof in profiles if prof.buttons]
        plan = []
        for index in range(self.config.devices):
            path, profile = usable[index % len(usable)]
            device_id = f"{profile.profile}-{index // len(usable) + 1:02d}"
            plan.append(PlannedDevice(device_id, path, profile, DEMO_SITES[index % 2].id))
        return plan

    def _start_devices(self, plan: list[PlannedDevice]) -> None:
        assert self.broker is not None
        for index, (device_id, path, profile, _site) in enumerate(plan):
            settings = AgentSettings(
                device_id=device_id,
                profile=path,
                broker_url=self.broker.url,
                mqtt_username=device_id if self.passwords else None,
                mqtt_password=self.passwords.get(device_id),
                mqtt_protocol=self.broker.protocol,
                state_dir=self.config.state_dir / "agents",
                pins="mock",
            )
            collectors = simulated_collectors(profile, seed=index)
            agent = EdgeAgent(settings, profile, collectors=collectors)
            device = SimulatedDevice(agent, collectors)
            device.start()
            self.devices.append(device)

    def _press_now_and_then(self) -> None:
        rng = random.Random()
        # A first press soon after start, so there is something to see right away.
        delay = 2.0
        while not self._stop.wait(delay):
            device = rng.choice(self.devices)
            if rng.random() < INCIDENT_SHARE:
                code = start_incident(device.agent.profile, device.collectors, rng)
                if code:
                    _LOGGER.info("demo: %s develops %s", device.agent.device_id, code)
            else:
                button = rng.choice(device.agent.profile.buttons)
                _LOGGER.info("demo: pressing %s on %s", button.name, device.agent.device_id)
                device.press(button.name)
            delay = self.config.press_every_s * rng.uniform(0.5, 1.5)

    def stop(self) -> None:
        """Stop everything in reverse order; safe to call after a failed start."""
        self._stop.set()
        if self._presser.is_alive():
            self._presser.join(5)
        for device in self.devices:
            device.stop()
        if self.crew is not None:
            self.crew.stop()
        if self.api is not None:
            self.api.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.broker is not None:
            self.broker.stop()

    def banner(self) -> str:
        """Where to look and how to press a button by hand."""
        assert self.broker is not None and self.api is not None
        device = self.devices[0].agent
        button = device.profile.buttons[0]
        topic = uplink_topic(device.device_id, Channel.BUTTON)
        host, port = self.broker.host, self.broker.port
        payload = (
            '{"schema_version":1,"message_id":"manual-\'$(date +%s%N)\'",'
            f'"device_id":"{device.device_id}","timestamp":"\'$(date -u +%FT%TZ)\'",'
            f'"seq":0,"type":"button","button":"{button.name}","category":"{button.category}"}}'
        )
        devices = ", ".join(
            f"{d.agent.device_id} ({d.agent.profile.profile})" for d in self.devices
        )
        login = pub_login = ""
        if self.passwords:
            secret = self.config.state_dir / "devices" / device.device_id / "mqtt-password"
            login = f" --username {device.device_id} --password-file {secret}"
            pub_login = f' -u {device.device_id} -P "$(cat {secret})"'
        broker_kind = (
            "Mosquitto, deploy/mosquitto/mosquitto.conf: per-device logins and ACL"
            if self.broker.kind == "mosquitto"
            else "embedded amqtt, MQTT 3.1.1, anonymous"
        )
        return "\n".join(
            [
                "",
                "crowdfix demo is running",
                f"  dashboard: {self.api.url}/ui/ (log in as operator, password below)",
                f"  tickets:   {self.api.url}/api/tickets",
                f"  devices:   {self.api.url}/api/devices",
                f"  API docs:  {self.api.url}/docs",
                f"  alerts:    {self.api.url}/api/alerts (escalated and late tickets, for "
                "operators; a chat gets them with CROWDFIX_ALERT_WEBHOOK_URL)",
                f"  crew:      {', '.join(c[0] for c in CREW)} (simulated technicians: they "
                "get offers, accept most, and work the job through)",
                f"  broker:    {self.broker.url} ({broker_kind})",
                f"  devices:   {devices} (simulated agents on mock pins, pressed now and then)",
                "",
                "Logins (new passwords every run; tokens also in "
                f"{self.config.state_dir}/<user>.token):",
                *[
                    f"  {login.role:<9} {login.username} / {login.password}"
                    for login in self.logins
                ],
                '  curl -H "Authorization: Bearer $(cat '
                f'{self.config.state_dir}/operator.token)" {self.api.url}/api/tickets',
                f"  ({CREW[0][0]}'s own offers: the same with {CREW[0][0]}.token and /api/offers)",
                "",
                "Press a button by hand:",
                f"  crowdfix send-button --broker {self.broker.url} --device {device.device_id} "
                f"--button {button.name} --category {button.category}{login}",
                f"  mosquitto_pub -h {host} -p {port}{pub_login} -q 1 -t {topic} -m '{payload}'",
                "",
                "Ctrl-C stops everything.",
                "",
            ]
        )
