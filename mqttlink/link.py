"""One MQTT connection with its own reconnect loop (backoff, jitter), re-subscribing on connect.

Each connection attempt gets a fresh paho client, so paho's in-memory queue never
resends on its own: callers that need durability keep their own outbox and resend
when `on_connect` tells them the link is up again.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mqttlink.settings import BrokerSettings, Protocol

_LOGGER = logging.getLogger(__name__)

RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 30.0
LOOP_TIMEOUT_S = 0.5
_UNSUPPORTED_PROTOCOL = 132  # CONNACK reason "Unsupported protocol version"
# Handed to the connection (AGAIN: the socket is full, paho's loop sends it when it drains).
_WRITTEN = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN)
# PUBACK: fixed header, remaining length 2, packet id (the same in MQTT 3.1.1 and 5).
_PUBACK = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class Inbound:
    """A received message; `generation` names its connection (acks are per connection)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    generation: int
    received: float = 0.0  # time.monotonic() when it came off the wire


@dataclass(frozen=True, slots=True)
class Will:
    """Message the broker publishes for us when we vanish."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class PublishResult:
    """Outcome of handing a message to the connection."""

    sent: bool
    mid: int = 0
    generation: int = 0


def _no_delay(client: paho.Client) -> None:
    """Turn Nagle's algorithm off: small MQTT packets (a press, its PUBACK, a receipt) must
    not wait ~40 ms for the peer's delayed TCP acknowledgement."""
    sock = client.socket()
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


READ_AHEAD_BYTES = 64 * 1024


class _ReadAhead:
    """The connection's socket with a read buffer. paho reads a packet in pieces (a byte for
    its type, a byte at a time for its length, then the rest), one system call each: under
    a stream of messages that is four or five calls a message. This asks the kernel for up
    to 64 KiB at once and hands paho the pieces from memory. pending() tells paho's loop
    that bytes are waiting here, so it reads on instead of waiting in select() for the
    socket (paho asks the same of TLS sockets, which buffer too)."""

    __slots__ = ("_at", "_data", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._data = b""
        self._at = 0

    def recv(self, size: int) -> bytes:
        if self._at >= len(self._data):
            self._data, self._at = self._sock.recv(READ_AHEAD_BYTES), 0  # may raise: paho's
            if not self._data:
                return b""  # closed by the peer
        piece = self._data[self._at : self._at + size]
        self._at += len(piece)
        return piece

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._data) - self._at + inner

    def __getattr__(self, name: str) -> Any:  # send, fileno, close, setblocking, ...
        return getattr(self._sock, name)


def _read_ahead(client: paho.Client) -> _ReadAhead | None:
    """Put the read buffer under a freshly connected paho client (paho 2.x keeps its socket
    in _sock; without it nothing changes)."""
    sock = getattr(client, "_sock", None)
    if sock is not None and hasattr(sock, "recv"):
        client._sock = buffered = _ReadAhead(sock)
        return buffered
    return None


_PUBLISH = 0x30
_PAHO_CLOCK: Callable[[], float] = getattr(paho, "time_func", time.monotonic)
# topic, payload, qos, retain, packet id
Delivery = Callable[[str, bytes, int, bool, int], None]


