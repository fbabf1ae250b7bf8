"""The crowdfix edge agent: help buttons and device health on a Raspberry Pi, over MQTT."""

__version__ = "0.1.0"
