"""The ticket taxonomy (YAML, in the repo and overridable): categories with skills, priority,
SLA targets and policies, and which button categories and fault codes map to each."""

from __future__ import annotations

import fnmatch
from datetime import time
from enum import IntEnum, StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloud.errors import ConfigError

DEFAULT_TAXONOMY = Path(__file__).with_name("taxonomy.yaml")
Minutes = Annotated[float, Field(gt=0, le=60 * 24 * 30)]


class Priority(IntEnum):
    """Ticket priority; higher is more urgent."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """The lowercase name used in the API and YAML."""
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> Priority:
        """From its lowercase name."""
        return cls[label.upper()]


class AutoResolve(StrEnum):
    """When a cleared fault resolves its ticket by itself."""

    NEVER = "never"
    WHEN_UNDISPATCHED = "when_undispatched"
    ALWAYS = "always"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sla(_Model):
    """Targets in minutes, counted from the device's own event time."""

    accept_min: Minutes = 5
    arrive_min: Minutes = 60
    resolve_min: Minutes = 240


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: list[Day] = ["mon", "tue", "wed", "thu", "fri"]


class BusinessHours(_Model):
    """When a site is staffed (its own time zone wins when it has one)."""

    timezone: str = "UTC"
    days: list[Day] = Field(default_factory=lambda: list(WEEKDAYS))
    start: time = time(8, 0)
    end: time = time(18, 0)


class Defaults(_Model):
    """What a category does not say itself."""

    priority: Literal["low", "normal", "high", "critical"] = "normal"
    sla: Sla = Sla()
    auto_resolve: AutoResolve = AutoResolve.WHEN_UNDISPATCHED
    after_hours: Literal["lower", "keep"] = "lower"


class Category(_Model):
    """One kind of ticket."""

    title: str
    skills: list[str] = Field(default_factory=list)
    priority: Literal["low", "normal", "high", "critical"] | None = None
    sla: Sla | None = None
    auto_resolve: AutoResolve | None = None
    after_hours: Literal["lower", "keep"] | None = None
    buttons: list[str] = Field(default_factory=list)
    faults: list[str] = Field(default_factory=list)
    fallback: bool = False


class Flapping(_Model):
    """A fault raised `raises` times within `window_min` is flapping."""

    raises: Annotated[int, Field(ge=2, le=100)] = 3
    window_min: Minutes = 30


class SiteGrouping(_Model):
    """`devices` devices of one site with the same problem within `window_min`: one ticket."""

    devices: Annotated[int, Field(ge=2, le=1000)] = 3
    window_min: Minutes = 10


class PresencePolicy(_Model):
    """How silence turns into stale and offline."""

    stale_after_heartbeats: Annotated[float, Field(gt=1, le=100)] = 2.5
    offline_after_heartbeats: Annotated[float, Field(gt=1, le=1000)] = 5
    offline_grace_min: Annotated[float, Field(ge=0, le=1440)] = 5
    default_heartbeat_s: Annotated[float, Field(ge=5, le=3600)] = 60


class ResolvedCategory(_Model):
    """A category with the defaults filled in."""

    name: str
    title: str
    skills: tuple[str, ...]
    priority: Priority
    sla: Sla
    auto_resolve: AutoResolve
    after_hours: Literal["lower", "keep"]


class Taxonomy(_Model):
    """The whole file."""

    business_hours: BusinessHours = BusinessHours()
    defaults: Defaults = Defaults()
    flapping: Flapping = Flapping()
    site_grouping: SiteGrouping = SiteGrouping()
    presence: PresencePolicy = PresencePolicy()
    categories: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")], Category]

    @model_validator(mode="after")
    def _one_fallback(self) -> Taxonomy:
        fallbacks = [n for n, c in self.categories.items() if c.fallback]
        if len(fallbacks) != 1:
            raise ValueError(f"exactly one category needs `fallback: true` (found {fallbacks})")
        if "device-offline" not in self.categories:
            raise ValueError("a `device-offline` category is required (presence tickets)")
        return self

    @cached_property
    def _resolved(self) -> dict[str, ResolvedCategory]:
        d = self.defaults
        return {
            name: ResolvedCategory(
                name=name,
                title=c.title,
                skills=tuple(c.skills),
                priority=Priority.parse(c.priority or d.priority),
                sla=c.sla or d.sla,
                auto_resolve=c.auto_resolve or d.auto_resolve,
                after_hours=c.after_hours or d.after_hours,
            )
            for name, c in self.categories.items()
        }

    def category(self, name: str) -> ResolvedCategory:
        """A category by name (the fallback for unknown names)."""
        return self._resolved.get(name) or self._resolved[self.fallback_name]

    @property
    def fallback_name(self) -> str:
        """The category for anything unmapped."""
        return next(n for n, c in self.categories.items() if c.fallback)

    def for_button(self, button_category: str) -> ResolvedCategory:
        """The ticket category of a button's problem category."""
        for name, c in self.categories.items():
            if button_category in c.buttons or button_category == name:
                return self._resolved[name]
        return self._resolved[self.fallback_name]

    def for_fault(self, code: str) -> ResolvedCategory:
        """The ticket category of a fault code (glob patterns allowed)."""
        for name, c in self.categories.items():
            if any(fnmatch.fnmatchcase(code, pattern) for pattern in c.faults):
                return self._resolved[name]
        return self._resolved[self.fallback_name]


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """Read and validate a taxonomy file (the built-in one by default)."""
    path = path or DEFAULT_TAXONOMY
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Taxonomy.model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read the taxonomy {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"{path}: invalid taxonomy: {problems}") from exc
