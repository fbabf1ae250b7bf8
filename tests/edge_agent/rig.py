"""A test rig shared by the agent tests: a profile with fast timings, and a broker-side recorder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts import decode_uplink
from mqttlink import BrokerSettings, Inbound, MqttLink


def rig_profile(value_file: Path, buttons: dict[str, int], **extra: Any) -> dict:
    """Buttons by name → pin, a `level` signal read from value_file, and a fault on it."""
    profile = {
        "profile": "test-rig",
        "buttons": [
            {"name": name, "pin": pin, "category": name, "bounce_ms": 0}
            for name, pin in buttons.items()
        ],
        "gestures": {"long_press_s": 0.5, "double_press_window_s": 0.25, "stuck_after_s": 5},
        "collectors": [
            {
                "kind": "command",
                "name": "level",
                "parse": "number",
                "command": ["cat", str(value_file)],
            }
        ],
        "telemetry": {"sample_every_s": 0.2, "publish_every_s": 0.5},
        "faults": [
            {
                "code": "level-high",
                "severity": "major",
                "summary": "too high",
                "when": {"kind": "threshold", "signal": "level", "above": 50, "clear_below": 40},
            }
        ],
        "heartbeat_interval_s": 5,
    }
    profile.update(extra)
    return profile


class Recorder:
    """A durable, non-shared subscriber to one device's uplink: what really crossed the
    broker, in the order it crossed (it keeps its session across broker restarts)."""

    def __init__(self, url: str, device_id: str) -> None:
        self.seen: list[Inbound] = []
        self.link = MqttLink(
            BrokerSettings.from_url(url),
            f"recorder-{device_id}",
            on_message=self.seen.append,
            persistent_session=True,
        )
        self.link.subscribe(f"dt/crowdfix/v1/{device_id}/+")

    def start(self) -> Recorder:
        self.link.start()
        assert self.link.wait_connected(10), self.link.last_error
        return self

    def stop(self) -> None:
        self.link.stop()

    def decoded(self) -> list:
        """Every message seen, decoded with the contract."""
        return [decode_uplink(m.topic, m.payload) for m in list(self.seen)]

    def first_arrivals(self) -> list[str]:
        """Message ids of button and fault events, in order of first arrival."""
        ids: list[str] = []
        for message in list(self.seen):
            if message.topic.endswith(("/button", "/fault")):
                mid = json.loads(message.payload)["message_id"]
                if mid not in ids:
                    ids.append(mid)
        return ids
