"""Telemetry from gpiozero devices: CPU temperature, load, disk, ping, digital inputs, ADCs.

Example (mock pins)::

    from gpiozero.pins.mock import MockFactory
    door = build_sensor(DigitalInputSpec(kind="digital_input", name="door_open", pin=24),
                        MockFactory())
    door.read()   # [("door_open", 0.0, "")]
"""

from __future__ import annotations

from typing import Any

from edge_agent.collectors import Sample
from edge_agent.errors import HardwareError
from edge_agent.profile import (
    AdcSpec,
    CpuTemperatureSpec,
    DigitalInputSpec,
    DiskUsageSpec,
    LoadAverageSpec,
    PingSpec,
)

SensorSpec = (
    CpuTemperatureSpec | LoadAverageSpec | DiskUsageSpec | PingSpec | DigitalInputSpec | AdcSpec
)


class GpiozeroSensor:
    """One gpiozero device read through one attribute, scaled into a reading.

    The device is opened on the first read and again after a failure, so a sensor that is
    missing at start (unplugged probe, no thermal zone) does not stop the agent: its
    signal simply goes stale, which a `stale` fault rule reports.
    """

    def __init__(self, spec: SensorSpec, factory: Any) -> None:
        self.spec = spec
        self._factory = factory
        self._device: Any = None
        self._attribute = ""

    def read(self) -> list[Sample]:
        """Sample the device now (opening it first if needed)."""
        if self._device is None:
            self._device, self._attribute = _open(self.spec, self._factory)
        try:
            raw = float(getattr(self._device, self._attribute))
        except Exception:
            self.close()
            raise
        scale, offset = (
            (self.spec.scale, self.spec.offset) if isinstance(self.spec, AdcSpec) else (1.0, 0.0)
        )
        return [(self.spec.name, raw * scale + offset, self.spec.unit)]

    def close(self) -> None:
        """Release the device."""
        if self._device is not None:
            self._device.close()
            self._device = None


def build_sensor(spec: SensorSpec, factory: Any) -> GpiozeroSensor:
    """A collector for a gpiozero-backed spec (the device opens on first read)."""
    return GpiozeroSensor(spec, factory)


def _open(spec: SensorSpec, factory: Any) -> tuple[Any, str]:
    import gpiozero
    from gpiozero.exc import GPIOZeroError

    try:
        if isinstance(spec, CpuTemperatureSpec):
            return gpiozero.CPUTemperature(
                sensor_file=str(spec.sensor_file), pin_factory=factory
            ), "temperature"
        if isinstance(spec, LoadAverageSpec):
            return gpiozero.LoadAverage(
                load_average_file=str(spec.load_average_file),
                minutes=spec.minutes,
                pin_factory=factory,
            ), "load_average"
        if isinstance(spec, DiskUsageSpec):
            return gpiozero.DiskUsage(filesystem=spec.filesystem, pin_factory=factory), "usage"
        if isinstance(spec, PingSpec):
            return gpiozero.PingServer(spec.host, pin_factory=factory), "value"
        if isinstance(spec, DigitalInputSpec):
            return gpiozero.DigitalInputDevice(
                spec.pin,
                pull_up=spec.pull_up,
                bounce_time=spec.bounce_ms / 1000 or None,
                pin_factory=factory,
            ), "value"
        if gpiozero.Device.pin_factory is None:
            # gpiozero 2.0's software SPI bus ignores pin_factory for itself and falls back
            # to the global default, which does not exist off a Pi: give it ours.
            gpiozero.Device.pin_factory = factory
        chip = getattr(gpiozero, spec.chip)
        return chip(
            channel=spec.channel, port=spec.spi_port, device=spec.spi_device, pin_factory=factory
        ), "value"
    except (GPIOZeroError, OSError) as exc:
        raise HardwareError(f"cannot open collector {spec.name!r} ({spec.kind}): {exc}") from exc
