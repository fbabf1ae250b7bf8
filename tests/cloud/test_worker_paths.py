"""The ingest worker's own mechanics, called directly on a worker that is never started: the
per-channel message counter stays bounded, telemetry work waits while an event is handled,
the bulk queue hands out full batches at once, and the worker process's heap is settled."""

from __future__ import annotations

import gc
import threading
import time

from prometheus_client import REGISTRY

from cloud.worker import GC_THRESHOLDS, Batches, settle_heap
from mqttlink import Inbound
from tests.helpers import wait_for


def _inbound(channel: str) -> Inbound:
    return Inbound(f"dt/crowdfix/v1/dev-1/{channel}", b"{}", 1, False, 1, 1)


def _label_values() -> set[str]:
    return {
        sample.labels["channel"]
        for metric in REGISTRY.collect()
        if metric.name == "crowdfix_messages"
        for sample in metric.samples
        if "channel" in sample.labels
    }


def test_the_channel_counter_has_a_bounded_number_of_labels(sessions, worker_for) -> None:
    worker = worker_for(sessions)
    for n in range(200):  # a device picks its topic's last level: it must not grow the labels
        worker._route(_inbound(f"made_up_{n}"))
    worker._route(_inbound("telemetry"))
    labels = _label_values()
    assert "other" in labels
    assert len({label for label in labels if label.startswith("made_up_")}) <= 16
    assert worker._bulk.qsize() == 1 and worker._events.qsize() == 200


def test_bulk_work_waits_while_an_event_is_handled(sessions, worker_for) -> None:
    worker = worker_for(sessions)
    worker._event_busy.set()
    done = threading.Event()
    waiting = threading.Thread(target=lambda: (worker._yield_to_events(), done.set()))
    waiting.start()
    time.sleep(0.05)
    assert not done.is_set()  # still stepping aside
    worker._event_busy.clear()
    assert done.wait(2)
    waiting.join()


def test_the_bulk_queue_hands_out_a_batch_when_it_is_full_and_counts_it_done() -> None:
    batches = Batches()
    assert batches.take(limit=5, wait_s=0.01, first_wait_s=0.01) == []
    got: list[list[Inbound]] = []
    taker = threading.Thread(target=lambda: got.append(batches.take(limit=5, wait_s=60)))
    taker.start()
    batches.put(_inbound("telemetry-0"))  # wakes the taker, which gathers for up to 60 s
    wait_for(lambda: batches.qsize() == 1 and batches._want == 5, 5, "the taker gathering")
    for n in range(1, 5):  # the fifth (the limit) hands the batch out at once
        batches.put(_inbound(f"telemetry-{n}"))
    taker.join(10)
    assert not taker.is_alive(), "a full batch must not wait out its gathering time"
    assert [i.topic.rsplit("-", 1)[1] for i in got[0]] == ["0", "1", "2", "3", "4"]
    for n in range(7):
        batches.put(_inbound(f"telemetry-{n}"))
    assert len(batches.take(limit=5, wait_s=0)) == 5  # never more than the limit
    assert batches.qsize() == 2 and batches.unfinished == 12  # taken is not yet done
    batches.done(10)
    assert batches.unfinished == 2


def test_settle_heap_freezes_the_start_up_heap_and_collects_less_often() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
