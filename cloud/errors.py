"""One error tree for the cloud; the API turns these into HTTP errors in one handler."""


class CloudError(Exception):
    """Root of every error the cloud raises on purpose."""


class ConfigError(CloudError, ValueError):
    """Settings are missing or unsafe; the message says which and what to do."""


class NotFound(CloudError, LookupError):
    """The requested thing does not exist."""


class Conflict(CloudError, ValueError):
    """The request clashes with the current state (e.g. an illegal ticket transition)."""


class Invalid(CloudError, ValueError):
    """The request names something that does not exist here (e.g. a skill nobody has)."""


class Unauthorized(CloudError, PermissionError):
    """No valid credentials: log in or send a bearer token."""


class Forbidden(CloudError, PermissionError):
    """Valid credentials, but this role may not do that."""


class TooManyAttempts(CloudError, PermissionError):
    """Too many failed logins: wait and try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
