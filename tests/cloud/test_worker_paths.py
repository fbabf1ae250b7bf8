"""The ingest worker's own mechanics, called directly on a worker that is never started: the
per-channel message counter stays bounded, and telemetry work waits while an event is handled."""

from __future__ import annotations

import threading
import time

from prometheus_client import REGISTRY

from mqttlink import Inbound


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
