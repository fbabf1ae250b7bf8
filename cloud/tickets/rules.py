"""Pure ticket rules: what a device event asks for. No I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass

from contracts import Action, ButtonEvent, FaultEvent, FaultState, Severity

_SEVERITY_PRIORITY = {
    Severity.INFO: "low",
    Severity.WARNING: "normal",
    Severity.MAJOR: "high",
    Severity.CRITICAL: "critical",
}


@dataclass(frozen=True, slots=True)
class TicketDraft:
    """What a new ticket should say."""

    category: str
    priority: str
    source: str
    title: str
    description: str


def draft_from_button(event: ButtonEvent) -> TicketDraft | None:
    """A help request becomes a ticket; a cancel does not open one."""
    if event.action is Action.CANCEL:
        return None
    urgent = event.action is Action.URGENT
    return TicketDraft(
        category=event.category,
        priority="high" if urgent else "normal",
        source="button",
        title=f"{'URGENT: ' if urgent else ''}{event.category} help requested at {event.device_id}",
        description=(
            f"The {event.button!r} button was pressed ({event.gesture.value} press, "
            f"{event.action.value})."
        ),
    )


def draft_from_fault(event: FaultEvent) -> TicketDraft | None:
    """A raised fault becomes a ticket; a clear does not open one."""
    if event.state is not FaultState.RAISED:
        return None
    readings = ", ".join(f"{k}={v:g}" for k, v in sorted(event.readings.items()))
    return TicketDraft(
        category=event.code,
        priority=_SEVERITY_PRIORITY[event.severity],
        source="fault",
        title=f"{event.code} on {event.device_id}",
        description=(event.summary or f"Fault {event.code} raised.")
        + (f" Readings: {readings}." if readings else ""),
    )