def parse_publish(
    data: bytes, at: int, *, v5: bool, manual_ack: bool
) -> tuple[int, str, bytes, int, bool, int] | None:
    """The PUBLISH packet starting at data[at], when it is complete there and plain: QoS 0,
    or QoS 1 acknowledged by the application, no MQTT 5 properties, a UTF-8 topic. Returns
    (end, topic, payload, qos, retain, packet id); None for anything else (another packet
    type, a packet cut off by the end of the buffer, QoS 2, properties, a malformed one),
    which paho's own reader then takes."""
    size = len(data)
    header = data[at]
    qos = (header >> 1) & 3
    if header & 0xF0 != _PUBLISH or qos > 1 or (qos == 1 and not manual_ack):
        return None  # QoS 2 (and the invalid 3), or QoS 1 that paho acknowledges itself
    length, multiplier, i = 0, 1, at + 1
    while True:  # remaining length: at most four bytes, seven bits each
        if i >= size or i - at > 4:
            return None
        byte = data[i]
        i += 1
        length += (byte & 127) * multiplier
        multiplier *= 128
        if not byte & 128:
            break
    end = i + length
    if end > size or length < 2:
        return None
    topic_end = i + 2 + ((data[i] << 8) | data[i + 1])
    payload_at = topic_end + (2 if qos else 0) + (1 if v5 else 0)
    if payload_at > end or (v5 and data[payload_at - 1] != 0):
        return None  # malformed, or properties (a topic alias, user properties): paho's
    mid = (data[topic_end] << 8) | data[topic_end + 1] if qos else 0
    try:
        topic = data[i + 2 : topic_end].decode()
    except UnicodeDecodeError:
        return None
    if not topic:
        return None
    return end, topic, data[payload_at:end], qos, bool(header & 1), mid


class _LeanReader:
    """paho's packet reader with a fast lane for plain PUBLISH packets. paho reads and
    handles one packet per call of its loop: a select(), a dictionary of read state, the
    packet parsed into a properties object and an MQTTMessage, a log call and a topic match
    for callbacks, per message; for a stream of telemetry that is about half of what a
    worker spends on a message. This takes every complete plain PUBLISH waiting in the read
    buffer in one call and hands each straight to the application; anything else (CONNACK,
    SUBACK, PINGRESP, QoS 2, properties, a packet not yet complete) goes to paho's own
    reader, in order. Installed on paho 2.x clients only (it reads _packet_read, _in_packet,
    _msgtime_mutex and _in_callback_mutex), where it replaces the instance's _packet_read."""

    def __init__(
        self, client: paho.Client, buffer: _ReadAhead, deliver: Delivery, *, v5: bool, ack: bool
    ) -> None:
        self._client = client
        self._paho_read: Callable[[], MQTTErrorCode] = client._packet_read
        self._buffer = buffer
        self._deliver = deliver
        self._v5 = v5
        self._manual_ack = ack
        self.taken = 0  # messages that went by the fast lane

    def __call__(self) -> MQTTErrorCode:
        client, buffer = self._client, self._buffer
        if client._in_packet["command"]:  # paho is half-way through a packet
            return self._paho_read()
        handled = 0
        with client._in_callback_mutex:  # as paho's own callbacks: a publish() made while
            # handling a message is written by the loop, not from inside the read
            while buffer._at < len(buffer._data):
                packet = parse_publish(
                    buffer._data, buffer._at, v5=self._v5, manual_ack=self._manual_ack
                )
                if packet is None:
                    break
                buffer._at, topic, payload, qos, retain, mid = packet
                handled += 1
                self._deliver(topic, payload, qos, retain, mid)
        if not handled:
            return self._paho_read()
        self.taken += handled
        with client._msgtime_mutex:
            client._last_bytes_received = _PAHO_CLOCK()  # its keepalive clock
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def _lean_reader(
    client: paho.Client, buffer: _ReadAhead | None, deliver: Delivery, *, v5: bool, ack: bool
) -> None:
    """Install the fast lane when this paho has the internals it relies on."""
    needed = ("_packet_read", "_in_packet", "_msgtime_mutex", "_in_callback_mutex")
    if buffer is not None and all(hasattr(client, name) for name in needed):
        client._packet_read = _LeanReader(client, buffer, deliver, v5=v5, ack=ack)  # type: ignore[method-assign]


def backoff_delay(attempt: int, cap_s: float | None = None) -> float:
    """Exponential backoff with jitter in its upper half, capped (default RECONNECT_MAX_S)."""
    cap = RECONNECT_MAX_S if cap_s is None else cap_s
    ceiling = min(cap, RECONNECT_MIN_S * 2 ** min(attempt, 16))
    return random.uniform(ceiling / 2, ceiling)


