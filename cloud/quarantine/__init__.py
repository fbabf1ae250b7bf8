"""Quarantine: rejected input kept for operators, with the reason."""
