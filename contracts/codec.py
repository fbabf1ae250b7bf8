"""JSON encoding and strict decoding: every rejection names a reason an operator can act on."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from contracts.messages import SCHEMA_VERSION, DownlinkMessage, UplinkMessage
from contracts.topics import TopicAddress, parse_command_topic, parse_uplink_topic

MAX_PAYLOAD_BYTES = 64 * 1024


@cache
def _adapter(kind: str) -> TypeAdapter[Any]:
    """Built on first use: an agent only ever decodes downlink, the cloud only uplink."""
    return TypeAdapter(UplinkMessage if kind == "uplink" else DownlinkMessage)


class Rejection(StrEnum):
    """Why a message was refused; also the label of the rejection counter."""

    OVERSIZED = "oversized"
    UNKNOWN_TOPIC = "unknown_topic"
    MALFORMED_JSON = "malformed_json"
    UNSUPPORTED_SCHEMA = "unsupported_schema_version"
    SCHEMA_VIOLATION = "schema_violation"
    TYPE_MISMATCH = "type_mismatch"
    DEVICE_MISMATCH = "device_mismatch"
    UNKNOWN_DEVICE = "unknown_device"
    FUTURE_TIMESTAMP = "future_timestamp"


class ContractViolation(ValueError):
    """A message that does not honour the contract; `reason` says which rule it broke."""

    def __init__(self, reason: Rejection, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def encode(message: BaseModel) -> bytes:
    """Compact JSON bytes for the wire."""
    return message.model_dump_json(exclude_none=True).encode()


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _classify(payload: bytes, exc: ValidationError) -> ContractViolation:
    try:
        raw: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as json_exc:
        return ContractViolation(Rejection.MALFORMED_JSON, f"not valid JSON ({json_exc})")
    if (
        isinstance(raw, dict)
        and "schema_version" in raw
        and raw["schema_version"] != SCHEMA_VERSION
    ):
        return ContractViolation(
            Rejection.UNSUPPORTED_SCHEMA,
            f"schema_version {raw['schema_version']!r} is not supported "
            f"(this cloud speaks {SCHEMA_VERSION})",
        )
    return ContractViolation(Rejection.SCHEMA_VIOLATION, _first_errors(exc))


def _check_size(payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractViolation(
            Rejection.OVERSIZED, f"{len(payload)} bytes exceeds the {MAX_PAYLOAD_BYTES} byte limit"
        )


def _decode(
    topic: str, payload: bytes, parse: Callable[[str], TopicAddress | None], kind: str
) -> Any:
    _check_size(payload)
    address = parse(topic)
    if address is None:
        raise ContractViolation(
            Rejection.UNKNOWN_TOPIC, f"topic {topic!r} is not a crowdfix {kind}"
        )
    try:
        message = _adapter(kind).validate_json(payload)
    except ValidationError as exc:
        raise _classify(payload, exc) from exc
    if message.type != address.channel:
        raise ContractViolation(
            Rejection.TYPE_MISMATCH,
            f"a {message.type!r} {kind} was published on the {address.channel!r} channel",
        )
    if message.device_id != address.device_id:
        raise ContractViolation(
            Rejection.DEVICE_MISMATCH,
            f"payload says device {message.device_id!r} but the topic is {address.device_id!r}",
        )
    return message


def decode_uplink(topic: str, payload: bytes) -> UplinkMessage:
    """Validate an uplink message against its topic; raise ContractViolation with the reason."""
    message: UplinkMessage = _decode(topic, payload, parse_uplink_topic, "uplink")
    return message


def decode_downlink(topic: str, payload: bytes) -> DownlinkMessage:
    """Validate a command sent to a device; raise ContractViolation with the reason."""
    message: DownlinkMessage = _decode(topic, payload, parse_command_topic, "command")
    return message