class MqttLink:
    """A supervised MQTT client: start() connects in the background and keeps reconnecting."""

    def __init__(
        self,
        broker: BrokerSettings,
        client_id: str,
        *,
        on_message: Callable[[Inbound], None] | None = None,
        on_connect: Callable[[int], None] | None = None,
        on_published: Callable[[int, int], None] | None = None,
        will: Callable[[], Will] | None = None,
        persistent_session: bool = False,
        session_expiry_s: int = 7 * 24 * 3600,
        manual_ack: bool = False,
        receive_maximum: int | None = None,
    ) -> None:
        """receive_maximum: how many QoS 1 messages the broker may have in flight to us
        (MQTT 5; a consumer that acknowledges in batches needs room for a whole batch)."""
        self._broker = broker
        self._receive_maximum = receive_maximum
        self._client_id = client_id
        self._on_message = on_message
        self._on_connect = on_connect
        self._on_published = on_published
        self._will = will
        self._persistent = persistent_session
        self._session_expiry_s = session_expiry_s
        self._manual_ack = manual_ack
        self._protocol = Protocol.V5 if broker.protocol is Protocol.AUTO else broker.protocol
        self._subscriptions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._client: paho.Client | None = None
        self._generation = 0
        self._connected = threading.Event()
        # SUBACK tracking: filters of this connection the broker has not acknowledged yet.
        self._subscribed = threading.Event()
        self._sub_lock = threading.Lock()
        self._sub_pending: set[int] = set()
        self._sub_early: set[int] = set()  # SUBACKs that overtook our bookkeeping
        self._stopping = threading.Event()
        self._fallback = False
        self._connack_seen = False
        self._failures = 0
        self._protocol_settled = False  # a CONNACK accepted this protocol: never fall back
        self._just_connected = False
        self._thread: threading.Thread | None = None
        self.last_error = ""

    @property
    def protocol(self) -> Protocol:
        """The protocol version in use (after any fallback)."""
        return self._protocol

    @property
    def connected(self) -> bool:
        """True while a connection is up and acknowledged by the broker."""
        return self._connected.is_set()

    @property
    def generation(self) -> int:
        """Number of the current connection; increases on every (re)connect attempt."""
        return self._generation

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or timeout; True when connected."""
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until connected and the broker has acknowledged every subscription of this
        connection (CONNACK comes before SUBACK: a message published in between is missed)."""
        deadline = time.monotonic() + timeout
        return self._connected.wait(timeout) and self._subscribed.wait(
            max(0.0, deadline - time.monotonic())
        )

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe now if connected, and again on every future connect."""
        with self._lock:
            self._subscriptions = {**self._subscriptions, topic_filter: qos}
            client = self._client if self._connected.is_set() else None
        if client is not None:
            self._sent_subscribe(client.subscribe(topic_filter, qos)[1])

    def _sent_subscribe(self, mid: int | None) -> None:
        with self._sub_lock:
            if mid is None:
                return
            if mid in self._sub_early:
                self._sub_early.discard(mid)
                return
            self._sub_pending.add(mid)
            self._subscribed.clear()

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> PublishResult:
        """Hand a message to the current connection; not sent (nor queued) while disconnected."""
        with self._lock:
            client = self._client
            if client is None or not self._connected.is_set():
                return PublishResult(sent=False)
            info = client.publish(topic, payload, qos=qos, retain=retain)
            return PublishResult(
                sent=info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS,
                mid=info.mid,
                generation=self._generation,
            )

    def ack(self, message: Inbound) -> bool:
        """Acknowledge a message received with manual_ack; False if its connection is gone."""
        return self.ack_many([message])

    def ack_many(self, messages: Sequence[Inbound]) -> bool:
        """Acknowledge a batch received with manual_ack: the PUBACKs leave in one write (one
        system call, not two per message; paho 2.x's packet queue, else one by one). False
        if some belong to a connection that is gone (the broker redelivers those)."""
        with self._lock:
            client = self._client
            if client is None:
                return False
            current = [m for m in messages if m.generation == self._generation]
            sent = True
            if self._manual_ack:
                ones = [m.mid for m in current if m.qos == 1]
                queue_packet = getattr(client, "_packet_queue", None)
                if ones and queue_packet is not None:
                    blob = b"".join([_PUBACK.pack(paho.PUBACK, 2, mid) for mid in ones])
                    sent = queue_packet(paho.PUBACK, blob, 0, 0) in _WRITTEN
                elif ones:
                    sent = all([client.ack(mid, 1) in _WRITTEN for mid in ones])
                for mid in (m.mid for m in current if m.qos == 2):
                    sent = client.ack(mid, 2) in _WRITTEN and sent
            return sent and len(current) == len(messages)

    def start(self) -> None:
        """Connect in a background thread and keep the connection up until stop()."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"mqtt-{self._client_id}", daemon=True
        )
        self._thread.start()

    def unsubscribe(self, topic_filter: str) -> None:
        """Stop receiving a filter (now, and on future connects)."""
        with self._lock:
            self._subscriptions = {
                k: v for k, v in self._subscriptions.items() if k != topic_filter
            }
            client = self._client if self._connected.is_set() else None
        if client is not None:
            client.unsubscribe(topic_filter)

    def stop(self, timeout: float = 5.0, *, end_session: bool = False) -> None:
        """Disconnect cleanly (no last will) and stop the background thread; end_session also
        tells the broker to forget our session (MQTT 5), so nothing queues for us any more."""
        self._stopping.set()
        with self._lock:
            if self._client is not None and self._connected.is_set():
                props = None
                if end_session and self._protocol is Protocol.V5:
                    props = Properties(PacketTypes.DISCONNECT)
                    props.SessionExpiryInterval = 0
                self._client.disconnect(properties=props)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- the connection loop (runs in the link's own thread) ------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            client = self._new_client()
            self._connack_seen = False
            if self._connect(client):
                attempt = self._serve(client, attempt)
                if self._fallback or not self._connack_seen:
                    # Refused MQTT 5, or hung up on its CONNECT (amqtt does): try 3.1.1.
                    self._fallback = False
                    if self._fall_back_to_311():
                        continue
            self._connected.clear()
            if not self._stopping.is_set():
                self._stopping.wait(backoff_delay(attempt, self._broker.reconnect_max_s))
                attempt += 1

    def _fall_back_to_311(self) -> bool:
        if (
            self._broker.protocol is not Protocol.AUTO
            or self._protocol is not Protocol.V5
            or self._protocol_settled
        ):
            return False
        _LOGGER.info("mqtt %s: broker does not speak MQTT 5, using 3.1.1", self._client_id)
        self._protocol = Protocol.V311
        return True

    def _connect(self, client: paho.Client) -> bool:
        kwargs: dict[str, Any] = {"keepalive": self._broker.keepalive_s}
        if self._protocol is Protocol.V5:
            kwargs["clean_start"] = not self._persistent
            if self._persistent or self._receive_maximum:
                props = Properties(PacketTypes.CONNECT)
                if self._persistent:
                    props.SessionExpiryInterval = self._session_expiry_s
                if self._receive_maximum:
                    props.ReceiveMaximum = self._receive_maximum
                kwargs["properties"] = props
        try:
            client.connect(self._broker.host, self._broker.port, **kwargs)
            _no_delay(client)
            buffer = _read_ahead(client)
            if self._on_message is not None:
                _lean_reader(
                    client,
                    buffer,
                    self._deliver,
                    v5=self._protocol is Protocol.V5,
                    ack=self._manual_ack,
                )
        except (OSError, ssl.SSLError) as exc:
            self.last_error = f"cannot reach {self._broker.describe()}: {exc}"
            self._failures += 1
            # Say it the first time and then once a minute or so, not on every retry.
            level = logging.WARNING if self._failures % 60 == 1 else logging.DEBUG
            _LOGGER.log(
                level, "mqtt %s: %s (attempt %d)", self._client_id, self.last_error, self._failures
            )
            return False
        self._failures = 0
        return True

    def _serve(self, client: paho.Client, attempt: int) -> int:
        while not self._stopping.is_set() or client.is_connected():
            if client.loop(timeout=LOOP_TIMEOUT_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            if self._just_connected:
                # Called here, outside paho's callback lock, so the caller may publish.
                self._just_connected = False
                attempt = 0
                if self._on_connect is not None:
                    self._on_connect(self._generation)
        return attempt

    def _new_client(self) -> paho.Client:
        v5 = self._protocol is Protocol.V5
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            clean_session=None if v5 else not self._persistent,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            reconnect_on_failure=False,
            manual_ack=self._manual_ack,
        )
        broker = self._broker
        if broker.username:
            password = broker.password.get_secret_value() if broker.password else None
            client.username_pw_set(broker.username, password)
        if broker.tls:
            client.tls_set(
                ca_certs=str(broker.ca_file) if broker.ca_file else None,
                certfile=str(broker.cert_file) if broker.cert_file else None,
                keyfile=str(broker.key_file) if broker.key_file else None,
            )
        if self._will is not None:
            w = self._will()  # a fresh will per connection: it carries its own message id
            client.will_set(w.topic, w.payload, qos=w.qos, retain=w.retain)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        client.on_subscribe = self._handle_subscribe
        with self._lock:
            self._client = client
            self._generation += 1
        return client

    # -- paho callbacks: they only record state and hand work on; never take self._lock ----

    def _handle_connect(
        self, client: paho.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        self._connack_seen = True
        if reason.is_failure:
            if reason.value == _UNSUPPORTED_PROTOCOL:
                self._fallback = True
            else:
                self.last_error = f"{self._broker.describe()} refused the connection: {reason}"
                _LOGGER.error("mqtt %s: %s", self._client_id, self.last_error)
            return
        self._protocol_settled = True
        with self._sub_lock:
            self._sub_pending.clear()
            self._sub_early.clear()
            self._subscribed.set()
        # No self._lock here: paho holds its callback lock, publish() takes ours then paho's.
        for topic_filter, qos in self._subscriptions.items():
            self._sent_subscribe(client.subscribe(topic_filter, qos)[1])
        self._connected.set()
        self._just_connected = True
        self.last_error = ""
        _LOGGER.info(
            "mqtt %s: connected to %s (MQTT %s, session present: %s)",
            self._client_id,
            self._broker.describe(),
            self._protocol.value,
            bool(getattr(flags, "session_present", False)),
        )

    def _handle_disconnect(
        self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        if was_connected and not self._stopping.is_set():
            _LOGGER.warning("mqtt %s: connection lost (%s)", self._client_id, reason)

    def _handle_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        self._deliver(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), msg.mid)

    def _deliver(self, topic: str, payload: bytes, qos: int, retain: bool, mid: int) -> None:
        """Hand a message to the application (both lanes). A handler that fails is logged and
        the connection goes on: the message stays unacknowledged (with manual_ack), so the
        broker redelivers it on the next connection."""
        if self._on_message is None:
            return
        try:
            self._on_message(
                Inbound(topic, payload, qos, retain, mid, self._generation, time.monotonic())
            )
        except Exception:
            _LOGGER.exception("mqtt %s: the handler failed on %s", self._client_id, topic)

    def _handle_subscribe(
        self, _c: paho.Client, _u: Any, mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            self.last_error = f"the broker refused a subscription: {refused[0].getName()}"
            _LOGGER.warning(
                "mqtt %s: %s (is the filter in this account's ACL?)",
                self._client_id,
                self.last_error,
            )
        with self._sub_lock:
            if mid in self._sub_pending:
                self._sub_pending.discard(mid)
            else:
                self._sub_early.add(mid)
            if not self._sub_pending:
                self._subscribed.set()

    def _handle_publish(
        self, _c: paho.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            # MQTT 5 says why (3.1.1 brokers drop a refused message without a word).
            _LOGGER.warning(
                "mqtt %s: the broker refused message %d: %s (is the topic in this account's ACL?)",
                self._client_id,
                mid,
                reason.getName(),
            )
        if self._on_published is not None:
            self._on_published(mid, self._generation)
