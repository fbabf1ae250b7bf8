"""Scale: 10,000 simulated devices on one Mosquitto (the deploy config: every device logs in
with its own password and ACL entry), sending retained births, last wills and heartbeats like
the agent; one ingest worker and the API on SQLite.

Measured: how long the fleet takes to connect (and each CONNECT → CONNACK), how long until
the cloud shows them all online, resident memory of the broker, the worker and the API, the
worker's CPU, and how long after a device dies its offline state appears: for a device
whose connection drops (power cut, crash: the broker sends its will at once) and for one
that goes silent with its TCP connection left open (a hung Pi, a dead link: the broker
notices after 1.5 keepalives). The reference beside it: ThingsBoard's default inactivity
timeout (600 s, checked every 60 s).

The load generator is a minimal asyncio MQTT 3.1.1 client (CONNECT with will, PUBLISH QoS 1,
PINGREQ), several thousand connections per process, several processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from bench.common import Progress, cpu_seconds, median, percentile, rss_mb, table
from cloud.clock import utc_now
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.devices.models import Device
from cloud.provisioning.mosquitto import AccountKind
from cloud.provisioning.store import CredentialStore
from contracts import Channel, Heartbeat, Status, encode, uplink_topic
from crowdfix.brokers import MosquittoBroker, SecureConfig, free_port, port_open

CLOUD = "crowdfix-cloud"
THINGSBOARD_INACTIVITY_S = 600.0
CONNECTS_IN_FLIGHT = 64  # per load process
PINGREQ = b"\xc0\x00"


# -- a minimal MQTT 3.1.1 device --------------------------------------------------------


def _string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            return bytes([first]) + bytes(encoded) + body


def connect_packet(
    client_id: str, username: str, password: str, will: tuple[str, bytes], keepalive: int
) -> bytes:
    """CONNECT, clean session, with a retained QoS 1 will."""
    flags = 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02
    header = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    payload = _string(client_id) + _string(will[0]) + _string(will[1])
    return _packet(0x10, header + payload + _string(username) + _string(password))


def publish_packet(topic: str, payload: bytes, mid: int, *, retain: bool) -> bytes:
    """PUBLISH with QoS 1."""
    return _packet(0x32 | int(retain), _string(topic) + struct.pack("!H", mid) + payload)


class SimDevice:
    """One device's connection: birth on connect, heartbeats, PINGREQ; die or freeze."""

    def __init__(self, device_id: str, password: str, heartbeat_s: float, keepalive: int) -> None:
        self.device_id, self.password = device_id, password
        self.heartbeat_s, self.keepalive = heartbeat_s, keepalive
        self.session = datetime.now(UTC)
        self.writer: asyncio.StreamWriter | None = None
        self.frozen = False
        self.mid = 0
        self.seq = 0

    def _status(self, state: str) -> bytes:
        return encode(
            Status(
                device_id=self.device_id,
                timestamp=self.session,
                seq=0,
                state=state,  # type: ignore[arg-type]
                agent_version="sim",
                profile="sim",
            )
        )

    def _publish(self, channel: Channel, payload: bytes) -> None:
        assert self.writer is not None
        self.mid = self.mid % 65535 + 1
        topic = uplink_topic(self.device_id, channel)
        self.writer.write(
            publish_packet(topic, payload, self.mid, retain=channel is Channel.STATUS)
        )

    async def connect(self, port: int) -> float:
        """Connect and publish the birth; seconds CONNECT → CONNACK."""
        reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        status_topic = uplink_topic(self.device_id, Channel.STATUS)
        started = time.perf_counter()
        self.writer.write(
            connect_packet(
                self.device_id,
                self.device_id,
                self.password,
                (status_topic, self._status("offline")),
                self.keepalive,
            )
        )
        connack = await reader.readexactly(4)
        took = time.perf_counter() - started
        if connack[3] != 0:
            raise RuntimeError(f"{self.device_id}: CONNACK return code {connack[3]}")
        self._publish(Channel.STATUS, self._status("online"))
        asyncio.get_running_loop().create_task(self._drain(reader))
        asyncio.get_running_loop().create_task(self._beat())
        return took

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(4096):  # PUBACKs and PINGRESPs, not needed
            pass

    async def _beat(self) -> None:
        """A heartbeat every heartbeat_s; a PINGREQ in between when the keepalive needs one."""
        started = time.monotonic()
        tick = min(self.heartbeat_s, self.keepalive / 2)
        next_beat = started + self.heartbeat_s
        while True:
            await asyncio.sleep(tick)
            if self.writer is None or self.frozen:
                return
            if time.monotonic() < next_beat:
                self.writer.write(PINGREQ)
                continue
            next_beat += self.heartbeat_s
            self.seq += 1
            beat = Heartbeat(
                device_id=self.device_id,
                timestamp=datetime.now(UTC),
                seq=self.seq,
                agent_version="sim",
                profile="sim",
                interval_s=self.heartbeat_s,
                uptime_s=time.monotonic() - started,
            )
            self._publish(Channel.HEARTBEAT, encode(beat))

    def die(self) -> None:
        """The connection drops without a DISCONNECT (the broker sends the will at once)."""
        if self.writer is not None:
            self.writer.transport.abort()
            self.writer = None

    def freeze(self) -> None:
        """Silence with the TCP connection left open (the broker waits 1.5 keepalives)."""
        self.frozen = True


