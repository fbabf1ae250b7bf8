"""Device profiles (firmware_configs/*.yaml): one per device type, validated into frozen models.

A profile says which buttons the device has and what each gesture means, which LEDs and
buzzers give feedback, which signals are sampled, and which fault rules watch them.
Identity (device id) and secrets never live here: they come from the environment.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts.messages import Action, Severity
from edge_agent.errors import ProfileError
from edge_agent.feedback import Indication
from mqttlink import Protocol

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Seconds = Annotated[float, Field(gt=0, le=86_400)]
# gpiozero accepts BCM numbers (17), "GPIO17", "BCM17", "BOARD11" and "J8:11".
PinName = Annotated[
    int | str,
    Field(union_mode="left_to_right", json_schema_extra={"examples": [17, "GPIO17", "BOARD11"]}),
]
_PIN_PREFIXES = ("GPIO", "BCM", "BOARD", "J8:", "WPI")


SPI0_PINS = {"7", "8", "9", "10", "11"}


def bcm(pin: int | str) -> str:
    """A comparable name for a pin: the BCM number for 17, 'GPIO17' and 'BCM17'."""
    text = str(pin).upper()
    for prefix in ("GPIO", "BCM"):
        if text.startswith(prefix):
            return str(int(text[len(prefix) :]))
    return text


def _check_pin(pin: int | str) -> int | str:
    if isinstance(pin, int):
        if not 0 <= pin <= 53:
            raise ValueError(f"BCM pin number {pin} is out of range 0-53")
        return pin
    if not any(pin.upper().startswith(p) and pin[len(p) :].isdigit() for p in _PIN_PREFIXES):
        raise ValueError(f"pin {pin!r} is not a pin name: use 17, 'GPIO17' or 'BOARD11'")
    return pin


class _Spec(BaseModel):
    # Validators are built on first use: a profile validates as one tree, so the nested
    # classes never need validators of their own (memory on the Pi).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class _PinSpec(_Spec):
    pin: PinName
    _valid_pin = field_validator("pin")(_check_pin)


# -- buttons ------------------------------------------------------------------------------


class GestureTiming(_Spec):
    """How presses are told apart (defaults close to AWS IoT 1-Click: long is 1.5 s or more)."""

    long_press_s: Annotated[float, Field(ge=0.3, le=10)] = 1.5
    double_press_window_s: Annotated[float, Field(ge=0.1, le=2)] = 0.4
    stuck_after_s: Annotated[float, Field(ge=5, le=3600)] = 30.0

    @model_validator(mode="after")
    def _ordered(self) -> GestureTiming:
        if self.stuck_after_s <= self.long_press_s:
            raise ValueError("stuck_after_s must be longer than long_press_s")
        return self


class GestureActions(_Spec):
    """What each gesture asks for; null means the gesture does nothing on this button."""

    single: Action | None = Action.REQUEST
    double: Action | None = Action.CANCEL
    long: Action | None = Action.URGENT


class ButtonSpec(_PinSpec):
    """A physical help button: its pin, its problem category and what each gesture means."""

    name: Slug
    category: Slug
    pull_up: bool = True
    bounce_ms: Annotated[int, Field(ge=0, le=1000)] = 50
    actions: GestureActions = GestureActions()
    # The same action on the same button is sent at most once per cooldown (a hammered
    # button yields one request, not hundreds).
    cooldown_s: Annotated[float, Field(ge=0, le=3600)] = 30.0


# -- feedback -----------------------------------------------------------------------------

OutputKind = Literal["led", "pwm_led", "buzzer"]


class Pattern(_Spec):
    """How one output shows one state: off, steady on, blinking (beeping) or pulsing."""

    mode: Literal["off", "on", "blink", "pulse"]
    on_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    off_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    repeat: Annotated[int, Field(ge=1, le=1000)] | None = None  # None: until the next state

    def duration_s(self) -> float | None:
        """How long a finite pattern plays; None when it lasts until replaced."""
        if self.mode in ("off", "on") or self.repeat is None:
            return None
        return self.repeat * (self.on_s + self.off_s)


class OutputSpec(_PinSpec):
    """An LED, PWM LED or buzzer that tells the person at the device what is happening."""

    name: Slug
    kind: OutputKind
    active_high: bool = True
    # Per-state overrides of the built-in patterns (see docs/raspberry-pi.md).
    patterns: dict[Indication, Pattern] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _pulse_needs_pwm(self) -> OutputSpec:
        for state, pattern in self.patterns.items():
            if pattern.mode == "pulse" and self.kind != "pwm_led":
                raise ValueError(f"patterns.{state}: only a pwm_led can pulse")
        return self


# -- collectors ---------------------------------------------------------------------------


class _CollectorSpec(_Spec):
    name: Slug
    unit: Annotated[str, Field(max_length=16)] = ""
    every_s: Seconds | None = None  # sampling interval; default: telemetry.sample_every_s


class CpuTemperatureSpec(_CollectorSpec):
    """The SoC temperature (gpiozero CPUTemperature)."""

    kind: Literal["cpu_temperature"]
    unit: Annotated[str, Field(max_length=16)] = "C"
    sensor_file: Path = Path("/sys/class/thermal/thermal_zone0/temp")


class LoadAverageSpec(_CollectorSpec):
    """The 1, 5 or 15 minute load average (gpiozero LoadAverage)."""

    kind: Literal["load_average"]
    minutes: Literal[1, 5, 15] = 1
    load_average_file: Path = Path("/proc/loadavg")


class DiskUsageSpec(_CollectorSpec):
    """How full a filesystem is, in percent (gpiozero DiskUsage)."""

    kind: Literal["disk_usage"]
    unit: Annotated[str, Field(max_length=16)] = "%"
    filesystem: str = "/"


class PingSpec(_CollectorSpec):
    """Whether a host answers ping: the attached device, or the shop's router (PingServer)."""

    kind: Literal["ping"]
    host: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:-]+$")]


