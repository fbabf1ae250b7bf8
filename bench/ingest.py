"""Ingest benchmark: throughput of one and of two `crowdfix cloud ingest` workers, each beside
the raw delivery rate of a plain paho subscriber measured in the same run on the same broker;
and press → ticket latency under background telemetry from 1,000 simulated devices.

Throughput: a backlog of telemetry (four readings a message, a heartbeat every hundredth) is
queued in Mosquitto for a paused consumer (SIGSTOP), then the consumer is resumed and timed
until it has acknowledged everything: no load generator competes for the two cores while
the clock runs. The plain subscriber is timed before and after the workers, and the faster
of the two is the baseline (this machine's speed drifts between runs). Beside it, the same
for the worker's own MQTT connection with nothing behind it (mqttlink's read buffer and fast
lane, batched acknowledgements): what the worker's processing costs over its reader.
Latency: one worker live, 1,000 devices sending telemetry at a steady rate, probe presses
from other devices, each timed from publish to the cloud's receipt (sent after the
ticket's transaction commits).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Progress, cpu_seconds, percentile, table
from bench.load import device_ids
from cloud.db import make_engine, make_sessionmaker, migrate, transaction
from cloud.devices import service as devices
from cloud.devices.schemas import DeviceIn
from contracts import ButtonEvent, Channel, encode, uplink_topic
from crowdfix.brokers import MosquittoBroker, free_port, port_open
from mqttlink import BrokerSettings, Inbound, MqttLink

BROKER_CONFIG = "max_queued_messages 2000000\nmax_inflight_messages 2000\n"
TARGET_RATIO = 0.5
# Subscribers that only count, each timed before and after the workers (the faster run is
# the one compared with): the baseline, and the worker's own reader.
BASELINES = {
    "paho": "plain paho subscriber, the baseline",
    "crowdfix": "the worker's MQTT reader, counting only",
}
TARGET_P99_MS = 20.0


def register_fleet(database_url: str, ids: list[str]) -> None:
    """Register the simulated devices (unknown devices are refused)."""
    engine = make_engine(database_url)
    migrate(engine)
    now = datetime.now(UTC)
    with transaction(make_sessionmaker(engine)) as db:
        for device_id in ids:
            devices.register(
                db_session=db, device_in=DeviceIn(id=device_id, profile="pos-terminal"), now=now
            )
    engine.dispose()


def _env(database_url: str, broker: MosquittoBroker, client_id: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDFIX_")}
    env.update(
        {
            "CROWDFIX_DATABASE_URL": database_url,
            "CROWDFIX_MQTT_URL": broker.url,
            "CROWDFIX_INGEST_CLIENT_ID": client_id,
            # One share group per phase: each measurement's workers split only its own backlog.
            "CROWDFIX_INGEST_GROUP": f"bench-{client_id.rsplit('-', 1)[0]}",
            "CROWDFIX_METRICS_PORT": str(port),
            "CROWDFIX_SWEEP_INTERVAL_S": "3600",
            "CROWDFIX_LOG_LEVEL": "WARNING",
        }
    )
    return env


class Worker:
    """A `crowdfix cloud ingest` process with its Prometheus endpoint."""

    def __init__(self, database_url: str, broker: MosquittoBroker, client_id: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crowdfix.cli", "cloud", "ingest"],
            env=_env(database_url, broker, client_id, self.port),
        )
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the ingest worker did not start")
            time.sleep(0.1)
        time.sleep(1.0)  # connected and subscribed

    def metrics(self) -> str:
        """Its Prometheus text."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def processed(self) -> int:
        """Messages it has stored and acknowledged."""
        return int(
            sum(
                float(line.split()[-1])
                for line in self.metrics().splitlines()
                if line.startswith("crowdfix_messages_processed_total{")
            )
        )

    def latency_quantile(self, path: str, q: float) -> float:
        """Upper bound (ms) of the histogram bucket holding the q-quantile of in-worker
        latency (off the wire → committed → receipt handed to the socket)."""
        buckets = []
        for line in self.metrics().splitlines():
            if line.startswith("crowdfix_ingest_seconds_bucket{") and f'path="{path}"' in line:
                le = line.split('le="', 1)[1].split('"', 1)[0]
                buckets.append((float(le), float(line.split()[-1])))
        buckets.sort()
        total = buckets[-1][1] if buckets else 0
        return next((le * 1000 for le, n in buckets if total and n >= q * total), float("nan"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(30)


def publish_backlog(url: str, count: int, devices: int, processes: int = 2, seed: int = 1) -> None:
    """Queue `count` telemetry messages from `devices` devices with QoS 1, from several
    generator processes."""
    share = count // processes
    generators = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.load",
                "publish",
                "--url",
                url,
                "--count",
                str(share),
                "--devices",
                str(devices),
                "--seed",
                str(seed * 10 + i),
                "--client-id",
                f"gen-{seed}-{i}",
            ]
        )
        for i in range(processes)
    ]
    for generator in generators:
        if generator.wait(600) != 0:
            raise RuntimeError("a load generator failed")


