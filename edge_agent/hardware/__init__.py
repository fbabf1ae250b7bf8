"""GPIO side of the agent: the only place gpiozero is imported."""
