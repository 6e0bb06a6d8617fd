"""The error hierarchy: one root, one subclass per kind of refusal.

The HTTP layer maps each class to a status code and the CLI to an exit code, so the core
raises domain errors and never thinks about transports.
"""

from __future__ import annotations

from typing import Any


class DispatchError(Exception):
    """Root of every error the system raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(DispatchError):
    """Settings, org or policy are invalid."""

    code = "config_error"


class NotFound(DispatchError):
    code = "not_found"


class Conflict(DispatchError):
    """The request contradicts what is stored (same key, other content; illegal move)."""

    code = "conflict"


class Forbidden(DispatchError):
    code = "forbidden"


class Unauthorized(DispatchError):
    code = "unauthorized"


class ValidationFailed(DispatchError):
    code = "validation_error"


class RateLimited(DispatchError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class Unavailable(DispatchError):
    """A backing service (database) cannot be reached; the caller should retry."""

    code = "unavailable"