class DigitalInputSpec(_PinSpec, _CollectorSpec):
    """A contact on a GPIO pin (door contact, power-fail signal): 1 when active, else 0."""

    kind: Literal["digital_input"]
    pull_up: bool = True
    bounce_ms: Annotated[int, Field(ge=0, le=1000)] = 20


class AdcSpec(_CollectorSpec):
    """An analog sensor on an MCP3xxx ADC channel: value = raw (0..1) * scale + offset."""

    kind: Literal["adc"]
    chip: Literal[
        "MCP3001", "MCP3002", "MCP3004", "MCP3008", "MCP3201", "MCP3202", "MCP3204", "MCP3208"
    ] = "MCP3008"
    channel: Annotated[int, Field(ge=0, le=7)] = 0
    spi_port: Annotated[int, Field(ge=0, le=1)] = 0
    spi_device: Annotated[int, Field(ge=0, le=1)] = 0
    scale: float = 1.0
    offset: float = 0.0


class CommandProbeSpec(_CollectorSpec):
    """Runs a command with a timeout: `ok` gives 1 on exit status 0 (else 0); `number` parses
    the first word of its output."""

    kind: Literal["command"]
    command: Annotated[list[str], Field(min_length=1)]
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    parse: Literal["ok", "number"] = "ok"


