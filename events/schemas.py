"""Envelope and payload schemas of the three event kinds (DESIGN §4).

Shared by the server (validation) and the client (typed publishing). Unknown optional fields
are kept (``extra="allow"``): upstream systems may send more than the contract requires.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, TypeAdapter


class EventKind(StrEnum):
    clue = "clue"  #: 问题线索
    complaint = "complaint"  #: 群众投诉
    enterprise_request = "enterprise_request"  #: 企业诉求


#: Nothing upstream predates this; earlier times are typing errors (and overflow in UTC).
EARLIEST_RECEIVED_YEAR = 2000


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a UTC offset, e.g. 2026-03-01T09:30:00+08:00")
    if value.year < EARLIEST_RECEIVED_YEAR:
        raise ValueError(f"must not be before {EARLIEST_RECEIVED_YEAR}")
    return value


#: Unicode's White_Space characters, what pydantic's own stripping removes (``str.strip()`` would
#: also remove the separators U+001C–U+001F, changing which texts are accepted and their hashes).
_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)


def _strip(value: Any) -> Any:
    """Surrounding whitespace goes before the length checks (anything but a string is left to
    the type check). Done here, not with ``str_strip_whitespace``: pydantic-core 2.50 keeps a
    piece of every distinct string it strips that way, so a server's memory grew ~130 bytes per
    event without end (found by ``bench.memory``, issue 13)."""
    return value.strip(_WHITESPACE) if isinstance(value, str) else value


Stripped = BeforeValidator(_strip)
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
# The constraints first, then the validator: pydantic runs a before-validator ahead of them
# either way, and this order keeps the string checks (and their messages, "String should have
# at least 1 character") rather than generic length checks.
Text = Annotated[str, Field(min_length=1, max_length=200), Stripped]
LongText = Annotated[str, Field(min_length=1, max_length=20_000), Stripped]
Phone = Annotated[str, Field(min_length=3, max_length=32), Stripped]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Subject(_Model):
    """被反映人: the person a clue is about."""

    name: Text
    position: Text | None = None
    unit: Text | None = None
    rank: Literal["village", "township", "county"]


class Person(_Model):
    """Identity of a reporter, complainant or enterprise contact: encrypted at rest."""

    name: Text | None = None
    phone: Phone | None = None


class Reporter(Person):
    #: JSON ``true``/``false`` only: anonymity protects a reporter, so ``0``, ``"no"`` or ``"否"``
    #: are refused (422) rather than guessed.
    anonymous: StrictBool = False


class Enterprise(_Model):
    name: Text
    credit_code: Annotated[str, Field(min_length=1, max_length=32), Stripped] | None = None


class CluePayload(_Model):
    township: Text
    village: Text | None = None
    subject: Subject
    category: Text
    summary: LongText
    severity: Literal["normal", "serious"] = "normal"
    reporter: Reporter | None = None


class ComplaintPayload(_Model):
    township: Text
    village: Text | None = None
    category: Text
    summary: LongText
    channel: Literal["online", "station", "hotline"] | None = None
    complainant: Person | None = None
    about_unit: Text | None = None
    #: Rank of the official complained about, when the platform knows it (optional, beyond DESIGN §4).
    about_rank: Literal["village", "township", "county"] | None = None
    severity: Literal["normal", "major"] = "normal"


class EnterpriseRequestPayload(_Model):
    enterprise: Enterprise
    category: Text
    summary: LongText
    township: Text | None = None
    park: Text | None = None
    contact: Person | None = None


#: The payload model of each kind (the fields the contract declares).
PAYLOAD_MODELS: dict[EventKind, type[BaseModel]] = {
    EventKind.clue: CluePayload,
    EventKind.complaint: ComplaintPayload,
    EventKind.enterprise_request: EnterpriseRequestPayload,
}

ExternalId = Annotated[str, Field(min_length=1, max_length=128)]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: ExternalId
    received_at: AwareDatetime | None = None


class ClueEvent(_Envelope):
    kind: Literal[EventKind.clue] = EventKind.clue
    payload: CluePayload


class ComplaintEvent(_Envelope):
    kind: Literal[EventKind.complaint] = EventKind.complaint
    payload: ComplaintPayload


class EnterpriseRequestEvent(_Envelope):
    kind: Literal[EventKind.enterprise_request] = EventKind.enterprise_request
    payload: EnterpriseRequestPayload


EventEnvelope = Annotated[ClueEvent | ComplaintEvent | EnterpriseRequestEvent, Field(discriminator="kind")]
_envelope_adapter: TypeAdapter[ClueEvent | ComplaintEvent | EnterpriseRequestEvent] = TypeAdapter(
    EventEnvelope
)

#: Payload fields that identify a person; they are split off and encrypted before storage.
IDENTITY_FIELDS: dict[EventKind, tuple[str, ...]] = {
    EventKind.clue: ("reporter",),
    EventKind.complaint: ("complainant",),
    EventKind.enterprise_request: ("contact",),
}


def nul_paths(data: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Paths of every string (key or value) holding a NUL character, which databases refuse."""
    if isinstance(data, str):
        return [path] if "\x00" in data else []
    if isinstance(data, dict):
        found = [(*path, str(k)) for k in data if isinstance(k, str) and "\x00" in k]
        for key, value in data.items():
            found += nul_paths(value, (*path, key))
        return found
    if isinstance(data, list):
        return [p for i, item in enumerate(data) for p in nul_paths(item, (*path, i))]
    return []


def parse_envelope(data: Any) -> ClueEvent | ComplaintEvent | EnterpriseRequestEvent:
    """Validate one event body; raises ``pydantic.ValidationError`` naming every bad field."""
    return _envelope_adapter.validate_python(data)
