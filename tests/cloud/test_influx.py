"""Telemetry history through influxdb-client's batching write API, against a real endpoint that
speaks the InfluxDB v2 write API (VictoriaMetrics: Debian's `victoria-metrics`).

Not covered here: Flux queries and InfluxDB's own bucket/retention handling (no InfluxDB
server can run on this machine; crowdfix only writes to InfluxDB, it never queries it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cloud.adapters.influx import MEASUREMENT, InfluxSink
from cloud.clock import utc_now
from cloud.sites.schemas import SiteIn
from cloud.telemetry.service import Sample
from contracts import Channel, Reading, Telemetry, encode, uplink_topic
from crowdfix.brokers import free_port, port_open
from mqttlink import Inbound
from tests.helpers import wait_for

BINARY = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[str]:
    """A VictoriaMetrics on a free loopback port."""
    if not Path(BINARY).exists():
        pytest.skip(
            "victoria-metrics is not installed (.ci/run installs it: apt-get install "
            "victoria-metrics)"
        )
    port = free_port()
    process = subprocess.Popen(
        [
            BINARY,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={tmp_path / 'vm'}",
            "-search.latencyOffset=0s",
            # Same series and timestamp: keep one sample, as InfluxDB overwrites them.
            "-dedup.minScrapeInterval=1ms",
            "-loggerLevel=ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: port_open("127.0.0.1", port), 20, "victoria-metrics")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def export(url: str) -> list[dict]:
    """Every series VictoriaMetrics holds for the measurement (its /api/v1/export)."""
    urllib.request.urlopen(f"{url}/internal/force_flush", timeout=10).read()
    query = urllib.parse.urlencode(
        {
            "match[]": f'{{__name__=~"{MEASUREMENT}_.*"}}',
            "start": "0",
            "end": str(int((utc_now() + timedelta(hours=1)).timestamp())),  # default end: now
        }
    )
    with urllib.request.urlopen(f"{url}/api/v1/export?{query}", timeout=10) as response:
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]


def test_points_carry_device_site_and_profile_tags(victoria: str) -> None:
    now = utc_now().replace(microsecond=0)
    sink = InfluxSink(victoria, token="unused", org="crowdfix", bucket="telemetry")
    samples = [
        Sample("cold-1", "room_c", 4.25, "C", now),
        Sample("cold-1", "door_shut", 1.0, "", now),
        Sample("cold-1", "room_c", 4.5, "C", now + timedelta(seconds=15)),
    ]
    sink.write(samples, {"cold-1": ("oerlikon", "cold-room")})
    sink.write(samples[:1], {"cold-1": ("oerlikon", "cold-room")})  # a redelivered batch
    sink.close()  # flushes
    series = wait_for(lambda: export(victoria), 20, "exported series")
    by_name = {s["metric"]["__name__"]: s for s in series}
    room = by_name[f"{MEASUREMENT}_room_c"]
    assert room["metric"] == {
        "__name__": f"{MEASUREMENT}_room_c",
        "device": "cold-1",
        "site": "oerlikon",
        "profile": "cold-room",
    }
    assert room["values"] == [4.25, 4.5], "the redelivered point did not double"
    assert room["timestamps"][0] == int(now.timestamp() * 1000)
    assert by_name[f"{MEASUREMENT}_door_shut"]["values"] == [1.0]


def test_the_worker_writes_telemetry_to_sql_and_influx(victoria, sessions, worker_for) -> None:
    from cloud.db import transaction
    from cloud.devices import service as devices
    from cloud.devices.schemas import DeviceIn
    from cloud.sites import service as sites
    from cloud.telemetry import service as telemetry

    with transaction(sessions) as db:
        sites.upsert(db_session=db, site_in=SiteIn(id="hb", name="HB"), now=utc_now())
        devices.register(
            db_session=db,
            device_in=DeviceIn(id="pos-1", site_id="hb", profile="pos-terminal"),
            now=utc_now(),
        )
    worker = worker_for(sessions, influx_url=victoria, influx_token="t")
    now = utc_now().replace(microsecond=0)
    message = Telemetry(
        device_id="pos-1",
        timestamp=now,
        seq=1,
        readings=[Reading(name="pi_cpu_c", value=51.5, unit="C", timestamp=now)],
    )
    worker.process_bulk(
        [Inbound(uplink_topic("pos-1", Channel.TELEMETRY), encode(message), 1, False, 1, 0)]
    )
    worker.stop()  # closes the InfluxDB client, flushing its batch
    with sessions() as db:
        assert [(r.name, r.value) for r in telemetry.latest(db_session=db, device_id="pos-1")] == [
            ("pi_cpu_c", 51.5)
        ]
    series = wait_for(lambda: export(victoria), 20, "the worker's point")
    assert series[0]["metric"]["site"] == "hb" and series[0]["values"] == [51.5]
