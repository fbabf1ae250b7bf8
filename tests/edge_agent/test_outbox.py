"""The SQLite outbox: durable until the receipt, in order, capped, across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from edge_agent.errors import SettingsError
from edge_agent.outbox import store as store_module
from edge_agent.outbox.store import AgentStore


def add(store: AgentStore, n: int, now: float = 0.0) -> list[str]:
    ids = []
    for _ in range(n):
        seq = store.next_seq()
        ids.append(f"msg-{seq:08d}")
        store.add(seq, ids[-1], "button", b"{}", now)
    return ids


def test_events_survive_a_restart_until_confirmed(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "a.sqlite3")
    ids = add(store, 3)
    store.close()  # the agent crashes or the Pi reboots
    store = AgentStore(tmp_path / "a.sqlite3")
    assert store.pending_ids() == ids
    assert store.confirm([ids[1], "unknown-id"]) == ["button"]
    assert store.pending_ids() == [ids[0], ids[2]]
    assert store.backlog(now=100.0) == (2, 100.0)
    store.close()


def test_sequence_numbers_increase_across_restarts(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "a.sqlite3")
    first = [store.next_seq() for _ in range(5)]
    store.close()
    store = AgentStore(tmp_path / "a.sqlite3")
    later = store.next_seq()
    store.close()
    assert first == sorted(set(first)) and later > first[-1]


def test_due_is_ordered_capped_and_waits_for_the_receipt_timeout(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "a.sqlite3")
    ids = add(store, 5)
    due = store.due(now=1.0, limit=3)
    assert [e.message_id for e in due] == ids[:3]
    store.mark_sent(due, now=1.0)
    assert store.in_flight(now=1.0) == 3
    assert [e.message_id for e in store.due(now=1.0, limit=10)] == ids[3:]
    later = 1.0 + store_module.RECEIPT_TIMEOUT_S + 0.01
    assert [e.message_id for e in store.due(now=later, limit=10)] == ids  # resend, in order
    store.resend_all_now()
    assert store.in_flight(now=1.0) == 0
    store.close()


def test_resend_delay_grows_and_is_capped() -> None:
    delays = [store_module.resend_delay(n) for n in range(1, 12)]
    assert delays[0] <= store_module.RECEIPT_TIMEOUT_S
    assert max(delays) <= store_module.RESEND_MAX_S
    assert delays[4] > delays[0]


def test_an_unwritable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SettingsError, match="CROWDFIX_AGENT_STATE_DIR"):
        AgentStore(blocker / "sub" / "a.sqlite3")


COUNTS = st.integers(1, 4)


class OutboxMachine(RuleBasedStateMachine):
    """Random add / send / receipt / restart sequences: nothing lost, nothing resurrected."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = Path(tempfile.mkdtemp())
        self.store = AgentStore(self.dir / "o.sqlite3")
        self.expected: list[str] = []
        self.now = 0.0

    @rule(n=COUNTS)
    def add_events(self, n: int) -> None:
        self.expected += add(self.store, n, self.now)

    @rule()
    def send_some(self) -> None:
        due = self.store.due(self.now, 2)
        self.store.mark_sent(due, self.now)

    @rule(k=COUNTS)
    def receipt_for_oldest(self, k: int) -> None:
        confirmed = self.expected[:k]
        self.store.confirm(confirmed)
        self.expected = self.expected[k:]

    @rule()
    def restart(self) -> None:
        self.store.close()
        self.store = AgentStore(self.dir / "o.sqlite3")

    @rule()
    def time_passes(self) -> None:
        self.now += store_module.RECEIPT_TIMEOUT_S

    @invariant()
    def exactly_the_unconfirmed_events_wait_in_order(self) -> None:
        assert self.store.pending_ids() == self.expected

    def teardown(self) -> None:
        self.store.close()


TestOutboxMachine = OutboxMachine.TestCase
TestOutboxMachine.settings = settings(max_examples=30, stateful_step_count=20, deadline=None)