@contextmanager
def cpu_meter(pids: dict[str, int]) -> Iterator[dict[str, float]]:
    """CPU share of each process over the block, in % of one core."""
    start = {name: cpu_seconds(pid) for name, pid in pids.items()}
    began = time.monotonic()
    shares: dict[str, float] = {}
    yield shares
    elapsed = time.monotonic() - began
    for name, pid in pids.items():
        try:
            shares[name] = (cpu_seconds(pid) - start[name]) / elapsed * 100
        except FileNotFoundError:
            shares[name] = float("nan")


def raw_rate(
    broker: MosquittoBroker, count: int, devices: int, reader: str = "paho"
) -> tuple[float, dict[str, float]]:
    """Messages per second a subscriber that only counts takes off a backlog: plain paho, or
    ("crowdfix") the worker's own MQTT connection with nothing behind it."""
    sub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.load",
            "subscribe",
            "--url",
            broker.url,
            "--count",
            str(count),
            "--client-id",
            f"{reader}-subscriber",
            "--reader",
            reader,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sub.stdout is not None
    sub.stdout.readline()  # ready: subscribed
    time.sleep(0.5)
    sub.send_signal(signal.SIGSTOP)
    publish_backlog(broker.url, count, devices, seed=2)
    pids = {"broker": broker.process.pid}  # type: ignore[union-attr]
    with cpu_meter(pids) as shares:
        sub.send_signal(signal.SIGCONT)
        line = sub.stdout.readline().split()
    sub.wait(60)
    if len(line) != 4:
        raise RuntimeError(f"the {reader} subscriber did not receive the whole backlog")
    n, first, last, cpu = int(line[0]), float(line[1]), float(line[2]), float(line[3])
    shares["subscriber"] = cpu / (last - first) * 100
    return (n - 1) / (last - first), shares


def worker_rate(
    broker: MosquittoBroker,
    database_url: str,
    n_workers: int,
    count: int,
    devices: int,
    label: str,
) -> tuple[float, dict[str, float]]:
    """Messages per second n workers take off a backlog (stored and acknowledged)."""
    workers = [Worker(database_url, broker, f"{label}-{i}") for i in range(n_workers)]
    try:
        for w in workers:
            w.process.send_signal(signal.SIGSTOP)
        publish_backlog(broker.url, count, devices, seed=3 + n_workers)
        pids = {"broker": broker.process.pid}  # type: ignore[union-attr]
        pids |= {f"worker {i + 1}": w.process.pid for i, w in enumerate(workers)}
        progress = Progress(f"{n_workers} worker(s) draining", count)
        with cpu_meter(pids) as shares:
            for w in workers:
                w.process.send_signal(signal.SIGCONT)
            # From the first poll that sees work done to the one that sees all of it, counting
            # only what was done in between (what the first poll saw was done before it).
            first: tuple[float, int] | None = None
            done = 0
            while done < count:
                done = sum(w.processed() for w in workers)
                now = time.monotonic()
                if first is None and done:
                    first = (now, done)
                progress.update(done)
                time.sleep(0.1)
        assert first is not None
        return (done - first[1]) / (now - first[0]), shares
    finally:
        for w in workers:
            w.stop()


def latency(
    broker: MosquittoBroker,
    database_url: str,
    probes: list[str],
    background_rate: float,
    devices: int,
) -> tuple[list[float], dict[str, float], tuple[float, float]]:
    """Press → receipt (ticket committed) in milliseconds, under background telemetry; and
    the worker's own share (its histogram's bucket bounds for p50 and p99)."""
    worker = Worker(database_url, broker, "latency")
    background = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.load",
            "publish",
            "--url",
            broker.url,
            "--count",
            str(int(background_rate * (len(probes) / 20 + 15))),
            "--devices",
            str(devices),
            "--rate",
            str(background_rate),
            "--seed",
            "9",
            "--client-id",
            "background",
        ]
    )
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    done = threading.Event()

    def on_receipt(message: Inbound) -> None:
        mid = message.payload.split(b'"message_ids":["', 1)[1].split(b'"', 1)[0].decode()
        got[mid] = time.perf_counter()
        if len(got) >= len(probes):
            done.set()

    link = MqttLink(BrokerSettings.from_url(broker.url), "prober", on_message=on_receipt)
    link.subscribe("cmd/crowdfix/v1/+/receipt")
    link.start()
    link.wait_connected(10)
    time.sleep(3)  # the background load is flowing
    try:
        pids = {
            "broker": broker.process.pid,
            "worker": worker.process.pid,  # type: ignore[union-attr]
            "load generator": background.pid,
        }
        progress = Progress("press → ticket probes", len(probes))
        with cpu_meter(pids) as shares:
            for i, device in enumerate(probes):
                event = ButtonEvent(
                    device_id=device,
                    timestamp=datetime.now(UTC),
                    seq=1,
                    button="help",
                    category="till",
                )
                sent[event.message_id] = time.perf_counter()
                link.publish(uplink_topic(device, Channel.BUTTON), encode(event), qos=1)
                progress.update(i + 1)
                time.sleep(0.05)
            done.wait(30)
        in_worker = (worker.latency_quantile("event", 0.5), worker.latency_quantile("event", 0.99))
    finally:
        link.stop()
        background.terminate()
        background.wait(10)
        worker.stop()
    latencies = [(got[m] - sent[m]) * 1000 for m in sent if m in got]
    return latencies, shares, in_worker


