"""Broker credentials: Mosquitto password-file entries, the per-device ACL, agent credentials."""
