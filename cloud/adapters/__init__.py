"""Adapters to the outside world: MQTT (and later InfluxDB and notifications)."""