class HttpProbeSpec(_CollectorSpec):
    """GETs a health URL with a timeout: 1 on a 2xx answer (else 0), and `<name>_ms` latency."""

    kind: Literal["http"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 3.0


CollectorSpec = Annotated[
    CpuTemperatureSpec
    | LoadAverageSpec
    | DiskUsageSpec
    | PingSpec
    | DigitalInputSpec
    | AdcSpec
    | CommandProbeSpec
    | HttpProbeSpec,
    Field(discriminator="kind"),
]


class TelemetrySpec(_Spec):
    """When readings are taken and sent, and how many wait while the broker is away."""

    sample_every_s: Seconds = 10.0
    publish_every_s: Seconds = 60.0
    buffer_limit: Annotated[int, Field(ge=10, le=1_000_000)] = 10_000


# -- fault rules --------------------------------------------------------------------------


class ThresholdCondition(_Spec):
    """Raise when the signal stays above (or below) a level for for_s; clear past the clear
    level (hysteresis) for clear_for_s."""

    kind: Literal["threshold"]
    signal: Slug
    above: float | None = None
    below: float | None = None
    clear_below: float | None = None
    clear_above: float | None = None
    for_s: Annotated[float, Field(ge=0, le=86_400)] = 0.0
    clear_for_s: Annotated[float, Field(ge=0, le=86_400)] = 0.0

    @model_validator(mode="after")
    def _one_direction(self) -> ThresholdCondition:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` or `below`")
        if self.above is not None:
            if self.clear_above is not None:
                raise ValueError("with `above`, the clear level is `clear_below`")
            if self.clear_below is not None and self.clear_below > self.above:
                raise ValueError("clear_below must not be higher than above")
        if self.below is not None:
            if self.clear_below is not None:
                raise ValueError("with `below`, the clear level is `clear_above`")
            if self.clear_above is not None and self.clear_above < self.below:
                raise ValueError("clear_above must not be lower than below")
        return self


class StateCondition(_Spec):
    """Raise when a signal equals a value (a door contact open: 1) for for_s."""

    kind: Literal["state"]
    signal: Slug
    equals: float = 1.0
    for_s: Annotated[float, Field(ge=0, le=86_400)] = 0.0
    clear_for_s: Annotated[float, Field(ge=0, le=86_400)] = 0.0


class StaleCondition(_Spec):
    """Raise when a signal has not been read for after_s (the sensor stopped reporting)."""

    kind: Literal["stale"]
    signal: Slug
    after_s: Annotated[float, Field(gt=0, le=86_400)]


class RateCondition(_Spec):
    """Raise when a signal changes faster than a rate per minute, measured over window_s."""

    kind: Literal["rate"]
    signal: Slug
    per_minute_above: float | None = None
    per_minute_below: float | None = None
    window_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0

    @model_validator(mode="after")
    def _one_direction(self) -> RateCondition:
        if (self.per_minute_above is None) == (self.per_minute_below is None):
            raise ValueError("give exactly one of `per_minute_above` or `per_minute_below`")
        return self


Condition = Annotated[
    ThresholdCondition | StateCondition | StaleCondition | RateCondition,
    Field(discriminator="kind"),
]


class FaultSpec(_Spec):
    """A fault the device reports by itself: its code, severity, and the rule that decides it."""

    code: Slug
    severity: Severity = Severity.WARNING
    summary: Annotated[str, Field(max_length=200)] = ""
    when: Condition


# -- MQTT and the profile -----------------------------------------------------------------


class MqttSpec(_Spec):
    """Broker defaults for this device type; the environment overrides them, secrets only there."""

    broker_url: str | None = None
    protocol: Protocol | None = None
    ca_file: Path | None = None


class Profile(_Spec):
    """Everything the agent needs to know about one type of device."""

    profile: Slug
    description: str = ""
    buttons: list[ButtonSpec] = Field(default_factory=list, max_length=26)
    gestures: GestureTiming = GestureTiming()
    outputs: list[OutputSpec] = Field(default_factory=list, max_length=8)
    collectors: list[CollectorSpec] = Field(default_factory=list, max_length=32)
    telemetry: TelemetrySpec = TelemetrySpec()
    faults: list[FaultSpec] = Field(default_factory=list, max_length=64)
    heartbeat_interval_s: Annotated[float, Field(ge=5, le=3600)] = 60.0
    mqtt: MqttSpec = MqttSpec()

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        _unique("button name", [b.name for b in self.buttons])
        _unique("output name", [o.name for o in self.outputs])
        _unique("collector name", [c.name for c in self.collectors])
        _unique("fault code", [f.code for f in self.faults])
        pins = [
            bcm(p.pin)
            for p in (*self.buttons, *self.outputs, *self.collectors)
            if isinstance(p, _PinSpec)
        ]
        _unique("pin", pins)
        if any(isinstance(c, AdcSpec) for c in self.collectors):
            clash = sorted(set(pins) & SPI0_PINS, key=int)
            if clash:
                raise ValueError(f"GPIO {', '.join(clash)} belong to SPI0, used by the ADC")
        signals = self.signal_names()
        for fault in self.faults:
            if fault.when.signal not in signals:
                raise ValueError(
                    f"fault {fault.code!r} watches signal {fault.when.signal!r}, which no "
                    f"collector produces (known: {', '.join(sorted(signals)) or 'none'})"
                )
        return self

    def signal_names(self) -> set[str]:
        """Every reading name the collectors produce."""
        names = {c.name for c in self.collectors}
        names |= {f"{c.name}_ms" for c in self.collectors if isinstance(c, HttpProbeSpec)}
        return names

    def config_hash(self) -> str:
        """Short fingerprint of the effective profile, reported in heartbeats."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def _unique(label: str, values: list[str]) -> None:
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"{label} used twice: {', '.join(dupes)}")


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_profile(raw: Any, source: str) -> Profile:
    """Validate already-parsed YAML; errors name the source and the field."""
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"  {_location(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        ]
        raise ProfileError(f"{source}: invalid device profile\n" + "\n".join(lines)) from exc


def load_profile(path: Path) -> Profile:
    """Read and validate a profile file; raise ProfileError naming the file, line or field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read device profile ({exc.strerror})") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(f"{path}: not valid YAML{where}: {problem}") from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: a device profile must be a YAML mapping")
    return parse_profile(raw, str(path))


def json_schema() -> str:
    """The JSON Schema of a profile, for editors (firmware_configs/profile.schema.json)."""
    schema = Profile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "crowdfix device profile"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
