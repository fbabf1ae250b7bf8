"""The edge agent, wired in one place.

Threads: gpiozero (button edges), the sampler (collectors), the MQTT link and an optional
keyboard reader only put work on one queue; the agent thread alone decides and publishes.
Button and fault events go through the SQLite outbox and stay there until the cloud's
receipt; telemetry is batched in a bounded buffer that counts what it drops.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from contracts import (
    Action,
    ButtonEvent,
    Channel,
    DownlinkMessage,
    FaultEvent,
    FaultState,
    Feedback,
    Gesture,
    Heartbeat,
    Reading,
    Receipt,
    Status,
    Telemetry,
    encode,
)
from edge_agent import __version__
from edge_agent.collectors import Collector, Sample, Sampler, build_collectors
from edge_agent.feedback import FeedbackModel, Indication
from edge_agent.gestures import Cooldown, GestureClassifier, Hold, Outcome
from edge_agent.hardware.buttons import HelpButtons
from edge_agent.hardware.feedback import FeedbackPanel, transient_durations
from edge_agent.hardware.pins import make_pin_factory
from edge_agent.outbox.store import AgentStore
from edge_agent.profile import ButtonSpec, Profile
from edge_agent.rules import FaultTransition, RuleEngine
from edge_agent.settings import AgentSettings
from edge_agent.transport.mqtt import DeviceTransport

_LOGGER = logging.getLogger(__name__)
MAX_IN_FLIGHT = 100  # events sent and awaiting a receipt; far below paho's 65,535 ceiling
MAX_READINGS_PER_MESSAGE = 500
IDLE_WAKE_S = 1.0
SETTLE_S = 15.0


def release_startup_memory() -> None:
    """Give the heap that start-up (imports, schema building) freed back to the OS (glibc)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def utc_now() -> datetime:
    """The device's clock, timezone-aware."""
    return datetime.now(UTC)


