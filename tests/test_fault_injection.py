"""The short fault-injection run (the long one: `python -m bench faults`): real Mosquitto
with the deploy config, real agent and worker processes, a real database, each broken
mid-stream; afterwards every event is stored once and every expected ticket exists once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import SCENARIOS, Scale, prerequisites, run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("one-at-a-time")]

SHORT = Scale(devices=3, presses=9, cut_s=8.0, settle_s=90.0)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_nothing_is_lost_or_doubled(scenario: str, tmp_path: Path) -> None:
    reason = prerequisites(scenario)
    if reason:
        pytest.skip(reason)
    out = run_scenario(scenario, SHORT, tmp_path)
    assert out.presses_sent == SHORT.devices * SHORT.presses
    assert out.faults_sent == SHORT.devices
    assert out.ok, out.problems
    assert out.events_stored == out.presses_sent + out.faults_sent
    assert out.tickets_found == out.tickets_expected == SHORT.devices * 3
