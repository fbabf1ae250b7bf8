"""Fault injection: real Mosquitto (the deploy config), real agent and worker processes, and
a database, broken on purpose while devices send presses and faults. After each break the
run waits for the system to settle and counts: every event sent stored once, every expected
ticket there once, none doubled.

Scenarios:
  worker-kill      kill -9 of one of two ingest workers mid-stream, restarted 2 s later
  broker-restart   kill -9 of Mosquitto mid-stream, restarted on the same port and files
  network-cut      the agents' network cut (a proxy that stalls every byte, like a dead
                   link: TCP stays open, nothing arrives) for --cut seconds, with presses
                   and a fault meanwhile, and one agent process kill -9'd and restarted
                   during the cut
  postgres-restart PostgreSQL (a private cluster, initdb'd for the run) restarted with
                   `pg_ctl restart -m immediate` (a crash, recovered from the WAL) mid-stream

`python -m bench faults` runs the long version and prints the table; tests/
test_fault_injection.py runs the short one. The network is cut by a proxy on loopback, not
by network namespaces: it needs no root, and stalling bytes (rather than refusing them) is
what a dead Wi-Fi link does to a TCP connection.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench.common import table
from cloud.clock import utc_now
from cloud.db import make_engine, make_sessionmaker, migrate, transaction
from cloud.devices import service as devices
from cloud.devices.models import Device
from cloud.devices.schemas import DeviceIn
from cloud.ingest.models import IngestedMessage
from cloud.provisioning.mosquitto import AccountKind
from cloud.provisioning.store import CredentialStore
from cloud.tickets.models import Ticket
from crowdfix.brokers import MosquittoBroker, SecureConfig, find_mosquitto, free_port

SCENARIOS = ("worker-kill", "broker-restart", "network-cut", "postgres-restart")
CLOUD = "crowdfix-cloud"
FAULT_CODE = "router-down"  # the taxonomy's network category
RAISED = "raised"  # the action of a fault event that raises
BUTTON_CATEGORIES = ("till", "receipt-printer")
PRESS_GAP_S = 0.7  # longer than the double-press window, so each tap is its own press
PROFILE = """\
profile: fault-rig
description: Fault-injection rig, two help buttons and a breaker the run can trip.
heartbeat_interval_s: 5
buttons:
  - {{name: till, pin: GPIO17, category: till, cooldown_s: 0}}
  - {{name: printer, pin: GPIO27, category: receipt-printer, cooldown_s: 0}}
collectors:
  - {{kind: command, name: router_ok, command: [cat, "{flag}"], every_s: 0.5}}
telemetry: {{sample_every_s: 1, publish_every_s: 2}}
faults:
  - code: {code}
    severity: major
    summary: The router is down
    when: {{kind: state, signal: router_ok, equals: 0, for_s: 1}}
