"""Load for the ingest benchmark: device messages published with QoS 1 from their own process,
and subscribers that only count (the baselines): plain paho, and the worker's own connection."""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cloud.adapters.mqtt import RECEIVE_MAXIMUM
from contracts import Channel, Heartbeat, Reading, Telemetry, encode, uplink_topic
from mqttlink import BrokerSettings, Inbound, MqttLink

IDLE_LIMIT_S = 10.0


def device_ids(n: int) -> list[str]:
    """The simulated fleet."""
    return [f"bench-{i:05d}" for i in range(n)]


def telemetry_payloads(devices: list[str], count: int, seed: int) -> list[tuple[str, bytes]]:
    """Telemetry (four readings) with a heartbeat now and then, as a fleet sends it."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        device = devices[i % len(devices)]
        now = datetime.now(UTC)
        if i % 100 == 99:
            message: Telemetry | Heartbeat = Heartbeat(
                device_id=device,
                timestamp=now,
                seq=seed * 10**9 + i,
                agent_version="0.1.0",
                profile="pos-terminal",
                interval_s=60,
            )
        else:
            message = Telemetry(
                device_id=device,
                timestamp=now,
                seq=seed * 10**9 + i,
                readings=[
                    Reading(name=name, value=round(rng.uniform(0, 100), 2), timestamp=now)
                    for name in ("cpu_c", "load", "disk_pct", "door")
                ],
            )
        out.append((uplink_topic(device, Channel(message.type)), encode(message)))
    return out


def publish(
    url: str, payloads: list[tuple[str, bytes]], client_id: str, rate: float | None = None
) -> None:
    """Publish with QoS 1, as fast as possible or at a steady rate (messages per second), and
    wait for every PUBACK before leaving (a publisher that hangs up early loses its tail)."""
    acked = [0]
    link = MqttLink(
        BrokerSettings.from_url(url),
        client_id,
        on_published=lambda _mid, _gen: acked.__setitem__(0, acked[0] + 1),
    )
    link.start()
    if not link.wait_connected(10):
        raise SystemExit(f"load generator cannot connect: {link.last_error}")
    started = time.monotonic()
    for i, (topic, payload) in enumerate(payloads):
        while not link.publish(topic, payload, qos=1).sent:
            time.sleep(0.001)
        if rate:
            ahead = started + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    deadline = time.monotonic() + 120
    while acked[0] < len(payloads) and time.monotonic() < deadline:
        time.sleep(0.05)
    link.stop()
    if acked[0] < len(payloads):
        raise SystemExit(f"only {acked[0]} of {len(payloads)} messages were acknowledged")


class _Seen:
    """Arrivals counted: how many, the first and last one's time and CPU time."""

    def __init__(self) -> None:
        self.n = 0
        self.first = self.last = self.cpu0 = self.cpu1 = 0.0

    def arrived(self) -> None:
        now = time.monotonic()
        if self.n == 0:
            self.first, self.cpu0 = now, time.process_time()
        self.n += 1
        self.last, self.cpu1 = now, time.process_time()

    def report(self) -> None:
        print(f"{self.n} {self.first} {self.last} {self.cpu1 - self.cpu0}", flush=True)


def _count_until(seen: _Seen, count: int, step: Callable[[], object]) -> None:
    idle_since = time.monotonic()
    while seen.n < count:
        before = seen.n
        step()
        if seen.n != before:
            idle_since = time.monotonic()
        elif seen.n and time.monotonic() - idle_since > IDLE_LIMIT_S:
            print(f"stalled after {seen.n} of {count} messages", file=sys.stderr, flush=True)
            break
    seen.report()


def subscribe_and_count(url: str, client_id: str, count: int, reader: str = "paho") -> None:
    """A subscriber that only counts (QoS 1): prints first and last arrival. reader "paho":
    a plain paho client, acknowledging each message at once; "crowdfix": the worker's own
    connection (mqttlink: read buffer, fast lane), acknowledging in batches of 100 as the
    worker does, with nothing behind it."""
    seen = _Seen()
    if reader == "crowdfix":
        _count_with_link(url, client_id, count, seen)
        return
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    def on_message(_c, _u, _m) -> None:
        seen.arrived()

    settings = BrokerSettings.from_url(url)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe("dt/crowdfix/v1/+/+", qos=1)
    client.connect(settings.host, settings.port, clean_start=False)
    print("ready", flush=True)
    _count_until(seen, count, lambda: client.loop(timeout=0.5))
    client.disconnect()


def _count_with_link(url: str, client_id: str, count: int, seen: _Seen) -> None:
    held: list[Inbound] = []

    def on_message(message: Inbound) -> None:
        seen.arrived()
        held.append(message)
        if len(held) >= 100 or seen.n >= count:
            link.ack_many(held)
            held.clear()

    link = MqttLink(
        BrokerSettings.from_url(url),
        client_id,
        on_message=on_message,
        persistent_session=True,
        manual_ack=True,
        receive_maximum=RECEIVE_MAXIMUM,
    )
    link.subscribe("dt/crowdfix/v1/+/+", qos=1)
    link.start()
    if not link.wait_subscribed(10):
        raise SystemExit(f"subscriber cannot connect: {link.last_error}")
    print("ready", flush=True)
    _count_until(seen, count, lambda: time.sleep(0.05))
    link.stop(end_session=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.load publish|subscribe ...` (used by bench.ingest)."""
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("mode", choices=["publish", "subscribe"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--client-id", default="bench-load")
    parser.add_argument("--reader", choices=["paho", "crowdfix"], default="paho")
    args = parser.parse_args(argv)
    if args.mode == "subscribe":
        subscribe_and_count(args.url, args.client_id, args.count, args.reader)
    else:
        payloads = telemetry_payloads(device_ids(args.devices), args.count, args.seed)
        publish(args.url, payloads, args.client_id, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
