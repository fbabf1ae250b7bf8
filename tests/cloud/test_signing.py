"""Webhook signatures: what a receiver checks (a right secret, an unchanged body, a recent
time) and the outbound rows that name whose webhook a POST goes to."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cloud.outbound.service import parse_webhook, webhook_topic
from cloud.outbound.signing import TOLERANCE_S, derive, sign, verify

BODY = b'{"type": "offer", "offer_id": 42}'
KEY = b"x9T2kq7VbWf3Lr8mZp4Yc1Nd"


def new_secret(version: int = 1) -> str:
    return derive(KEY, "ana", version)


def test_a_signature_checks_out_only_with_the_secret_the_body_and_in_time() -> None:
    secret = new_secret()
    header = sign(secret, BODY, at=1_000_000)
    assert header.startswith("t=1000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify(secret, BODY, header, now=1_000_000 + TOLERANCE_S)
    assert not verify(new_secret(2), BODY, header, now=1_000_000)  # another secret
    assert not verify(secret, BODY.replace(b"42", b"43"), header, now=1_000_000)  # altered
    assert not verify(secret, BODY, header, now=1_000_000 + TOLERANCE_S + 1)  # replayed late
    resigned = header.replace("t=1000000", "t=1000600")  # a fresh time on an old signature
    assert not verify(secret, BODY, resigned, now=1_000_600)
    for garbage in ("", "t=x,v1=00", "v1=00", "t=1000000", "nonsense"):
        assert not verify(secret, BODY, garbage, now=1_000_000)


def test_a_secret_is_derived_anew_for_each_technician_version_and_key() -> None:
    """Only who holds the deployment's key can make a technician's secret: the database
    keeps the version alone."""
    secret = derive(KEY, "ana", 1)
    assert secret == derive(KEY, "ana", 1) and secret.startswith("whsec_")
    assert len(secret) >= 6 + 43  # 256 bits, base64
    others = {derive(KEY, "ana", 2), derive(KEY, "ben", 1), derive(b"another key", "ana", 1)}
    assert secret not in others and len(others) == 3


@given(st.binary(max_size=200), st.integers(0, 2**40))
def test_what_is_signed_verifies(body: bytes, at: int) -> None:
    secret = "whsec_test"
    assert verify(secret, body, sign(secret, body, at), now=at)


def test_a_webhook_row_names_the_technician_and_the_url() -> None:
    topic = webhook_topic("ana.m", "https://app.example/hooks/offers?x=1:2")
    assert parse_webhook(topic) == ("ana.m", "https://app.example/hooks/offers?x=1:2")
    assert parse_webhook("webhook:http://old.example/queued-before") == (
        None,
        "http://old.example/queued-before",
    )
    assert parse_webhook("tech/crowdfix/v1/ana/offer") is None


def test_the_receivers_check_in_the_protocol_doc_works() -> None:
    """docs/protocol.md shows receivers how to check a signature: that code, run as is."""
    import re
    import time
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
    [snippet] = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    scope: dict[str, object] = {}
    exec(snippet, scope)
    check = scope["verify"]
    assert callable(check)
    now = int(time.time())
    assert check("whsec_a", BODY, sign("whsec_a", BODY, now))
    assert not check("whsec_b", BODY, sign("whsec_a", BODY, now))
    assert not check("whsec_a", BODY, sign("whsec_a", BODY, now - TOLERANCE_S - 5))
