"""docs/protocol.md's mosquitto_pub examples are valid messages (the docs match the code)."""

from __future__ import annotations

import shlex

import pytest

from contracts import decode_downlink, decode_uplink, parse_uplink_topic
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "protocol.md").read_text()
EXAMPLES = [shlex.split(line) for line in DOC.splitlines() if line.startswith("mosquitto_pub ")]


def test_every_message_type_has_an_example() -> None:
    types = {args[args.index("-t") + 1].rsplit("/", 1)[1] for args in EXAMPLES}
    assert types == {"button", "fault", "telemetry", "status", "heartbeat", "receipt", "feedback"}


@pytest.mark.parametrize("args", EXAMPLES, ids=lambda a: a[a.index("-t") + 1])
def test_each_example_decodes(args: list[str]) -> None:
    topic, payload = args[args.index("-t") + 1], args[args.index("-m") + 1].encode()
    decode = decode_uplink if parse_uplink_topic(topic) else decode_downlink
    message = decode(topic, payload)
    assert ("-r" in args) == (message.type == "status"), "only status is retained"


def test_each_technician_notice_example_is_what_the_cloud_sends() -> None:
    """The JSON examples of the technicians' section are valid notices, one of each type."""
    import json
    import re

    from cloud.dispatch.schemas import JobAssigned, JobCalledOff, OfferNotice, OfferWithdrawn

    notices = {
        m.model_fields["type"].default: m
        for m in (OfferNotice, OfferWithdrawn, JobCalledOff, JobAssigned)
    }
    section = DOC.split("## Offers to technicians")[1].split("\n## ")[0]
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.S)]
    assert sorted(e["type"] for e in examples) == sorted(notices)
    for example in examples:
        notice = notices[example["type"]].model_validate(example)
        assert json.loads(notice.model_dump_json()) == example