"""


class RigError(RuntimeError):
    """A part of the rig would not start; the message says which."""


# -- the parts --------------------------------------------------------------------------


class CutProxy:
    """TCP proxy on loopback whose link can be cut: bytes stall in it (neither delivered nor
    refused) until restore(), as on a dead radio link; or dropped: every connection closed
    and new ones refused until restore(), as when a network goes away and the peers are
    told. Closing one side closes the other."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"  # for an HTTP server behind it
        self._flowing = threading.Event()
        self._flowing.set()
        self._refusing = threading.Event()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    def cut(self) -> None:
        """Stop every byte in both directions."""
        self._flowing.clear()

    def drop(self) -> None:
        """Close every connection, and refuse new ones until restore()."""
        self._refusing.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        """Let the stalled bytes and everything after them through, and new connections."""
        self._refusing.clear()
        self._flowing.set()

    def close(self) -> None:
        """Close the listener and every connection."""
        self._flowing.set()
        for sock in [self._server, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._refusing.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()  # the broker is down: the device sees a refusal
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class PrivateCluster:
    """A PostgreSQL cluster of the run's own (initdb in a temporary folder), so it can be
    crashed and restarted without touching anyone else's server."""

    def __init__(self) -> None:
        self.bindir = find_postgres_bin()
        if self.bindir is None:
            raise RigError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        # A folder of its own: the caller's may not be reachable for the postgres user.
        self.home = Path(tempfile.mkdtemp(prefix="crowdfix-pg-"))
        self.datadir = self.home / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to postgres
            shutil.chown(self.home, "postgres")
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RigError(f"{tool} failed: {result.stderr.strip() or result.stdout.strip()}")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=on"
        log = str(self.datadir / "server.log")
        self._run("pg_ctl", action, "-D", str(self.datadir), "-l", log, "-o", options, "-w", *extra)

    def start(self) -> PrivateCluster:
        """Start and wait until it accepts connections."""
        self._pg_ctl("start")
        return self

    def crash_restart(self) -> None:
        """Immediate shutdown (no checkpoint: recovery from the WAL at start) and start."""
        self._pg_ctl("restart", "-m", "immediate")

    def stop(self) -> None:
        """Fast shutdown, and the cluster's files removed."""
        with contextlib.suppress(RigError):
            self._pg_ctl("stop", "-m", "fast")
        shutil.rmtree(self.home, ignore_errors=True)


def find_postgres_bin() -> Path | None:
    """Folder of initdb/pg_ctl (Debian keeps them under /usr/lib/postgresql/<major>/bin)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


def _python_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "crowdfix.cli", *args]


class Process:
    """A crowdfix process with its log file; kill -9 or stop, then start again."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.args, self.env, self.log = name, args, env, log
        self.popen: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def start(self) -> Process:
        """Start (again), output appended to the log."""
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.args,
                env={**os.environ, **self.env},
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def send(self, line: str) -> bool:
        """A line on its stdin (the agent's keyboard); False if it is not running."""
        with self._lock:
            if self.popen is None or self.popen.poll() is not None or self.popen.stdin is None:
                return False
            try:
                self.popen.stdin.write(line.encode() + b"\n")
                self.popen.stdin.flush()
            except OSError:
                return False
            return True

    def kill(self) -> None:
        """kill -9."""
        with self._lock:
            if self.popen is not None and self.popen.poll() is None:
                self.popen.kill()
                self.popen.wait(10)

    def stop(self) -> None:
        """SIGTERM, and kill -9 if that does not end it within 20 s."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


# -- the rig ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """How big a run is."""

    devices: int = 4
    presses: int = 12  # per device
    cut_s: float = 10.0
    settle_s: float = 120.0


@dataclass
class Outcome:
    """What a scenario sent and what the cloud ended up with."""

    scenario: str
    presses_sent: int = 0
    faults_sent: int = 0
    events_stored: int = 0
    events_doubled: int = 0
    events_lost: int = 0
    tickets_expected: int = 0
    tickets_found: int = 0
    tickets_doubled: int = 0
    occurrences_wrong: int = 0
    settle_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing doubled, every ticket as expected."""
        return not self.problems


class Rig:
    """Broker, proxy, database, two ingest workers and N agents, in a temporary folder."""

    def __init__(self, workdir: Path, scale: Scale, *, postgres: bool) -> None:
        self.workdir, self.scale = workdir, scale
        self.devices = [f"rig-{i:03d}" for i in range(scale.devices)]
        self.store = CredentialStore(workdir / "secrets")
        self.cluster: PrivateCluster | None = None
        if postgres:
            self.cluster = PrivateCluster().start()
            self.database_url = self.cluster.url
        else:
            self.database_url = f"sqlite:///{workdir / 'cloud.sqlite3'}"
        self.engine = make_engine(self.database_url)
        migrate(self.engine)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.presses: Counter[tuple[str, int]] = Counter()
        self.faults: set[str] = set()
        self.workers: list[Process] = []
        self.agents: dict[str, Process] = {}
        self.broker: MosquittoBroker | None = None
        self.proxy: CutProxy | None = None

    def start(self) -> Rig:
        """Everything up, every agent online."""
        passwords = {d: self.store.issue(d, AccountKind.DEVICE) for d in self.devices}
        cloud_password = self.store.issue(CLOUD, AccountKind.CLOUD)
        self.broker = MosquittoBroker(
            self.workdir / "mosquitto", secure=SecureConfig(self.store.directory)
        ).start()
        self.proxy = CutProxy(self.broker.port)
        now = utc_now()
        with transaction(self.sessions) as db:
            for device_id in self.devices:
                device = DeviceIn(id=device_id, profile="fault-rig")
                devices.register(db_session=db, device_in=device, now=now)
        for index in range(2):
            self.workers.append(self._worker(index, cloud_password).start())
        for device_id in self.devices:
            flag = self.workdir / "flags" / device_id
            flag.parent.mkdir(parents=True, exist_ok=True)
            flag.write_text("up\n")
            (self.workdir / f"{device_id}.yaml").write_text(
                PROFILE.format(flag=flag, code=FAULT_CODE)
            )
            self.agents[device_id] = self._agent(device_id, passwords[device_id]).start()
        self.wait(lambda: self._online() == len(self.devices), 60, "every agent online")
        return self

    def _worker(self, index: int, password: str) -> Process:
        assert self.broker is not None
        env = {
            "CROWDFIX_DATABASE_URL": self.database_url,
            "CROWDFIX_MQTT_URL": self.broker.url,
            "CROWDFIX_MQTT_USERNAME": CLOUD,
            "CROWDFIX_MQTT_PASSWORD": password,
            "CROWDFIX_INGEST_CLIENT_ID": f"rig-worker-{index}",
            "CROWDFIX_METRICS_PORT": "0",
            "CROWDFIX_SWEEP_INTERVAL_S": "1",
            "CROWDFIX_LOG_LEVEL": "WARNING",
        }
        log = self.workdir / f"worker-{index}.log"
        return Process(f"worker-{index}", _python_command("cloud", "ingest"), env, log)

    def _agent(self, device_id: str, password: str) -> Process:
        assert self.proxy is not None
        env = {
            "CROWDFIX_AGENT_DEVICE_ID": device_id,
            "CROWDFIX_AGENT_PROFILE": str(self.workdir / f"{device_id}.yaml"),
            "CROWDFIX_AGENT_BROKER_URL": f"mqtt://127.0.0.1:{self.proxy.port}",
            "CROWDFIX_AGENT_MQTT_PASSWORD": password,
            "CROWDFIX_AGENT_STATE_DIR": str(self.workdir / "agents" / device_id),
            "CROWDFIX_AGENT_PINS": "mock",
            "CROWDFIX_AGENT_RECONNECT_MAX_S": "2",
            "CROWDFIX_LOG_LEVEL": "WARNING",
        }
        log = self.workdir / f"{device_id}.log"
        return Process(device_id, _python_command("agent", "run", "--keys"), env, log)

    def stop(self) -> None:
        """Everything down, in reverse order."""
        for process in [*self.agents.values(), *self.workers]:
            process.stop()
        if self.proxy is not None:
            self.proxy.close()
        if self.broker is not None:
            self.broker.stop()
        self.engine.dispose()
        if self.cluster is not None:
            self.cluster.stop()

    # -- what the devices do --------------------------------------------------------------

    def press_rounds(self, rounds: int, gate: threading.Event) -> None:
        """Each device taps its buttons in turn, one tap per device per round; the rounds
        wait while the gate is closed (so a process can be killed between taps)."""
        for round_no in range(rounds):
            gate.wait()
            button = round_no % len(BUTTON_CATEGORIES)
            for device_id, agent in self.agents.items():
                if agent.send(str(button + 1)):
                    self.presses[(device_id, button)] += 1
            time.sleep(PRESS_GAP_S)

    def trip_breakers(self) -> None:
        """Every device's router goes down: one fault each."""
        for device_id in self.devices:
            (self.workdir / "flags" / device_id).unlink(missing_ok=True)
            self.faults.add(device_id)

    # -- what the cloud has ---------------------------------------------------------------

    def _online(self) -> int:
        with self.sessions() as db:
            return db.scalars(
                select(func.count()).select_from(Device).where(Device.presence == "online")
            ).one()

    def events(self) -> list[tuple[str, str, int, str]]:
        """(device, type, seq, action) of every stored button and fault event."""
        with self.sessions() as db:
            rows = db.execute(
                select(
                    IngestedMessage.device_id,
                    IngestedMessage.type,
                    IngestedMessage.seq,
                    IngestedMessage.action,
                ).where(IngestedMessage.type.in_(("button", "fault")))
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]

    def tickets(self) -> list[tuple[str, str, int]]:
        """(device, category, occurrences) of every ticket."""
        with self.sessions() as db:
            rows = db.execute(select(Ticket.device_id, Ticket.category, Ticket.occurrences))
            return [tuple(row) for row in rows]  # type: ignore[misc]

    def expected_tickets(self) -> dict[tuple[str, str], int]:
        """(device, category) → occurrences the run's presses and faults must produce."""
        expected = {
            (device, BUTTON_CATEGORIES[button]): count
            for (device, button), count in self.presses.items()
        }
        for device in self.faults:
            expected[(device, "network")] = 1
        return expected

    def settled(self) -> bool:
        """Every press and fault stored, and the tickets they make complete."""
        stored = Counter((d, t) for d, t, _s, a in self.events() if t == "button" or a == RAISED)
        want_presses = Counter({d: 0 for d in self.devices})
        for (device, _button), count in self.presses.items():
            want_presses[device] += count
        if any(stored[(d, "button")] < n for d, n in want_presses.items()):
            return False
        if any(stored[(d, "fault")] < 1 for d in self.faults):
            return False
        have = Counter()
        for device, category, occurrences in self.tickets():
            have[(device, category)] += occurrences
        return all(have[key] >= count for key, count in self.expected_tickets().items())

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll until predicate holds; seconds waited. Raises RigError on timeout."""
        started = time.monotonic()
        while not predicate():
            if time.monotonic() - started > timeout:
                raise RigError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(0.25)
        return time.monotonic() - started

    def outcome(self, scenario: str, settle_s: float) -> Outcome:
        """Count what was sent against what was stored."""
        out = Outcome(scenario, settle_s=settle_s)
        out.presses_sent = sum(self.presses.values())
        out.faults_sent = len(self.faults)
        events = self.events()
        per_event = Counter((d, t, s) for d, t, s, _a in events)
        out.events_stored = len(per_event)
        out.events_doubled = sum(n - 1 for n in per_event.values() if n > 1)
        buttons = Counter(d for d, t, _s, _a in events if t == "button")
        raises = Counter(d for d, t, _s, a in events if t == "fault" and a == RAISED)
        for device in self.devices:
            sent = sum(n for (d, _b), n in self.presses.items() if d == device)
            out.events_lost += max(0, sent - buttons[device])
            out.events_doubled += max(0, buttons[device] - sent)
            expected_raises = 1 if device in self.faults else 0
            out.events_lost += max(0, expected_raises - raises[device])
            out.events_doubled += max(0, raises[device] - expected_raises)
        expected = self.expected_tickets()
        found = Counter((d, c) for d, c, _o in self.tickets())
        occurrences = {(d, c): o for d, c, o in self.tickets()}
        out.tickets_expected = len(expected)
        out.tickets_found = sum(1 for key in expected if found[key])
        out.tickets_doubled = sum(n - 1 for n in found.values() if n > 1)
        out.occurrences_wrong = sum(
            1 for key, count in expected.items() if found[key] == 1 and occurrences[key] != count
        )
        unexpected = [key for key in found if key not in expected]
        for name, value in (
            ("events lost", out.events_lost),
            ("events doubled", out.events_doubled),
            ("tickets missing", out.tickets_expected - out.tickets_found),
            ("tickets doubled", out.tickets_doubled),
            ("tickets with a wrong count", out.occurrences_wrong),
            ("unexpected tickets", len(unexpected)),
        ):
            if value:
                out.problems.append(f"{name}: {value}")
        return out


# -- the scenarios ------------------------------------------------------------------------


def _break(rig: Rig, scenario: str, gate: threading.Event) -> None:
    """The fault itself, in the middle of the stream."""
    assert rig.broker is not None and rig.proxy is not None
    if scenario != "network-cut":
        rig.trip_breakers()
    if scenario == "worker-kill":
        rig.workers[0].kill()
        time.sleep(2)
        rig.workers[0].start()
    elif scenario == "broker-restart":
        rig.broker.restart(kill=True)
    elif scenario == "postgres-restart":
        assert rig.cluster is not None
        rig.cluster.crash_restart()
    elif scenario == "network-cut":
        rig.proxy.cut()
        rig.trip_breakers()
        time.sleep(rig.scale.cut_s / 2)
        gate.clear()  # no tap in flight: a tap not yet decided when killed was never made
        time.sleep(1.5)
        victim = rig.agents[rig.devices[0]]
        victim.kill()
        victim.start()
        gate.set()
        time.sleep(max(0.0, rig.scale.cut_s / 2 - 1.5))
        rig.proxy.restore()


def run_scenario(scenario: str, scale: Scale, workdir: Path) -> Outcome:
    """Start a fresh rig, stream presses, break it mid-stream, settle and count."""
    rig = Rig(workdir, scale, postgres=scenario == "postgres-restart")
    try:
        rig.start()
        gate = threading.Event()
        gate.set()
        stream = threading.Thread(target=rig.press_rounds, args=(scale.presses, gate))
        stream.start()
        time.sleep(scale.presses * PRESS_GAP_S / 3)
        _break(rig, scenario, gate)
        stream.join()
        try:
            settle = rig.wait(rig.settled, scale.settle_s, f"{scenario}: everything stored")
        except RigError:
            settle = float("nan")  # the counts below say what is missing
        time.sleep(1.0)  # late duplicates, if any, would land now
        return rig.outcome(scenario, settle)
    finally:
        rig.stop()


@contextlib.contextmanager
def scratch(keep: bool) -> Iterator[Path]:
    """A temporary folder for one scenario's files and logs."""
    path = Path(tempfile.mkdtemp(prefix="crowdfix-faults-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def prerequisites(scenario: str) -> str | None:
    """Why a scenario cannot run here, or None."""
    if find_mosquitto() is None:
        return "mosquitto is not installed (apt-get install mosquitto)"
    if scenario == "postgres-restart":
        if find_postgres_bin() is None:
            return "PostgreSQL server binaries are not installed (apt-get install postgresql)"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser to start PostgreSQL as postgres"
    return None


def main(argv: list[str] | None = None) -> int:
    """Command line of this benchmark."""
    parser = argparse.ArgumentParser(
        prog="python -m bench faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--devices", type=int, default=20, help="agent processes")
    parser.add_argument("--presses", type=int, default=40, help="presses per device")
    parser.add_argument("--cut", type=float, default=150.0, help="network cut, seconds")
    parser.add_argument("--settle", type=float, help="longest wait for the system to settle")
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only these")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder and logs")
    args = parser.parse_args(argv)
    scale = Scale(args.devices, args.presses, args.cut, args.settle or max(300.0, args.cut * 2))
    rows, failed = [], False
    for scenario in args.only or SCENARIOS:
        reason = prerequisites(scenario)
        if reason:
            print(f"{scenario}: skipped, {reason}", file=sys.stderr)
            continue
        print(f"{scenario}: running ({scale.devices} agents, {scale.presses} presses each)…",
              file=sys.stderr)  # fmt: skip
        with scratch(args.keep) as workdir:
            out = run_scenario(scenario, scale, workdir)
        failed |= not out.ok
        rows.append(
            [
                out.scenario,
                out.presses_sent + out.faults_sent,
                out.events_stored,
                out.events_lost,
                out.events_doubled,
                f"{out.tickets_found}/{out.tickets_expected}",
                out.tickets_doubled,
                out.occurrences_wrong,
                out.settle_s,
                "ok" if out.ok else "; ".join(out.problems),
            ]
        )
    header = ["scenario", "events sent", "stored", "lost", "doubled", "tickets", "doubled",
              "wrong count", "settled (s)", "verdict"]  # fmt: skip
    print(table("Fault injection (every event once, every ticket once)", header, rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