def _shares(shares: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.0f}%" for name, value in shares.items())


def run(args: argparse.Namespace) -> int:
    """Measure and print; exit status 1 when a target is missed."""
    with tempfile.TemporaryDirectory() as tmp:
        database_url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        fleet = device_ids(args.devices)
        probes = [f"probe-{i:04d}" for i in range(args.probes)]
        register_fleet(database_url, fleet + probes)
        broker = MosquittoBroker(Path(tmp) / "mosquitto", extra_config=BROKER_CONFIG).start()
        try:
            # The baseline before and after the workers: the faster of the two is the one
            # compared with (this machine's speed drifts between runs).
            n, devices = args.count, args.devices
            runs = {reader: [raw_rate(broker, n, devices, reader)] for reader in BASELINES}
            one, one_cpu = worker_rate(broker, database_url, 1, n, devices, "solo")
            two, two_cpu = worker_rate(broker, database_url, 2, n, devices, "pair")
            for reader, found in runs.items():
                found.append(raw_rate(broker, n, devices, reader))
            fastest = {reader: max(found, key=lambda r: r[0]) for reader, found in runs.items()}
            raw, lean = fastest["paho"][0], fastest["crowdfix"][0]
            lat, lat_cpu, in_worker = latency(
                broker, database_url, probes, args.background_rate, devices
            )
        finally:
            broker.stop()
    print(
        table(
            f"Ingest throughput: {args.count:,} telemetry messages (4 readings each, 1% "
            f"heartbeats) from {args.devices:,} devices, drained from a Mosquitto backlog; "
            f"database {'PostgreSQL' if 'postgres' in database_url else 'SQLite'}",
            [
                "consumer",
                "messages/s",
                "vs raw subscriber",
                "vs the worker's reader",
                "CPU (% of one core, 2 cores in all)",
            ],
            [
                [
                    f"{BASELINES[reader]} (the faster of "
                    f"{' and '.join(f'{r:,.0f}' for r, _ in runs[reader])})",
                    rate,
                    rate / raw,
                    rate / lean if reader != "paho" else "",
                    _shares(cpu),
                ]
                for reader, (rate, cpu) in fastest.items()
            ]
            + [
                ["1 crowdfix worker", one, one / raw, one / lean, _shares(one_cpu)],
                ["2 crowdfix workers", two, two / raw, two / lean, _shares(two_cpu)],
            ],
        )
    )
    print(f"2 workers / 1 worker: {two / one:.2f}x (the load generator was idle while timed)")
    print()
    print(
        table(
            f"Press → ticket (receipt after commit), {len(lat)} probes at 20/s, background "
            f"telemetry {args.background_rate:,.0f} msg/s from {args.devices:,} devices; "
            f"CPU: {_shares(lat_cpu)}",
            ["measured", "p50 ms", "p90 ms", "p99 ms", "max ms"],
            [
                [
                    "end to end: publish → receipt at the device",
                    percentile(lat, 50),
                    percentile(lat, 90),
                    percentile(lat, 99),
                    max(lat),
                ],
                [
                    "in the worker (histogram bucket bounds)",
                    f"≤ {in_worker[0]:g}",
                    "",
                    f"≤ {in_worker[1]:g}",
                    "",
                ],
            ],
        )
    )
    ok_ratio, ok_p99 = one / raw >= TARGET_RATIO, percentile(lat, 99) <= TARGET_P99_MS
    print(
        f"targets: 1 worker ≥ {TARGET_RATIO:.0%} of raw → {'met' if ok_ratio else 'MISSED'}"
        f" ({one / raw:.0%}); p99 ≤ {TARGET_P99_MS:g} ms → {'met' if ok_p99 else 'MISSED'}"
        f" ({percentile(lat, 99):.1f} ms); probes answered {len(lat)}/{len(probes)}"
    )
    return 0 if ok_ratio and ok_p99 and len(lat) == len(probes) else 1


def main(argv: list[str] | None = None) -> int:
    """Command line of this benchmark."""
    parser = argparse.ArgumentParser(
        prog="python -m bench ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=int, default=50_000, help="backlog size")
    parser.add_argument("--devices", type=int, default=1000, help="simulated devices")
    parser.add_argument("--probes", type=int, default=300, help="timed presses")
    parser.add_argument(
        "--background-rate",
        type=float,
        default=1000,
        help="telemetry messages per second during the latency probes",
    )
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    return run(parser.parse_args(argv))
