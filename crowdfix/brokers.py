"""MQTT brokers the demo and the tests start: Mosquitto on loopback when installed, else amqtt."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import getpass
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from mqttlink import Protocol as MqttProtocol

_LOGGER = logging.getLogger(__name__)
BrokerChoice = Literal["auto", "mosquitto", "embedded"]
START_TIMEOUT_S = 15.0


# The production broker configuration; the demo and the tests run it with local paths.
DEPLOY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "mosquitto.conf"
# Where docker-compose mounts things in the container, and what they become locally.
CONTAINER_SECRETS = "/mosquitto/secrets/"
CONTAINER_DATA = "/mosquitto/data/"
PLAIN_LISTENER = "listener 1883"
RELOAD_LOG_LINE = "Reloading config."
# MQTT 3.1.1 CONNECT, clean session, empty client id: any CONNACK proves a main-loop pass.
PROBE_CONNECT = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
TLS_LISTENER = "listener 8883"


class BrokerError(RuntimeError):
    """A broker could not be started; the message says why and what to do."""


@dataclass(frozen=True)
class SecureConfig:
    """Run deploy/mosquitto/mosquitto.conf: accounts from `secrets_dir` (passwd, acl, and
    certs/ when tls_port is set)."""

    secrets_dir: Path
    tls_port: int | None = None


def render_deploy_config(
    template: str, *, port: int, data_dir: Path, secure: SecureConfig, user: str, log_file: Path
) -> str:
    """The deploy config with local paths, loopback listeners, and no TLS unless asked; the
    log goes to a file (Mosquitto flushes that per line, not stdout into a pipe or file)."""
    lines: list[str] = []
    skipping = False
    for line in template.splitlines():
        stripped = line.strip()
        if skipping and (not stripped or stripped.startswith("listener ")):
            skipping = False
        if skipping:
            continue
        if stripped == "log_dest stdout":
            line = f"log_dest file {log_file.resolve()}"
        elif stripped == PLAIN_LISTENER:
            line = f"listener {port} 127.0.0.1"
        elif stripped == TLS_LISTENER:
            if secure.tls_port is None:
                skipping = True
                continue
            line = f"listener {secure.tls_port} 127.0.0.1"
        line = line.replace(CONTAINER_SECRETS, f"{secure.secrets_dir.resolve()}/")
        lines.append(line.replace(CONTAINER_DATA, f"{data_dir.resolve()}/"))
    return "\n".join([*lines, f"user {user}"]) + "\n"


class RunningBroker(Protocol):
    """What the demo needs to know about a broker it started."""

    kind: str
    host: str
    port: int
    protocol: MqttProtocol
    shared_subscriptions: bool

    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections there."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (Debian installs it in /usr/sbin)."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
        None,
    )


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so no broker outlives a killed demo."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class MosquittoBroker:
    """A Mosquitto process on loopback with a config file this object owns."""

    kind = "mosquitto"
    protocol = MqttProtocol.AUTO
    shared_subscriptions = True

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra_config: str = "",
        secure: SecureConfig | None = None,
    ) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise BrokerError(
                "mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)"
            )
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_file = workdir / "mosquitto.conf"
        self.log_file = workdir / "mosquitto.log"
        self.extra_config = extra_config
        self.secure = secure
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"mqtt://{self.host}:{self.port}"

    def write_config(self) -> None:
        """The deploy config (secure), or an anonymous loopback broker for protocol tests."""
        if self.secure is not None:
            if not DEPLOY_CONFIG.is_file():
                raise BrokerError(f"{DEPLOY_CONFIG} is missing: run from a crowdfix checkout")
            text = render_deploy_config(
                DEPLOY_CONFIG.read_text(),
                port=self.port,
                data_dir=self.workdir,
                secure=self.secure,
                user=getpass.getuser(),
                log_file=self.log_file,
            )
            self.config_file.write_text(text + self.extra_config + "\n")
            return
        self.config_file.write_text(
            "\n".join(
                [
                    f"listener {self.port} {self.host}",
                    # Loopback only; the provisioned, ACL-protected set-up lives in deploy/.
                    "allow_anonymous true",
                    f"user {getpass.getuser()}",
                    "persistence true",
                    f"persistence_location {self.workdir}/",
                    "autosave_interval 30",
                    "max_queued_messages 100000",
                    "set_tcp_nodelay true",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    f"log_dest file {self.log_file.resolve()}",
                    self.extra_config,
                ]
            )
            + "\n"
        )

    def start(self) -> MosquittoBroker:
        """Start the process and wait until it accepts connections."""
        if not self.config_file.exists() or self.extra_config or self.secure:
            self.write_config()
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on the terminal must not kill it before its clients
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_open(self.host, self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_file.read_text(errors="replace")[-2000:]
                raise BrokerError(f"mosquitto did not start on port {self.port}:\n{tail}")
            time.sleep(0.05)
        _LOGGER.info("mosquitto listening on %s (pid %d)", self.url, self.process.pid)
        return self

    def reload(self, timeout: float = START_TIMEOUT_S) -> None:
        """SIGHUP: re-read password and ACL files; returns once the broker has done so."""
        if self.process is None:
            return
        before = self._log_text().count(RELOAD_LOG_LINE)
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self._log_text().count(RELOAD_LOG_LINE) <= before:
            if time.monotonic() > deadline:
                raise BrokerError(f"mosquitto did not log {RELOAD_LOG_LINE!r} after SIGHUP")
            time.sleep(0.02)
        # It logs before re-reading; a CONNECT answered afterwards was handled after the reload
        # (one main loop), so the new accounts are in force when this returns.
        with socket.create_connection((self.host, self.port), timeout=timeout) as probe:
            probe.sendall(PROBE_CONNECT)
            probe.recv(4)

    def _log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self, *, kill: bool = False) -> None:
        """Terminate (or kill -9) the process and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def restart(self, *, kill: bool = False) -> None:
        """Stop and start again on the same port with the same files."""
        self.stop(kill=kill)
        self.start()


class EmbeddedBroker:
    """amqtt in a thread of its own: MQTT 3.1.1 only, no shared subscriptions, loopback only."""

    kind = "embedded"
    protocol = MqttProtocol.V311
    shared_subscriptions = False

    def __init__(self, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="amqtt", daemon=True)

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        """Start the broker thread and wait until it accepts connections."""
        try:
            import amqtt.broker  # noqa: F401
        except ImportError as exc:
            raise BrokerError(
                "neither mosquitto nor the embedded broker is available: "
                "install mosquitto, or pip install 'crowdfix[demo]'"
            ) from exc
        logging.getLogger("amqtt").setLevel(logging.ERROR)
        logging.getLogger("transitions").setLevel(logging.ERROR)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._error is not None:
            raise BrokerError(f"embedded broker did not start on port {self.port}: {self._error}")
        _LOGGER.info("embedded amqtt broker listening on %s (MQTT 3.1.1)", self.url)
        return self

    def stop(self) -> None:
        """Shut the broker down and join its thread."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from amqtt.broker import Broker

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
        )
        await broker.start()
        self._ready.set()
        await self._stop.wait()
        await broker.shutdown()


def start_broker(
    choice: BrokerChoice, workdir: Path, port: int | None = None, secure: SecureConfig | None = None
) -> RunningBroker:
    """Mosquitto when asked or installed (auto; with the deploy config when `secure` is
    given), else the embedded broker (anonymous, loopback only)."""
    if choice == "mosquitto" or (choice == "auto" and find_mosquitto()):
        return MosquittoBroker(workdir, port, secure=secure).start()
    return EmbeddedBroker(port).start()
