"""SQLite state of the agent: the per-device sequence number survives restarts."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from edge_agent.errors import SettingsError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class AgentStore:
    """One SQLite file (WAL) per device; safe to share between the agent's threads."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise SettingsError(
                f"cannot open the agent state file {path}: {exc} "
                "(set --state-dir / CROWDFIX_AGENT_STATE_DIR to a writable directory)"
            ) from exc
        self._lock = threading.Lock()

    def next_seq(self) -> int:
        """The next per-device sequence number, durably allocated."""
        with self._lock:
            row = self._db.execute(
                "INSERT INTO counters(name, value) VALUES('seq', 0) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value"
            ).fetchone()
            return int(row[0])

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()
