"""Device registry and presence."""
