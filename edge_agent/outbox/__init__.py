"""The agent's durable state on the Pi's disk (SQLite)."""
