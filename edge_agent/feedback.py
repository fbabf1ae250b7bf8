"""Pure feedback logic: what the person at the device should be shown right now.

Persistent states follow the device's open requests (queued while offline, received,
technician assigned / on the way / on site); transient states (pressed, resolved,
cancelled, error) play for their pattern's length and then give way again.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from contracts.messages import FeedbackState


class Indication(StrEnum):
    """Every state an LED or buzzer can show."""

    IDLE = "idle"
    PRESSED = "pressed"
    QUEUED = "queued"
    RECEIVED = "received"
    TECHNICIAN_ASSIGNED = "technician_assigned"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"
    ERROR = "error"


# Open-request states, least to most advanced: the most advanced one is shown.
_PROGRESS = [
    Indication.RECEIVED,
    Indication.TECHNICIAN_ASSIGNED,
    Indication.EN_ROUTE,
    Indication.ON_SITE,
]
_CLOSING = {Indication.RESOLVED, Indication.CANCELLED}
MAX_TRACKED_TICKETS = 32


class FeedbackModel:
    """Decides the indication from local events, connectivity and the cloud's commands."""

    def __init__(self, transient_s: Mapping[Indication, float]) -> None:
        self._transient_s = dict(transient_s)
        self._transient: tuple[Indication, float] | None = None
        self._tickets: dict[int, Indication] = {}

    def flash(self, indication: Indication, now: float) -> None:
        """Show a transient state (pressed, error…) for its pattern's length."""
        self._transient = (indication, now + self._transient_s.get(indication, 1.0))

    def receipt(self, ticket_id: int | None) -> None:
        """The cloud stored a request: its ticket is at least `received`."""
        if ticket_id is not None and ticket_id not in self._tickets:
            self._track(ticket_id, Indication.RECEIVED)

    def cloud(self, state: FeedbackState, ticket_id: int | None, now: float) -> None:
        """A feedback command from the cloud about one ticket (0: the device as a whole)."""
        key = ticket_id or 0
        indication = Indication(state.value)
        if indication in _CLOSING:
            self._tickets.pop(key, None)
            self.flash(indication, now)
        elif indication is Indication.ERROR:
            self.flash(indication, now)
        else:
            self._track(key, indication)

    def current(self, now: float, *, queued: bool) -> Indication:
        """The state to show now."""
        if self._transient is not None:
            indication, until = self._transient
            if now < until:
                return indication
            self._transient = None
        if queued:
            return Indication.QUEUED
        if self._tickets:
            return max(self._tickets.values(), key=_PROGRESS.index)
        return Indication.IDLE

    def next_change(self) -> float | None:
        """When the current transient ends (the caller re-evaluates then)."""
        return self._transient[1] if self._transient else None

    def _track(self, key: int, indication: Indication) -> None:
        self._tickets[key] = indication
        while len(self._tickets) > MAX_TRACKED_TICKETS:
            self._tickets.pop(next(iter(self._tickets)))
