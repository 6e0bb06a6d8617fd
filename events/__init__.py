"""The event contract (envelope and payloads of the three kinds) and the publishing client."""

from events.client import DispatchClient, PublishError, PublishResult
from events.schemas import (
    ClueEvent,
    CluePayload,
    ComplaintEvent,
    ComplaintPayload,
    EnterpriseRequestEvent,
    EnterpriseRequestPayload,
    EventEnvelope,
    EventKind,
    parse_envelope,
)

__all__ = [
    "ClueEvent",
    "CluePayload",
    "ComplaintEvent",
    "ComplaintPayload",
    "DispatchClient",
    "EnterpriseRequestEvent",
    "EnterpriseRequestPayload",
    "EventEnvelope",
    "EventKind",
    "PublishError",
    "PublishResult",
    "parse_envelope",
]
