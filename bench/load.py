"""Load for the ingest benchmark: device messages published with QoS 1 from their own process,
and a plain paho subscriber that only counts (the baseline)."""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime

from contracts import Channel, Heartbeat, Reading, Telemetry, encode, uplink_topic
from mqttlink import BrokerSettings, MqttLink

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


def subscribe_and_count(url: str, client_id: str, count: int) -> None:
    """A plain paho subscriber (QoS 1, acknowledges at once): prints first and last arrival."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    seen = {"n": 0, "first": 0.0, "last": 0.0, "cpu0": 0.0, "cpu1": 0.0}

    def on_message(_c, _u, _m) -> None:
        now = time.monotonic()
        if seen["n"] == 0:
            seen["first"], seen["cpu0"] = now, time.process_time()
        seen["n"] += 1
        seen["last"], seen["cpu1"] = now, time.process_time()

    settings = BrokerSettings.from_url(url)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe("dt/crowdfix/v1/+/+", qos=1)
    client.connect(settings.host, settings.port, clean_start=False)
    print("ready", flush=True)
    idle_since = time.monotonic()
    while seen["n"] < count:
        before = seen["n"]
        client.loop(timeout=0.5)
        if seen["n"] != before:
            idle_since = time.monotonic()
        elif seen["n"] and time.monotonic() - idle_since > IDLE_LIMIT_S:
            print(f"stalled after {seen['n']} of {count} messages", file=sys.stderr, flush=True)
            break
    cpu = seen["cpu1"] - seen["cpu0"]
    print(f"{seen['n']} {seen['first']} {seen['last']} {cpu}", flush=True)
    client.disconnect()


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
    args = parser.parse_args(argv)
    if args.mode == "subscribe":
        subscribe_and_count(args.url, args.client_id, args.count)
    else:
        payloads = telemetry_payloads(device_ids(args.devices), args.count, args.seed)
        publish(args.url, payloads, args.client_id, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
