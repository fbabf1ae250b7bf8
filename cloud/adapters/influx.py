"""Telemetry history to InfluxDB through influxdb-client's batching write API.

Schema (one point per device and moment):
  measurement `telemetry`; tags `device`, `site`, `profile`; one float field per signal
  (`temp_c=4.2,door_shut=1`). Timestamps in milliseconds, from the device's own reading time.
Points with the same measurement, tags and time overwrite each other, so a redelivered
batch does not double anything.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from cloud.metrics import metrics
from cloud.telemetry.service import Sample

_LOGGER = logging.getLogger(__name__)
MEASUREMENT = "telemetry"


def to_points(
    samples: Iterable[Sample], devices: Mapping[str, tuple[str | None, str | None]]
) -> list[Any]:
    """Group samples into points: one per device and timestamp, a field per signal."""
    from influxdb_client import Point, WritePrecision

    grouped: dict[tuple[str, datetime], dict[str, float]] = defaultdict(dict)
    for s in samples:
        grouped[(s.device_id, s.at)][s.name] = s.value
    points = []
    for (device_id, at), fields in grouped.items():
        site, profile = devices.get(device_id, (None, None))
        point = Point(MEASUREMENT).tag("device", device_id).time(at, WritePrecision.MS)
        if site:
            point = point.tag("site", site)
        if profile:
            point = point.tag("profile", profile)
        for name, value in fields.items():
            point = point.field(name, float(value))
        points.append(point)
    return points


class InfluxSink:
    """Batches points in the background (influxdb-client's own thread) and counts failures."""

    def __init__(self, url: str, token: str, org: str, bucket: str) -> None:
        from influxdb_client import InfluxDBClient, WriteOptions

        self._bucket, self._org = bucket, org
        self._client = InfluxDBClient(url=url, token=token, org=org)
        self._write = self._client.write_api(
            write_options=WriteOptions(
                batch_size=5000,
                flush_interval=1000,
                retry_interval=2000,
                max_retries=5,
                max_retry_delay=30000,
            ),
            error_callback=self._failed,
        )

    def write(
        self, samples: Iterable[Sample], devices: Mapping[str, tuple[str | None, str | None]]
    ) -> None:
        """Queue samples for writing (returns at once)."""
        points = to_points(samples, devices)
        if points:
            self._write.write(bucket=self._bucket, org=self._org, record=points)

    def close(self) -> None:
        """Flush what is queued and close."""
        self._write.close()
        self._client.close()

    def _failed(self, _conf: Any, _data: Any, exc: Exception) -> None:
        metrics().influx_failures.inc()
        _LOGGER.error("InfluxDB refused a telemetry batch: %s", exc)
