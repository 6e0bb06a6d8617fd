"""Intake (登记): store an accepted event with its outbox state, exactly once per key.

Idempotency rests on the database's unique constraint on ``(source_id, external_id)``, not on
a check before the insert: each event is inserted inside a savepoint, and a unique violation
turns into "the same event again" (200) or "same key, other content" (409).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from dispatcher.enums import EventStatus, TaskKind
from dispatcher.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_problems
from dispatcher.intake.ledger import next_ledger_no
from dispatcher.models import Event, Source, Task
from dispatcher.security import IdentityBox, content_hash
from dispatcher.tasks.extensions import latest_of
from events.schemas import (
    IDENTITY_FIELDS,
    ClueEvent,
    ComplaintEvent,
    EnterpriseRequestEvent,
    EventKind,
    nul_paths,
    parse_envelope,
)

Envelope = ClueEvent | ComplaintEvent | EnterpriseRequestEvent

#: Clock skew tolerated for ``received_at``; later than this is refused as "in the future".
FUTURE_SKEW = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Accepted:
    event_id: str
    ledger_no: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class IntakeContext:
    """What intake needs besides the session: the clock, secrets and policy."""

    now: datetime
    secret_key: str
    tz: ZoneInfo
    relay_after: timedelta


def parse_event(body: Any) -> Envelope:
    """One event body as the contract's envelope; ``ValidationFailed`` names every bad field."""
    bad = nul_paths(body)
    if bad:
        raise ValidationFailed(
            "the event contains NUL characters",
            details=[{"path": ".".join(map(str, p)) or "(body)", "message": "NUL character"} for p in bad],
        )
    try:
        return parse_envelope(body)
    except ValidationError as exc:
        raise ValidationFailed("the event is invalid", details=field_problems(exc.errors())) from None


def split_identity(kind: EventKind, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Payload → (payload without personal identity, the identity fields)."""
    public = dict(payload)
    identity = {name: public.pop(name) for name in IDENTITY_FIELDS[kind] if public.get(name) is not None}
    for name in IDENTITY_FIELDS[kind]:
        public.pop(name, None)
    return public, identity


def accept_event(session: Session, source: Source, envelope: Envelope, ctx: IntakeContext) -> Accepted:
    """Register one event; the caller's unit of work commits it (with its outbox state)."""
    if envelope.kind.value not in source.kind_set:
        raise Forbidden(f"source {source.name!r} may not publish {envelope.kind.value} events")
    received_at = envelope.received_at or ctx.now
    if received_at > ctx.now + FUTURE_SKEW:
        raise ValidationFailed(
            "received_at is in the future",
            details=[{"path": "received_at", "message": "must not be in the future"}],
        )
    received_at = min(received_at, ctx.now)
    payload = envelope.payload.model_dump(mode="json", exclude_none=True)
    fingerprint = content_hash(
        ctx.secret_key,
        {
            "kind": envelope.kind.value,
            "payload": payload,
            "received_at": envelope.received_at.isoformat() if envelope.received_at else None,
        },
    )

    # No look-up first: the unique constraint decides, so concurrent retries cannot both insert.
    public, identity = split_identity(envelope.kind, payload)
    savepoint = session.begin_nested()
    try:
        ledger_no = next_ledger_no(
            session, TaskKind(envelope.kind.value), received_at.astimezone(ctx.tz).year
        )
        event = Event(
            id=uuid.uuid4().hex,
            source_id=source.id,  # type: ignore[arg-type]
            external_id=envelope.external_id,
            kind=envelope.kind.value,
            ledger_no=ledger_no,
            received_at=received_at,
            accepted_at=ctx.now,
            content_hash=fingerprint,
            payload=public,
            identity_enc=IdentityBox(ctx.secret_key).seal(identity),
            status=EventStatus.accepted,
            relay_after=ctx.now + ctx.relay_after,
        )
        session.add(event)
        session.flush()
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        existing = _existing(session, source.id, envelope.external_id)
        if existing is None:  # a different constraint failed: not ours to hide
            raise
        return _duplicate(existing, fingerprint)
    return Accepted(event.id, ledger_no, duplicate=False)


def _existing(session: Session, source_id: int | None, external_id: str) -> Event | None:
    return session.exec(
        select(Event).where(Event.source_id == source_id, Event.external_id == external_id)
    ).first()


def _duplicate(existing: Event, fingerprint: str) -> Accepted:
    if existing.content_hash != fingerprint:
        raise Conflict(
            f"external_id {existing.external_id!r} was already used for event {existing.id} "
            f"({existing.ledger_no}) with different content",
            details={"event_id": existing.id, "ledger_no": existing.ledger_no},
        )
    return Accepted(existing.id, existing.ledger_no, duplicate=True)


def event_state(session: Session, source: Source, event_id: str) -> dict[str, Any]:
    """What a source may know of its own event: state, ledger number and its task once routed."""
    # The task first: it is committed together with the event's new status, so reading it
    # first can never show a task beside an event that still says "accepted".
    task = session.exec(select(Task).where(Task.event_id == event_id)).first()
    event = session.get(Event, event_id)
    if event is None or event.source_id != source.id:
        raise NotFound(f"no event {event_id}")
    if task is None and event.status != EventStatus.accepted:  # routed between our two reads
        task = session.exec(select(Task).where(Task.event_id == event_id)).first()
    extension = latest_of(session, task.id) if task is not None and task.id is not None else None
    return {
        "event_id": event.id,
        "external_id": event.external_id,
        "kind": event.kind,
        "ledger_no": event.ledger_no,
        "status": event.status,
        "received_at": event.received_at.isoformat(),
        "accepted_at": event.accepted_at.isoformat(),
        "task": None
        if task is None
        else {
            "id": task.id,
            "status": task.status,
            "handler_unit": task.handler_unit,
            "verifier_unit": task.verifier_unit,
            "rule": task.rule,
            "dispatched_at": task.dispatched_at.isoformat() if task.dispatched_at else None,
            #: The requester is told of deadlines moved by an extension (延期): the current deadline…
            "resolve_due_at": task.resolve_due_at.isoformat() if task.resolve_due_at else None,
            #: …and the latest extension's length and decision (not its reason: that is internal).
            "extension": None
            if extension is None
            else {
                "days": extension.days,
                "status": extension.status,
                "decided_at": extension.decided_at.isoformat() if extension.decided_at else None,
            },
        },
    }