async def _load(args: argparse.Namespace) -> None:
    """A load process: connect its devices, report, then obey commands on stdin."""
    passwords: dict[str, str] = json.loads(Path(args.passwords).read_text())
    ids = sorted(passwords)[args.first : args.first + args.count]
    devices = {d: SimDevice(d, passwords[d], args.heartbeat, args.keepalive) for d in ids}
    limit = asyncio.Semaphore(CONNECTS_IN_FLIGHT)

    async def one(device: SimDevice) -> float:
        async with limit:
            return await device.connect(args.port)

    started = time.perf_counter()
    latencies = await asyncio.gather(*(one(d) for d in devices.values()))
    report = {"connected": len(latencies), "seconds": time.perf_counter() - started}
    print(json.dumps(report | {"latencies": latencies}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        verb, *names = line.decode().split()
        for name in names:
            if name in devices:
                getattr(devices[name], verb)()
        print(json.dumps({"done": verb, "at": time.time()}), flush=True)


# -- the run ------------------------------------------------------------------------------


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_raise_fd_limit,
        )


class Fleet:
    """The load processes, each owning a slice of the device ids."""

    def __init__(self, args: argparse.Namespace, passwords_file: Path, port: int) -> None:
        share = -(-args.devices // args.processes)
        self.procs = [
            subprocess.Popen(
                self._command(args, passwords_file, port, i * share, share),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                preexec_fn=_raise_fd_limit,
            )
            for i in range(args.processes)
        ]

    @staticmethod
    def _command(
        args: argparse.Namespace, passwords: Path, port: int, first: int, count: int
    ) -> list[str]:
        options = {"--passwords": passwords, "--first": first, "--count": count, "--port": port,
                   "--heartbeat": args.heartbeat, "--keepalive": args.keepalive}  # fmt: skip
        return [sys.executable, "-m", "bench.scale", "_load"] + [
            str(part) for pair in options.items() for part in pair
        ]

    def connected(self) -> list[dict[str, object]]:
        """Each process's connect report (blocks until all have connected)."""
        reports = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("a load process died while connecting (see its stderr)")
            reports.append(json.loads(line))
        return reports

    def command(self, verb: str, names: list[str]) -> float:
        """Tell every process to kill/freeze these devices; when the first one did it."""
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{verb} {' '.join(names)}\n")
            proc.stdin.flush()
        stamps = []
        for proc in self.procs:
            assert proc.stdout is not None
            stamps.append(json.loads(proc.stdout.readline())["at"])
        return min(stamps)

    def stop(self) -> None:
        """End every load process."""
        for proc in self.procs:
            proc.kill()
            proc.wait(10)


def _offline_after(sessions, names: list[str], since: float, timeout: float) -> list[float]:
    """Seconds from `since` (epoch) until each device shows offline in the database."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(names) and time.monotonic() < deadline:
        with sessions() as db:
            rows = db.execute(
                select(Device.id).where(Device.id.in_(names), Device.presence == "offline")
            )
            now = time.time()
            for (device_id,) in rows:
                seen.setdefault(device_id, now - since)
        time.sleep(0.05)
    return [seen.get(n, float("inf")) for n in names]


def _online(sessions) -> int:
    from sqlalchemy import func

    with sessions() as db:
        query = select(func.count()).select_from(Device).where(Device.presence == "online")
        return int(db.scalar(query) or 0)


def run(args: argparse.Namespace) -> int:
    """Provision, connect, measure, break, measure."""
    _raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="crowdfix-scale-"))
    ids = [f"sim-{i:06d}" for i in range(args.devices)]
    print(f"provisioning {len(ids):,} broker accounts and registry entries…", file=sys.stderr)
    store = CredentialStore(workdir / "secrets")
    passwords = store.add_many(ids, AccountKind.DEVICE)
    cloud_password = store.add(CLOUD, AccountKind.CLOUD)
    passwords_file = workdir / "passwords.json"
    passwords_file.write_text(json.dumps(passwords))
    database_url = f"sqlite:///{workdir / 'cloud.sqlite3'}"
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    now = utc_now()
    with sessions.begin() as db:
        rows = [
            {"id": d, "profile": "sim", "presence": "unknown", "registered_at": now} for d in ids
        ]
        db.execute(insert(Device), rows)
    broker = MosquittoBroker(
        workdir / "mosquitto", secure=SecureConfig(store.directory), extra_config=""
    )
    broker.start()
    env = {
        "CROWDFIX_DATABASE_URL": database_url,
        "CROWDFIX_MQTT_URL": broker.url,
        "CROWDFIX_MQTT_USERNAME": CLOUD,
        "CROWDFIX_MQTT_PASSWORD": cloud_password,
        "CROWDFIX_METRICS_PORT": "0",
        "CROWDFIX_SWEEP_INTERVAL_S": "1",
        "CROWDFIX_LOG_LEVEL": "WARNING",
    }
    api_port = free_port()
    worker = _spawn(["-m", "crowdfix.cli", "cloud", "ingest"], env, workdir / "worker.log")
    api = _spawn(
        ["-m", "crowdfix.cli", "cloud", "serve", "--port", str(api_port)], env, workdir / "api.log"
    )
    fleet = None
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", api_port) and time.monotonic() < deadline:
            time.sleep(0.2)
        idle = {"broker": rss_mb(broker.process.pid), "worker": rss_mb(worker.pid)}  # type: ignore[union-attr]
        print(f"connecting {len(ids):,} devices from {args.processes} processes…", file=sys.stderr)
        started = time.monotonic()
        fleet = Fleet(args, passwords_file, broker.port)
        reports = fleet.connected()
        connect_s = time.monotonic() - started
        latencies = [x for r in reports for x in r["latencies"]]  # type: ignore[union-attr]
        progress = Progress("cloud sees them online", len(ids))
        while (online := _online(sessions)) < len(ids):
            progress.update(online)
            if time.monotonic() - started > args.timeout:
                break
            time.sleep(0.5)
        progress.update(online)
        all_online_s = time.monotonic() - started
        cpu_before, steady_started = cpu_seconds(worker.pid), time.monotonic()
        print(f"steady state with heartbeats for {args.steady:g}s…", file=sys.stderr)
        time.sleep(args.steady)
        worker_cpu = (cpu_seconds(worker.pid) - cpu_before) / (time.monotonic() - steady_started)
        loaded = {
            "broker": rss_mb(broker.process.pid),  # type: ignore[union-attr]
            "worker": rss_mb(worker.pid),
            "api": rss_mb(api.pid),
        }
        victims = ids[1 :: max(1, len(ids) // args.deaths)][: args.deaths]
        dropped, frozen = victims[::2], victims[1::2]
        print(f"{len(dropped)} connections drop, {len(frozen)} devices go silent…", file=sys.stderr)
        at = fleet.command("die", dropped)
        drop_latency = _offline_after(sessions, dropped, at, 60)
        at = fleet.command("freeze", frozen)
        freeze_latency = _offline_after(sessions, frozen, at, args.keepalive * 2 + 60)
    finally:
        if fleet is not None:
            fleet.stop()
        for proc in (api, worker):
            proc.terminate()
            proc.wait(30)
        broker.stop()
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)

    ms = [x * 1000 for x in latencies]
    per_device = f"{(loaded['broker'] - idle['broker']) * 1024 / len(ids):.1f} KiB/device"
    print(
        table(
            f"Scale: {len(ids):,} devices, heartbeat every {args.heartbeat:g}s, "
            f"keepalive {args.keepalive}s, {args.processes} load processes (2 cores shared)",
            ["measure", "value", "reference"],
            [
                ["devices connected", f"{len(latencies):,}", f"{len(ids):,} asked"],
                ["connect all (s)", connect_s, f"{len(latencies) / connect_s:,.0f} connects/s"],
                ["CONNECT→CONNACK p50 / p99 (ms)",
                 f"{percentile(ms, 50):.1f} / {percentile(ms, 99):.1f}", "max " f"{max(ms):.0f}"],
                ["all online in the cloud (s)", all_online_s, f"{online:,} online"],
                ["broker RSS (MiB)", loaded["broker"], f"idle {idle['broker']:.1f}; {per_device}"],
                ["ingest worker RSS (MiB)", loaded["worker"], f"idle {idle['worker']:.1f}"],
                ["ingest worker CPU (% of a core)", worker_cpu * 100,
                 f"{len(ids) / args.heartbeat:,.0f} heartbeats/s"],
                ["API RSS (MiB)", loaded["api"], ""],
                ["offline after a dropped connection p50 / max (s)",
                 f"{median(drop_latency):.2f} / {max(drop_latency):.2f}",
                 f"ThingsBoard default: {THINGSBOARD_INACTIVITY_S:.0f} s + up to 60 s"],
                ["offline after silence p50 / max (s)",
                 f"{median(freeze_latency):.2f} / {max(freeze_latency):.2f}",
                 f"1.5 x keepalive = {1.5 * args.keepalive:g}"],
            ],
        )
    )  # fmt: skip
    return 0 if online == len(ids) and max(drop_latency) < float("inf") else 1


def main(argv: list[str] | None = None) -> int:
    """Command line of this benchmark."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_load"]:
        load = argparse.ArgumentParser()
        for name, kind in (
            ("--passwords", str),
            ("--first", int),
            ("--count", int),
            ("--port", int),
            ("--heartbeat", float),
            ("--keepalive", int),
        ):
            load.add_argument(name, type=kind, required=True)  # fmt: skip
        asyncio.run(_load(load.parse_args(argv[1:])))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m bench scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--heartbeat", type=float, default=60.0, help="seconds between beats")
    parser.add_argument("--keepalive", type=int, default=30, help="MQTT keepalive (the agent's)")
    parser.add_argument("--steady", type=float, default=60.0, help="seconds of steady state")
    parser.add_argument("--deaths", type=int, default=200, help="devices that die")
    parser.add_argument("--timeout", type=float, default=300.0)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
