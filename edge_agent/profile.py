"""Device profiles (firmware_configs/*.yaml): one per device type, validated into frozen models."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edge_agent.errors import ProfileError

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
# gpiozero accepts BCM numbers (17), "GPIO17", "BCM17", "BOARD11" and "J8:11".
PinName = Annotated[
    int | str,
    Field(
        union_mode="left_to_right",
        json_schema_extra={"examples": [17, "GPIO17", "BOARD11"]},
    ),
]
_PIN_PREFIXES = ("GPIO", "BCM", "BOARD", "J8:", "WPI")


def _check_pin(pin: int | str) -> int | str:
    if isinstance(pin, int):
        if not 0 <= pin <= 53:
            raise ValueError(f"BCM pin number {pin} is out of range 0-53")
        return pin
    if not any(pin.upper().startswith(p) and pin[len(p) :].isdigit() for p in _PIN_PREFIXES):
        raise ValueError(f"pin {pin!r} is not a pin name: use 17, 'GPIO17' or 'BOARD11'")
    return pin


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ButtonSpec(_Spec):
    """A physical help button: which pin and which problem category it reports."""

    name: Slug
    pin: PinName
    category: Slug
    pull_up: bool = True
    bounce_ms: Annotated[int, Field(ge=0, le=1000)] = 50

    _valid_pin = field_validator("pin")(_check_pin)


class Profile(_Spec):
    """Everything the agent needs to know about one type of device."""

    profile: Slug
    description: str = ""
    buttons: list[ButtonSpec] = Field(default_factory=list, max_length=26)
    heartbeat_interval_s: Annotated[float, Field(ge=5, le=3600)] = 60.0

    @model_validator(mode="after")
    def _unique(self) -> Profile:
        names = [b.name for b in self.buttons]
        pins = [str(b.pin) for b in self.buttons]
        for label, values in (("button name", names), ("button pin", pins)):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"{label} used twice: {', '.join(dupes)}")
        return self

    def config_hash(self) -> str:
        """Short fingerprint of the effective profile, reported in heartbeats."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


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
        raise ProfileError(
            f"{path}: a device profile must be a YAML mapping, not {type(raw).__name__}"
        )
    return parse_profile(raw, str(path))
