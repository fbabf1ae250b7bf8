"""Gesture recognition (pure): single, double, long, stuck; and the cooldown."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from contracts import Gesture
from edge_agent.gestures import Cooldown, GestureClassifier, Hold
from edge_agent.profile import GestureTiming

T = GestureTiming(long_press_s=1.5, double_press_window_s=0.4, stuck_after_s=30)


def run(events: list[tuple[str, float]], until: float, step: float = 0.01) -> list:
    """Feed edges ("p"/"r", time) and poll every `step` like the agent loop does."""
    c = GestureClassifier(T)
    out: list = []
    t, pending = 0.0, sorted(events, key=lambda e: e[1])
    while t <= until:
        while pending and pending[0][1] <= t:
            kind, at = pending.pop(0)
            out += [(o, at) for o in (c.press(at) if kind == "p" else c.release(at))]
        out += [(o, t) for o in c.poll(t)]
        t = round(t + step, 6)
    return out


def gestures(events: list[tuple[str, float]], until: float = 40.0) -> list:
    return [o for o, _ in run(events, until)]


def test_single_fires_when_the_double_window_closes() -> None:
    out = run([("p", 1.0), ("r", 1.1)], 3)
    assert [o for o, _ in out] == [Gesture.SINGLE]
    assert abs(out[0][1] - 1.5) < 0.02


def test_double_fires_on_the_second_release() -> None:
    assert gestures([("p", 1.0), ("r", 1.1), ("p", 1.3), ("r", 1.4)]) == [Gesture.DOUBLE]


def test_presses_further_apart_are_two_singles() -> None:
    events = [("p", 1.0), ("r", 1.1), ("p", 2.0), ("r", 2.1)]
    assert gestures(events) == [Gesture.SINGLE, Gesture.SINGLE]


def test_long_fires_while_held_at_the_threshold_not_again_on_release() -> None:
    out = run([("p", 1.0), ("r", 4.0)], 5)
    assert [o for o, _ in out] == [Gesture.LONG]
    assert abs(out[0][1] - 2.5) < 0.02


def test_a_held_button_is_reported_stuck_once_and_cleared_on_release() -> None:
    out = gestures([("p", 1.0), ("r", 100.0)], until=101)
    assert out == [Gesture.LONG, Hold.STUCK, Hold.UNSTUCK]


def test_repeated_edges_are_ignored() -> None:
    events = [("p", 1.0), ("p", 1.05), ("r", 1.1), ("r", 1.15)]
    assert gestures(events) == [Gesture.SINGLE]


def test_next_deadline_tells_the_loop_when_to_poll() -> None:
    c = GestureClassifier(T)
    assert c.next_deadline() is None
    c.press(10.0)
    assert c.next_deadline() == 11.5
    c.poll(11.5)
    assert c.next_deadline() == 40.0
    c.release(12.0)
    assert c.next_deadline() is None


press_pairs = st.lists(
    st.tuples(st.floats(0.02, 3.0), st.floats(0.01, 2.0)), min_size=1, max_size=8
)


def _timeline(pairs: list[tuple[float, float]]) -> tuple[list[tuple[str, float]], list[float]]:
    events, holds, t = [], [], 0.5
    for gap, hold in pairs:
        t = round(t + gap, 2)
        events.append(("p", t))
        down, t = t, round(t + hold, 2)
        events.append(("r", t))
        holds.append(t - down)
    # Holds within a poll step of the threshold could go either way: not what is tested here.
    assume(all(abs(h - T.long_press_s) > 0.02 for h in holds))
    return events, holds


@given(press_pairs)
def test_never_more_gestures_than_presses_and_long_needs_a_long_hold(pairs) -> None:
    events, holds = _timeline(pairs)
    out = gestures(events, until=events[-1][1] + 2)
    counted = sum(2 if g is Gesture.DOUBLE else 1 for g in out)
    assert counted <= len(pairs)
    long_holds = sum(1 for h in holds if h >= T.long_press_s)
    assert out.count(Gesture.LONG) <= long_holds
    assert Hold.STUCK not in out  # nothing was held for 30 s


@given(press_pairs)
def test_every_short_press_is_accounted_for(pairs) -> None:
    """Short presses become singles or doubles (or are superseded by a following long)."""
    events, holds = _timeline(pairs)
    out = gestures(events, until=events[-1][1] + 2)
    short = sum(1 for h in holds if h < T.long_press_s)
    counted = out.count(Gesture.SINGLE) + 2 * out.count(Gesture.DOUBLE)
    assert counted <= short
    if not any(h >= T.long_press_s for h in holds):
        assert counted == short


def test_cooldown_lets_one_through_per_key_and_counts_the_rest() -> None:
    cooldown = Cooldown()
    assert cooldown.allow(("till", "request"), 0.0, 30)
    assert not cooldown.allow(("till", "request"), 10.0, 30)
    assert cooldown.allow(("till", "cancel"), 10.0, 30)
    assert cooldown.allow(("printer", "request"), 10.0, 30)
    assert cooldown.allow(("till", "request"), 30.0, 30)
    assert cooldown.suppressed == 1
    hammered = sum(cooldown.allow(("net", "request"), i * 0.05, 30) for i in range(500))
    assert hammered == 1
