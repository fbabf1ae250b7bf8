"""MQTT side of the agent."""