class EdgeAgent:
    """One device: reads its buttons and sensors, publishes events, shows what the cloud says."""

    def __init__(
        self,
        settings: AgentSettings,
        profile: Profile,
        *,
        pin_factory: Any = None,
        collectors: list[Collector] | None = None,
    ):
        """`collectors` replaces the profile's sensors (the demo simulates them)."""
        self.settings = settings
        self.profile = profile
        self.device_id = settings.device_id
        self.commands: list[DownlinkMessage] = []
        self._work: queue.Queue[Callable[[], None]] = queue.Queue()
        self._started = time.monotonic()
        self.pin_factory = (
            pin_factory if pin_factory is not None else make_pin_factory(settings.pins)
        )
        self._store = AgentStore(settings.state_dir / f"{self.device_id}.sqlite3")
        self._pending = self._store.backlog(time.time())[0]
        self._buttons_by_name = {b.name: b for b in profile.buttons}
        self._gestures = {b.name: GestureClassifier(profile.gestures) for b in profile.buttons}
        self._cooldown = Cooldown()
        self._rules = RuleEngine(
            profile.faults, started_at=self._started, active=self._store.active_faults()
        )
        self._readings: deque[Reading] = deque(maxlen=profile.telemetry.buffer_limit)
        self.telemetry_dropped = 0
        self._feedback = FeedbackModel(transient_durations(profile.outputs))
        self._hardware: list[Any] = []
        try:
            self._panel = self._own(FeedbackPanel(profile.outputs, self.pin_factory))
            self._buttons = self._own(HelpButtons(profile.buttons, self.pin_factory, self._on_edge))
            if collectors is None:
                collectors = build_collectors(profile, self.pin_factory)
        except Exception:
            self._release_hardware()
            self._store.close()
            raise
        self._sampler = Sampler(collectors, profile.telemetry.sample_every_s, self._on_samples)
        mqtt = profile.mqtt
        self._transport = DeviceTransport(
            settings.broker(mqtt.broker_url, mqtt.protocol, mqtt.ca_file),
            self.device_id,
            make_status=self._status,
            on_command=lambda cmd: self._work.put(lambda: self._handle_command(cmd)),
            on_connect=lambda: self._work.put(self._on_connected),
        )

    @property
    def transport(self) -> DeviceTransport:
        """The device's MQTT session."""
        return self._transport

    @property
    def store(self) -> AgentStore:
        """The outbox."""
        return self._store

    @property
    def showing(self) -> Indication | None:
        """What the LEDs and buzzer show right now."""
        return self._panel.showing

    # -- running ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Serve until stop is set; then say goodbye to the broker and release everything."""
        self._transport.start()
        self._sampler.start()
        self._resume_buttons()
        now = time.monotonic()
        self._next_heartbeat = now
        self._next_telemetry = now + self.profile.telemetry.publish_every_s
        release_startup_memory()
        trim_at: float | None = now + SETTLE_S
        try:
            while not stop.is_set():
                self._tick(time.monotonic())
                if trim_at is not None and time.monotonic() >= trim_at:
                    release_startup_memory()  # again, once connecting and first sends settled
                    trim_at = None
                try:
                    job = self._work.get(timeout=self._sleep_s(time.monotonic()))
                except queue.Empty:
                    continue
                job()
                while not self._work.empty():
                    self._work.get_nowait()()
        finally:
            self.close()

    def submit(self, job: Callable[[], None]) -> None:
        """Run job on the agent thread (for adapters such as the keyboard)."""
        self._work.put(job)

    def close(self) -> None:
        """Stop sampling and publishing; release hardware and files."""
        self._sampler.stop()
        self._transport.stop()
        self._release_hardware()
        self._store.close()

    def _tick(self, now: float) -> None:
        for name, classifier in self._gestures.items():
            for outcome in classifier.poll(now):
                self._on_gesture(self._buttons_by_name[name], outcome, now)
        for transition in self._rules.tick(now):
            self._emit_fault(transition)
        if now >= self._next_heartbeat:
            self._send_heartbeat()
            self._next_heartbeat = now + self.profile.heartbeat_interval_s
        if now >= self._next_telemetry:
            self._flush_telemetry()
            self._next_telemetry = now + self.profile.telemetry.publish_every_s
        self._pump_outbox()
        self._panel.show(self._feedback.current(now, queued=self._queued()))

    def _sleep_s(self, now: float) -> float:
        deadlines = [self._next_heartbeat, self._next_telemetry, now + IDLE_WAKE_S]
        deadlines += [d for c in self._gestures.values() if (d := c.next_deadline()) is not None]
        if (change := self._feedback.next_change()) is not None:
            deadlines.append(change)
        return max(0.0, min(deadlines) - now)

    # -- buttons ---------------------------------------------------------------------------

    def _on_edge(self, name: str, pressed: bool, at: float) -> None:
        self._work.put(lambda: self._handle_edge(name, pressed, at))

    def _handle_edge(self, name: str, pressed: bool, at: float) -> None:
        classifier = self._gestures[name]
        outcomes = classifier.press(at) if pressed else classifier.release(at)
        for outcome in outcomes:
            self._on_gesture(self._buttons_by_name[name], outcome, at)

    def _on_gesture(self, button: ButtonSpec, outcome: Outcome, at: float) -> None:
        if isinstance(outcome, Hold):
            self._stuck_button(button, outcome, at)
            return
        action = getattr(button.actions, outcome.value)
        if action is None:
            return
        if not self._cooldown.allow((button.name, action.value), at, button.cooldown_s):
            _LOGGER.info(
                "button %s: %s again within %gs, not sent",
                button.name,
                action.value,
                button.cooldown_s,
            )
            self._feedback.flash(Indication.PRESSED, at)
            return
        self._emit(
            ButtonEvent(
                **self._envelope(),
                button=button.name,
                category=button.category,
                gesture=Gesture(outcome.value),
                action=Action(action),
            )
        )
        self._feedback.flash(Indication.PRESSED, at)

    def _resume_buttons(self) -> None:
        """After a restart: a button still held is seen as pressed now; a stuck-button fault
        left by the previous run is cleared (and raised again if it is still stuck)."""
        now = time.monotonic()
        for name in self._buttons.held():
            self._gestures[name].press(now)
        for code in self._store.active_faults() - self._rules.codes():
            button = self._buttons_by_name.get(code.removeprefix("button-stuck-"))
            if button is not None:
                self._stuck_button(button, Hold.UNSTUCK, now)

    def _stuck_button(self, button: ButtonSpec, hold: Hold, at: float) -> None:
        raised = hold is Hold.STUCK
        self._emit(
            FaultEvent(
                **self._envelope(),
                code=f"button-stuck-{button.name}"[:64],
                state="raised" if raised else "cleared",
                severity="warning",
                summary=f"Help button {button.name!r} "
                f"{'held down for over' if raised else 'released after more than'} "
                f"{self.profile.gestures.stuck_after_s:g}s",
            )
        )
        if raised:
            self._feedback.flash(Indication.ERROR, at)

    # -- telemetry and faults --------------------------------------------------------------

    def _on_samples(self, samples: list[Sample], at: float, wall: float) -> None:
        self._work.put(lambda: self._handle_samples(samples, at, wall))

    def _handle_samples(self, samples: list[Sample], at: float, wall: float) -> None:
        timestamp = datetime.fromtimestamp(wall, UTC)
        for name, value, unit in samples:
            if len(self._readings) == self._readings.maxlen:
                self.telemetry_dropped += 1  # the deque drops the oldest
            self._readings.append(Reading(name=name, value=value, unit=unit, timestamp=timestamp))
        for transition in self._rules.observe(((n, v) for n, v, _ in samples), at):
            self._emit_fault(transition)

    def _emit_fault(self, fault: FaultTransition) -> None:
        _LOGGER.info("fault %s %s %s", fault.code, fault.state.value, fault.readings)
        self._emit(
            FaultEvent(
                **self._envelope(),
                code=fault.code,
                state=fault.state,
                severity=fault.severity,
                summary=fault.summary,
                readings=fault.readings,
            )
        )

    def _flush_telemetry(self) -> None:
        while self._readings and self._transport.link.connected:
            batch = [
                self._readings.popleft()
                for _ in range(min(MAX_READINGS_PER_MESSAGE, len(self._readings)))
            ]
            if not self._transport.send(Telemetry(**self._envelope(), readings=batch)).sent:
                self._readings.extendleft(reversed(batch))
                return

    # -- the outbox ------------------------------------------------------------------------

    def _emit(self, message: ButtonEvent | FaultEvent) -> None:
        """Durably keep an event, then try to send it."""
        fault = None
        if isinstance(message, FaultEvent):
            fault = (message.code, message.state is FaultState.RAISED)
        payload = encode(message)
        self._store.add(message.seq, message.message_id, message.type, payload, time.time(), fault)
        self._pending += 1
        _LOGGER.info(
            "event %s %s seq=%d kept in the outbox", message.type, message.message_id, message.seq
        )
        self._pump_outbox()

    def _pump_outbox(self) -> None:
        if not self._pending or not self._transport.link.connected:
            return
        now = time.time()
        if self._store.retry_due(now):
            # Go back N: resend everything unconfirmed from the oldest, so the replay stays
            # in order even when only some receipts went missing.
            self._store.resend_all_now()
        room = MAX_IN_FLIGHT - self._store.in_flight(now)
        due = self._store.due(now, room)
        sent = [e for e in due if self._transport.send_encoded(Channel(e.channel), e.payload).sent]
        if sent:
            self._store.mark_sent(sent, now)

    def _on_connected(self) -> None:
        self._send_heartbeat()  # the cloud learns the backlog and versions right away
        self._next_heartbeat = time.monotonic() + self.profile.heartbeat_interval_s
        self._store.resend_all_now()
        self._pump_outbox()
        self._flush_telemetry()

    def _queued(self) -> bool:
        return self._pending > 0 and not self._transport.link.connected

    # -- commands from the cloud -----------------------------------------------------------

    def _handle_command(self, command: DownlinkMessage) -> None:
        self.commands.append(command)
        if isinstance(command, Receipt):
            confirmed = self._store.confirm(command.message_ids)
            self._pending = max(0, self._pending - len(confirmed))
            if confirmed:
                self._feedback.receipt(command.ticket_id)
            _LOGGER.info(
                "receipt for %s (ticket %s)", ",".join(command.message_ids), command.ticket_id
            )
        elif isinstance(command, Feedback):
            _LOGGER.info("feedback %s (ticket %s)", command.state.value, command.ticket_id)
            self._feedback.cloud(command.state, command.ticket_id, time.monotonic())
        self._panel.show(self._feedback.current(time.monotonic(), queued=self._queued()))

    # -- messages --------------------------------------------------------------------------

    def _send_heartbeat(self) -> None:
        backlog, oldest = self._store.backlog(time.time())
        self._transport.send(
            Heartbeat(
                **self._envelope(),
                agent_version=__version__,
                profile=self.profile.profile,
                config_hash=self.profile.config_hash(),
                interval_s=self.profile.heartbeat_interval_s,
                uptime_s=round(time.monotonic() - self._started, 3),
                backlog=backlog,
                oldest_pending_s=None if oldest is None else round(oldest, 3),
                telemetry_dropped=self.telemetry_dropped,
            )
        )

    def _envelope(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "timestamp": utc_now(), "seq": self._store.next_seq()}

    def _status(self, state: Literal["online", "offline"], session_started: datetime) -> Status:
        """Birth, will and goodbye carry the start of their MQTT session (see the protocol)."""
        envelope = {**self._envelope(), "timestamp": session_started}
        return Status(
            **envelope, state=state, agent_version=__version__, profile=self.profile.profile
        )

    def _own(self, hardware: Any) -> Any:
        self._hardware.append(hardware)
        return hardware

    def _release_hardware(self) -> None:
        for hardware in reversed(self._hardware):
            hardware.close()
        self._hardware.clear()
