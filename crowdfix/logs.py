"""Logging set-up for every crowdfix process: readable text, or one JSON object per line."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    """One JSON object per record, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(level: str | None = None, fmt: str | None = None) -> None:
    """Configure the root logger from arguments or CROWDFIX_LOG_LEVEL / CROWDFIX_LOG_FORMAT."""
    level = (level or os.environ.get("CROWDFIX_LOG_LEVEL") or "INFO").upper()
    fmt = fmt or os.environ.get("CROWDFIX_LOG_FORMAT") or "text"
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every migration step at INFO; crowdfix logs the outcome itself.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
