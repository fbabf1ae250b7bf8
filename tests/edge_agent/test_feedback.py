"""Feedback: which state is shown (pure), and how it looks on gpiozero mock pins."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from contracts import FeedbackState
from edge_agent.feedback import FeedbackModel, Indication
from edge_agent.hardware.feedback import DEFAULT_PATTERNS, FeedbackPanel, transient_durations
from edge_agent.profile import OutputSpec, Pattern
from tests.helpers import wait_for

I = Indication  # noqa: E741


def model() -> FeedbackModel:
    return FeedbackModel({I.PRESSED: 1.0, I.RESOLVED: 2.0, I.ERROR: 3.0, I.CANCELLED: 2.0})


def test_a_press_flashes_then_shows_queued_while_offline() -> None:
    m = model()
    m.flash(I.PRESSED, 10.0)
    assert m.current(10.5, queued=True) is I.PRESSED
    assert m.current(11.0, queued=True) is I.QUEUED
    assert m.current(11.0, queued=False) is I.IDLE


def test_the_ticket_journey_is_shown_step_by_step() -> None:
    m = model()
    m.receipt(ticket_id=7)
    assert m.current(0, queued=False) is I.RECEIVED
    m.cloud(FeedbackState.EN_ROUTE, 7, 1)
    assert m.current(1, queued=False) is I.EN_ROUTE
    m.cloud(FeedbackState.ON_SITE, 7, 2)
    assert m.current(2, queued=False) is I.ON_SITE
    m.receipt(ticket_id=7)  # a late receipt does not move the ticket back
    assert m.current(2, queued=False) is I.ON_SITE
    m.cloud(FeedbackState.RESOLVED, 7, 3)
    assert m.current(4, queued=False) is I.RESOLVED
    assert m.current(5, queued=False) is I.IDLE


def test_the_most_advanced_open_ticket_wins_and_errors_flash() -> None:
    m = model()
    m.receipt(1)
    m.cloud(FeedbackState.EN_ROUTE, 2, 0)
    m.cloud(FeedbackState.ERROR, None, 0)
    assert m.current(1, queued=False) is I.ERROR
    assert m.current(3, queued=False) is I.EN_ROUTE
    m.cloud(FeedbackState.CANCELLED, 2, 4)
    assert m.current(7, queued=False) is I.RECEIVED
    assert m.next_change() is None


def test_every_state_has_a_pattern_for_every_kind_and_states_look_different() -> None:
    for kind, table in DEFAULT_PATTERNS.items():
        assert set(table) == set(Indication), kind
    led = DEFAULT_PATTERNS["led"]
    persistent = [I.IDLE, I.QUEUED, I.RECEIVED, I.EN_ROUTE, I.ON_SITE]
    assert len({led[s] for s in persistent}) == len(persistent)


def test_transients_last_as_long_as_their_longest_pattern() -> None:
    outputs = [
        OutputSpec(name="led", kind="led", pin=23),
        OutputSpec(
            name="buzz",
            kind="buzzer",
            pin=24,
            patterns={I.RESOLVED: Pattern(mode="blink", on_s=1, off_s=1, repeat=4)},
        ),
    ]
    durations = transient_durations(outputs)
    assert durations[I.RESOLVED] == 8.0 and durations[I.PRESSED] == pytest.approx(1.0)


def test_the_panel_drives_real_gpiozero_outputs_on_mock_pins() -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    panel = FeedbackPanel(
        [
            OutputSpec(name="led", kind="led", pin=23),
            OutputSpec(name="pwm", kind="pwm_led", pin=18),
            OutputSpec(name="buzz", kind="buzzer", pin=24),
        ],
        factory,
    )
    led, pwm, buzz = factory.pin(23), factory.pin(18), factory.pin(24)
    try:
        panel.show(I.RECEIVED)
        assert led.state and pwm.state == 1
        wait_for(lambda: len(buzz.states) >= 5, 5, "two beeps")  # beep, beep: on/off twice
        panel.show(I.ON_SITE)
        wait_for(lambda: sum(1 for s in led.states[-6:] if s.state) >= 2, 5, "fast blinking")
        panel.show(I.IDLE)
        wait_for(lambda: not led.state and pwm.state == 0 and not buzz.state, 5, "all off")
    finally:
        panel.close()
