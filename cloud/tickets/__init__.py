"""Service tickets: opened from button presses and device faults."""
