"""Telemetry: latest values and a short recent window in SQL; history in InfluxDB."""
