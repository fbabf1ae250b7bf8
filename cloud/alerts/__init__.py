"""Operator alerts: escalations and on-site clocks running out, told once each."""
