"""Turning validated device messages into state: devices, tickets, telemetry."""
