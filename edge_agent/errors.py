"""One error tree for the edge agent; each error is also the builtin it behaves like."""


class EdgeAgentError(Exception):
    """Root of every error the edge agent raises on purpose."""


class ProfileError(EdgeAgentError, ValueError):
    """A device profile file is missing, unreadable or invalid; the message names file and field."""


class SettingsError(EdgeAgentError, ValueError):
    """The agent's own settings (device id, broker, state directory) are invalid."""


class HardwareError(EdgeAgentError, RuntimeError):
    """GPIO could not be set up (wrong pin factory, pin in use, no permission)."""
