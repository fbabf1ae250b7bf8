"""Garbage at the ingest path: random bytes and near-valid messages never crash the worker;
each message is either stored or quarantined with a reason."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cloud.quarantine.models import QuarantinedMessage
from cloud.worker import IngestWorker
from mqttlink import Inbound
from tests.cloud.factories import fault, press, register, status

CHANNELS = ["button", "fault", "telemetry", "status", "heartbeat", "nonsense"]
DEVICES = ["fz-1", "fz-2", "ghost"]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def worker(sessions, worker_for) -> Iterator[IngestWorker]:
    register(sessions, "fz-1", "fz-2")
    yield worker_for(sessions)


def valid_dicts() -> st.SearchStrategy[dict]:
    return st.sampled_from(
        [
            json.loads(press("fz-1").model_dump_json()),
            json.loads(fault("fz-2", "temperature-high").model_dump_json()),
            json.loads(status("fz-1", "online").model_dump_json()),
        ]
    )


junk_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=50),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@st.composite
def near_valid(draw) -> bytes:
    message = dict(draw(valid_dicts()))
    key = draw(st.sampled_from(sorted(message)))
    action = draw(st.sampled_from(["drop", "junk", "extra", "keep"]))
    if action == "drop":
        message.pop(key)
    elif action == "junk":
        message[key] = draw(junk_values)
    elif action == "extra":
        message[draw(st.text(min_size=1, max_size=10))] = draw(junk_values)
    return json.dumps(message, default=str).encode()


payloads = st.one_of(
    st.binary(max_size=300), near_valid(), valid_dicts().map(lambda d: json.dumps(d).encode())
)
topics = st.one_of(
    st.builds(
        lambda d, c: f"dt/crowdfix/v1/{d}/{c}", st.sampled_from(DEVICES), st.sampled_from(CHANNELS)
    ),
    st.text(max_size=40),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(topics, payloads), min_size=1, max_size=5))
def test_garbage_is_quarantined_and_the_worker_keeps_going(worker, sessions, batch) -> None:
    before = _quarantined(sessions)
    rejected_before = sum(worker.stats.rejected.values())
    for topic, payload in batch:
        inbound = Inbound(topic, payload, 1, False, 1, 0)
        if topic.endswith(("/telemetry", "/heartbeat")):
            worker.process_bulk([inbound])
        else:
            worker.process(inbound)
    rejected = sum(worker.stats.rejected.values()) - rejected_before
    assert _quarantined(sessions) - before == rejected
    assert worker.stats.received == worker.stats.accepted + worker.stats.duplicates + sum(
        worker.stats.rejected.values()
    )


def _quarantined(sessions) -> int:
    with sessions() as db:
        return db.scalar(select(func.count()).select_from(QuarantinedMessage)) or 0
