"""Webhook delivery rules (pure): order per URL, one try per dead URL per batch, backoff, and
notices given up once out of date rather than delivered late."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from cloud.outbound.delivery import (
    KEEP_TRYING,
    RETRY_FIRST,
    RETRY_MAX,
    Result,
    Webhook,
    backoff,
    deliver,
    expiry,
)
from tests.cloud.factories import T0


def hook(id: int, url: str = "https://a.example/hook", attempts: int = 0, expires_in_s=None):
    expires = None if expires_in_s is None else T0 + timedelta(seconds=expires_in_s)
    return Webhook(id, "ana", url, b"{}", attempts, expires)


def test_a_failed_url_keeps_its_later_notices_waiting_and_others_go_on() -> None:
    tried: list[int] = []

    def post(h: Webhook) -> str | None:
        tried.append(h.id)
        return "HTTP 503" if "dead" in h.url else None

    batch = [hook(3, "https://dead.example"), hook(1), hook(2, "https://dead.example"), hook(4)]
    outcomes = {o.id: o for o in deliver(batch, post, T0)}
    assert tried == [1, 2, 4]  # in order of queueing; 3 never tried once 2 failed
    assert outcomes[1].result is outcomes[4].result is Result.DELIVERED
    assert outcomes[2].result is Result.FAILED and outcomes[2].error == "HTTP 503"
    assert outcomes[3].result is Result.WAITING
    assert outcomes[2].retry_at == outcomes[3].retry_at == T0 + RETRY_FIRST


def test_an_out_of_date_notice_is_given_up_untried() -> None:
    tried: list[int] = []
    outcomes = deliver(
        [hook(1, expires_in_s=0), hook(2, expires_in_s=1)], lambda h: tried.append(h.id), T0
    )
    assert [o.result for o in outcomes] == [Result.GIVEN_UP, Result.DELIVERED]
    assert tried == [2]


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [RETRY_FIRST, 2 * RETRY_FIRST, 4 * RETRY_FIRST]
    assert backoff(1000) == RETRY_MAX  # no overflow after a long outage
    failing = deliver([hook(1, attempts=2)], lambda h: "refused", T0)
    assert failing[0].retry_at == T0 + backoff(3)


def test_a_notice_expires_at_its_deadline_or_after_a_day() -> None:
    assert expiry(T0, T0 + timedelta(minutes=5)) == T0 + timedelta(minutes=5)
    assert expiry(T0, None) == T0 + KEEP_TRYING


@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.booleans(), st.booleans()), min_size=1, max_size=30
    )
)
def test_per_url_what_is_delivered_is_everything_before_the_first_failure(rows) -> None:
    """For any batch and any failures: per URL, the notices delivered are exactly the live
    ones before its first failure, and nothing after a failure is tried."""
    batch = [
        hook(i, f"https://{url}.example", expires_in_s=None if live else 0)
        for i, (url, live, _fails) in enumerate(rows)
    ]
    fails = {i for i, (_u, _l, failing) in enumerate(rows) if failing}
    tried: list[int] = []

    def post(h: Webhook) -> str | None:
        tried.append(h.id)
        return "down" if h.id in fails else None

    outcomes = {o.id: o.result for o in deliver(reversed(batch), post, T0)}
    assert len(outcomes) == len(batch)
    for url in "abc":
        live = [h.id for h in batch if h.url == f"https://{url}.example" and h.expires_at is None]
        first_failure = next((i for i in live if i in fails), None)
        before = [i for i in live if first_failure is None or i < first_failure]
        assert [i for i in live if outcomes[i] is Result.DELIVERED] == before
        assert [i for i in tried if i in live] == before + (
            [first_failure] if first_failure is not None else []
        )
    assert all(outcomes[h.id] is Result.GIVEN_UP for h in batch if h.expires_at is not None)
