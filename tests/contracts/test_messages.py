"""The wire contract: round trips, and every kind of bad input is refused with its reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import (
    MAX_PAYLOAD_BYTES,
    ButtonEvent,
    Channel,
    Command,
    ContractViolation,
    FaultEvent,
    Feedback,
    Heartbeat,
    Reading,
    Receipt,
    Rejection,
    Status,
    Telemetry,
    command_topic,
    decode_downlink,
    decode_uplink,
    encode,
    uplink_topic,
)

slugs = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}\Z")
device_ids = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?\Z")
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
seqs = st.integers(min_value=0, max_value=2**63 - 1)
floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


def envelope(device_id: st.SearchStrategy[str] = device_ids) -> dict[str, st.SearchStrategy]:
    return {"device_id": device_id, "timestamp": times, "seq": seqs}


uplinks = st.one_of(
    st.builds(ButtonEvent, button=slugs, category=slugs, **envelope()),
    st.builds(
        FaultEvent,
        code=slugs,
        state=st.sampled_from(["raised", "cleared"]),
        readings=st.dictionaries(slugs, floats, max_size=5),
        summary=st.text(max_size=100),
        **envelope(),
    ),
    st.builds(
        Telemetry,
        readings=st.lists(
            st.builds(Reading, name=slugs, value=floats, timestamp=times), min_size=1, max_size=5
        ),
        **envelope(),
    ),
    st.builds(Status, state=st.sampled_from(["online", "offline"]), **envelope()),
    st.builds(Heartbeat, agent_version=st.just("0.1.0"), profile=slugs, **envelope()),
)


@given(uplinks)
def test_every_uplink_message_round_trips_through_its_topic(message) -> None:
    topic = uplink_topic(message.device_id, Channel(message.type))
    assert decode_uplink(topic, encode(message)) == message


@given(
    st.one_of(
        st.builds(
            Receipt,
            message_ids=st.lists(st.uuids().map(lambda u: u.hex), min_size=1),
            device_id=device_ids,
            timestamp=times,
        ),
        st.builds(
            Feedback,
            state=st.sampled_from(["received", "en_route", "resolved"]),
            eta_minutes=st.none() | st.integers(0, 600),
            device_id=device_ids,
            timestamp=times,
        ),
    )
)
def test_every_downlink_message_round_trips(message) -> None:
    topic = command_topic(message.device_id, Command(message.type))
    assert decode_downlink(topic, encode(message)) == message


def _button(**changes) -> dict:
    base = {
        "schema_version": 1,
        "message_id": "3f1c9a2e8b7d4c6a9e0f1b2c3d4e5f60",
        "device_id": "pos-0001",
        "timestamp": "2026-11-23T10:15:00Z",
        "seq": 7,
        "type": "button",
        "button": "printer",
        "category": "receipt-printer",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


TOPIC = "dt/crowdfix/v1/pos-0001/button"


def _reason(topic: str, payload: bytes) -> Rejection:
    with pytest.raises(ContractViolation) as caught:
        decode_uplink(topic, payload)
    return caught.value.reason


def test_the_protocol_docs_example_is_valid() -> None:
    message = decode_uplink(TOPIC, json.dumps(_button()).encode())
    assert isinstance(message, ButtonEvent)
    assert message.gesture.value == "single" and message.action.value == "request"
    assert message.timestamp == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TOPIC, b"{not json", Rejection.MALFORMED_JSON),
        (TOPIC, b"\xff\xfe", Rejection.MALFORMED_JSON),
        (TOPIC, json.dumps(_button(schema_version=2)).encode(), Rejection.UNSUPPORTED_SCHEMA),
        (TOPIC, json.dumps(_button(seq=-1)).encode(), Rejection.SCHEMA_VIOLATION),
        (TOPIC, json.dumps(_button(message_id="short")).encode(), Rejection.SCHEMA_VIOLATION),
        (
            TOPIC,
            json.dumps(_button(timestamp="2026-11-23T10:15:00")).encode(),
            Rejection.SCHEMA_VIOLATION,
        ),  # no time zone
        (TOPIC, json.dumps(_button(extra="field")).encode(), Rejection.SCHEMA_VIOLATION),
        (TOPIC, json.dumps(_button(gesture="triple")).encode(), Rejection.SCHEMA_VIOLATION),
        (TOPIC, json.dumps(_button(category="Not A Slug")).encode(), Rejection.SCHEMA_VIOLATION),
        (TOPIC, json.dumps(_button(type=None)).encode(), Rejection.SCHEMA_VIOLATION),
        (TOPIC, b"[]", Rejection.SCHEMA_VIOLATION),
        ("dt/crowdfix/v1/pos-0001/fault", json.dumps(_button()).encode(), Rejection.TYPE_MISMATCH),
        (
            "dt/crowdfix/v1/pos-0002/button",
            json.dumps(_button()).encode(),
            Rejection.DEVICE_MISMATCH,
        ),
        ("dt/crowdfix/v2/pos-0001/button", json.dumps(_button()).encode(), Rejection.UNKNOWN_TOPIC),
        ("dt/crowdfix/v1/POS/button", json.dumps(_button()).encode(), Rejection.UNKNOWN_TOPIC),
        (TOPIC, b" " * (MAX_PAYLOAD_BYTES + 1), Rejection.OVERSIZED),
    ],
)
def test_bad_input_is_refused_with_its_reason(topic: str, payload: bytes, reason: Rejection):
    assert _reason(topic, payload) is reason


def test_a_violation_names_the_field() -> None:
    with pytest.raises(ContractViolation, match=r"seq"):
        decode_uplink(TOPIC, json.dumps(_button(seq="seven")).encode())


def test_non_finite_readings_are_refused() -> None:
    payload = encode(
        FaultEvent(
            device_id="pos-0001", timestamp=datetime.now(UTC), seq=1, code="x", state="raised"
        )
    ).replace(b'"readings":{}', b'"readings":{"temp":NaN}')
    assert _reason("dt/crowdfix/v1/pos-0001/fault", payload) is Rejection.SCHEMA_VIOLATION


def test_messages_are_frozen_and_ids_unique() -> None:
    a = ButtonEvent(device_id="d1", timestamp=datetime.now(UTC), seq=1, button="b", category="c")
    b = a.model_copy()
    with pytest.raises(ValueError):
        a.seq = 2  # type: ignore[misc]
    again = ButtonEvent(device_id="d1", timestamp=a.timestamp, seq=1, button="b", category="c")
    assert b.message_id == a.message_id != again.message_id


def test_other_time_zones_are_kept_as_the_same_instant() -> None:
    local = datetime(2026, 11, 23, 11, 15, tzinfo=timezone(timedelta(hours=1)))
    message = ButtonEvent(device_id="d1", timestamp=local, seq=1, button="b", category="c")
    decoded = decode_uplink(uplink_topic("d1", Channel.BUTTON), encode(message))
    assert decoded.timestamp == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
