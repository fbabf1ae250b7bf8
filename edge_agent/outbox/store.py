"""The agent's durable state in one SQLite file (WAL, synchronous=FULL): the per-device
sequence number and the outbox of events that wait for the cloud's receipt.

An event is written here *before* it is published and deleted only when the cloud's
receipt for its message id arrives: a broker's PUBACK is not durability (Mosquitto
snapshots to disk periodically; paho's queue lives in memory). It survives a broker
outage, a network cut, a crash of the agent and a reboot of the Pi.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import SettingsError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS active_faults (code TEXT PRIMARY KEY, raised_at REAL NOT NULL);
"""
# Resend an unconfirmed event after this long, doubling per attempt up to the maximum.
RECEIPT_TIMEOUT_S = 10.0
RESEND_MAX_S = 300.0
# Sequence numbers are reserved on disk in blocks, so telemetry does not cost an fsync per
# message; a crash skips the rest of a block (gaps, never repeats).
SEQ_BLOCK = 1000


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event waiting for its receipt."""

    seq: int
    message_id: str
    channel: str
    payload: bytes
    attempts: int


def resend_delay(attempts: int) -> float:
    """Wait before the next attempt: doubling from RECEIPT_TIMEOUT_S, capped, with jitter."""
    ceiling = min(RESEND_MAX_S, RECEIPT_TIMEOUT_S * 2 ** min(attempts - 1, 16))
    return random.uniform(ceiling * 0.8, ceiling)


class AgentStore:
    """One SQLite file per device, shared by the agent's threads; times are wall-clock seconds."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA cache_size=-256")  # KiB: the outbox is tiny, RAM is not
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise SettingsError(
                f"cannot open the agent state file {path}: {exc} "
                "(set --state-dir / CROWDFIX_AGENT_STATE_DIR to a writable directory)"
            ) from exc
        self.path = path
        self._lock = threading.Lock()
        self._seq_next = self._seq_limit = 0

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def next_seq(self) -> int:
        """The next per-device sequence number; increasing across restarts."""
        with self._lock:
            if self._seq_next >= self._seq_limit:
                row = self._db.execute(
                    "INSERT INTO counters(name, value) VALUES('seq', ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + ? RETURNING value",
                    (SEQ_BLOCK, SEQ_BLOCK),
                ).fetchone()
                self._seq_limit = int(row[0])
                self._seq_next = self._seq_limit - SEQ_BLOCK
            self._seq_next += 1
            return self._seq_next - 1

    def add(
        self,
        seq: int,
        message_id: str,
        channel: str,
        payload: bytes,
        now: float,
        fault: tuple[str, bool] | None = None,
    ) -> None:
        """Keep an event until its receipt; committed (and synced) before this returns.

        `fault` (code, raised) records in the same transaction which faults are active, so
        a restarted agent still clears a fault its previous run raised.
        """
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO outbox(seq, message_id, channel, payload, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (seq, message_id, channel, payload, now),
            )
            if fault is not None and fault[1]:
                db.execute("INSERT OR REPLACE INTO active_faults VALUES (?, ?)", (fault[0], now))
            elif fault is not None:
                db.execute("DELETE FROM active_faults WHERE code = ?", (fault[0],))

    def active_faults(self) -> set[str]:
        """Codes of the faults raised and not yet cleared (across restarts)."""
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT code FROM active_faults")}

    def due(self, now: float, limit: int) -> list[PendingEvent]:
        """Events whose (re)send time has come, oldest first."""
        if limit <= 0:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, message_id, channel, payload, attempts FROM outbox "
                "WHERE next_attempt_at <= ? ORDER BY seq LIMIT ?",
                (now, limit),
            ).fetchall()
        return [PendingEvent(*row) for row in rows]

    def in_flight(self, now: float) -> int:
        """Events sent and still within their receipt timeout."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM outbox WHERE attempts > 0 AND next_attempt_at > ?", (now,)
            ).fetchone()
        return int(row[0])

    def next_due_at(self) -> float | None:
        """When the earliest waiting event is due (for the agent's sleep)."""
        with self._lock:
            row = self._db.execute("SELECT min(next_attempt_at) FROM outbox").fetchone()
        return None if row[0] is None else float(row[0])

    def mark_sent(self, events: Iterable[PendingEvent], now: float) -> None:
        """Record an attempt; the batch is due again together if no receipt comes in time."""
        batch = list(events)
        if not batch:
            return
        retry_at = now + resend_delay(max(e.attempts for e in batch) + 1)
        with self._transaction() as db:
            db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE seq = ?",
                [(retry_at, e.seq) for e in batch],
            )

    def retry_due(self, now: float) -> bool:
        """True when some sent event's receipt is overdue."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM outbox WHERE attempts > 0 AND next_attempt_at <= ? LIMIT 1", (now,)
            ).fetchone()
        return row is not None

    def resend_all_now(self) -> None:
        """After a reconnect: everything unconfirmed goes out again, in order."""
        with self._lock:
            self._db.execute("UPDATE outbox SET next_attempt_at = 0")

    def confirm(self, message_ids: Iterable[str]) -> list[str]:
        """Forget the events the cloud has stored; returns the channels of those removed."""
        ids = list(message_ids)
        with self._transaction() as db:
            rows = db.execute(
                f"DELETE FROM outbox WHERE message_id IN ({','.join('?' * len(ids))}) "
                "RETURNING channel",
                ids,
            ).fetchall()
        return [row[0] for row in rows]

    def backlog(self, now: float) -> tuple[int, float | None]:
        """How many events wait for a receipt, and the age of the oldest (seconds)."""
        with self._lock:
            count, oldest = self._db.execute(
                "SELECT count(*), min(created_at) FROM outbox"
            ).fetchone()
        return int(count), (None if oldest is None else max(0.0, now - float(oldest)))

    def pending_ids(self) -> list[str]:
        """Message ids still waiting, oldest first (for tests and diagnostics)."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT message_id FROM outbox ORDER BY seq")]

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()
