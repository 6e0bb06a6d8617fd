"""The error hierarchy: one root, one subclass per kind of refusal.

The HTTP layer maps each class to a status code and the CLI to an exit code, so the core
raises domain errors and never thinks about transports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dispatcher.enums import EVENT_KINDS


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


def field_problems(errors: Iterable[Mapping[str, Any]], *, prefix: str = "") -> list[dict[str, str]]:
    """Validation errors (pydantic's ``.errors()``) as ``{"path": "payload.subject.name", "message"}``.

    The tag of a discriminated union is not a field: it is dropped from paths, and a missing or
    unknown tag is reported on ``kind``.
    """
    out = []
    for err in errors:
        loc = [str(p) for p in err["loc"] if p != "[key]"]  # a bad dict key is reported on the key
        if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            loc = [*loc, "kind"]
        elif loc and loc[0] in EVENT_KINDS:  # the envelope's tag (``kind``) is not a field
            loc = loc[1:]
        path = ".".join(p for p in [prefix, *loc] if p)
        out.append({"path": path or "(body)", "message": err["msg"]})
    return out
