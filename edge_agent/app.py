"""The edge agent, wired in one place: profile, buttons, state store and MQTT transport."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from contracts import ButtonEvent, DownlinkMessage, Heartbeat, Status, UplinkMessage
from edge_agent import __version__
from edge_agent.hardware.buttons import HelpButtons
from edge_agent.hardware.pins import make_pin_factory
from edge_agent.outbox.store import AgentStore
from edge_agent.profile import Profile
from edge_agent.settings import AgentSettings
from edge_agent.transport.mqtt import DeviceTransport

_LOGGER = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The device's clock, timezone-aware."""
    return datetime.now(UTC)


class EdgeAgent:
    """One device: reads its buttons, publishes events, shows what the cloud says."""

    def __init__(
        self, settings: AgentSettings, profile: Profile, *, pin_factory: Any = None
    ) -> None:
        self.settings = settings
        self.profile = profile
        self.device_id = settings.device_id
        self._work: queue.Queue[Callable[[], None]] = queue.Queue()
        self._started = time.monotonic()
        self.commands: list[DownlinkMessage] = []
        self._store = AgentStore(settings.state_dir / f"{self.device_id}.sqlite3")
        self.pin_factory = (
            pin_factory if pin_factory is not None else make_pin_factory(settings.pins)
        )
        self._buttons = HelpButtons(profile.buttons, self.pin_factory, self._on_press)
        self._transport = DeviceTransport(
            settings.broker(),
            self.device_id,
            make_status=self._status,
            on_command=lambda cmd: self._work.put(lambda: self._handle_command(cmd)),
        )

    @property
    def transport(self) -> DeviceTransport:
        """The device's MQTT session."""
        return self._transport

    def run(self, stop: threading.Event) -> None:
        """Serve until stop is set; then say goodbye to the broker and release the pins."""
        self._transport.start()
        next_heartbeat = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_heartbeat:
                    self._send_heartbeat()
                    next_heartbeat = now + self.profile.heartbeat_interval_s
                try:
                    job = self._work.get(timeout=min(0.5, max(0.0, next_heartbeat - now)))
                except queue.Empty:
                    continue
                job()
        finally:
            self.close()

    def close(self) -> None:
        """Stop publishing and release hardware and files."""
        self._transport.stop()
        self._buttons.close()
        self._store.close()

    # -- work items (run on the agent thread) ------------------------------------------

    def _on_press(self, button_name: str) -> None:
        self._work.put(lambda: self._publish_press(button_name))

    def _publish_press(self, button_name: str) -> None:
        spec = next(b for b in self.profile.buttons if b.name == button_name)
        event = ButtonEvent(**self._envelope(), button=spec.name, category=spec.category)
        self._send(event)

    def _send_heartbeat(self) -> None:
        self._send(
            Heartbeat(
                **self._envelope(),
                agent_version=__version__,
                profile=self.profile.profile,
                config_hash=self.profile.config_hash(),
                uptime_s=round(time.monotonic() - self._started, 3),
            )
        )

    def _send(self, message: UplinkMessage) -> None:
        result = self._transport.send(message)
        if result.sent:
            _LOGGER.info("sent %s %s seq=%d", message.type, message.message_id, message.seq)
        else:
            _LOGGER.warning(
                "not connected to the broker: %s %s not sent", message.type, message.message_id
            )

    def _handle_command(self, command: DownlinkMessage) -> None:
        _LOGGER.info("command %s %s", command.type, command.model_dump_json(exclude={"device_id"}))
        self.commands.append(command)

    # -- helpers -----------------------------------------------------------------------

    def _envelope(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "timestamp": utc_now(), "seq": self._store.next_seq()}

    def _status(self, state: Literal["online", "offline"]) -> Status:
        return Status(
            **self._envelope(),
            state=state,
            agent_version=__version__,
            profile=self.profile.profile,
        )
