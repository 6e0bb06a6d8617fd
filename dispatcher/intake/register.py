"""Intake (登记): store an accepted event with its outbox state, exactly once per key.

Idempotency rests on the database's unique constraint on ``(source_id, external_id)``, not on
a check before the insert: a request's events are inserted together, and a unique violation
runs the transaction again, this time reading the stored keys first, which turns each taken key
into "the same event again" (200) or "same key, other content" (409).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from dispatcher.enums import EventStatus, TaskKind
from dispatcher.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_problems
from dispatcher.intake.ledger import lock_ledger, next_ledger_nos
from dispatcher.models import Event, Source, Task
from dispatcher.security import IdentityBox, content_hash, person_key
from dispatcher.tasks.extensions import latest_of
from events.schemas import (
    EARLIEST_RECEIVED_YEAR,
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


def split_identity(
    kind: EventKind, payload: dict[str, Any], model: BaseModel | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Payload → (payload without personal identity, the identity fields), for encryption.

    The identity objects (reporter, complainant, contact) go whole, whatever their fields. So do
    the fields the contract does not declare (DESIGN §4 welcomes more optional fields, but nobody
    can tell whether ``id_card`` or ``home_address`` is personal): given the parsed ``model``,
    every undeclared field, at the top or inside ``subject`` or ``enterprise``, moves to
    ``identity["extra"]`` under its path, encrypted at rest and masked in every view like the rest.
    """
    public = dict(payload)
    identity = {name: public.pop(name) for name in IDENTITY_FIELDS[kind] if public.get(name) is not None}
    for name in IDENTITY_FIELDS[kind]:
        public.pop(name, None)
    if model is None:
        return public, identity
    extra: dict[str, Any] = {}
    for name in list(model.model_extra or {}):
        if name in public:
            extra[name] = public.pop(name)
    for name, value in model:
        inner = getattr(value, "model_extra", None)
        if name in IDENTITY_FIELDS[kind] or not inner or not isinstance(public.get(name), dict):
            continue
        public[name] = dict(public[name])
        for key in inner:
            if key in public[name]:
                extra[f"{name}.{key}"] = public[name].pop(key)
    if extra:
        identity["extra"] = extra
    return public, identity


def subject_keys(kind: str, payload: dict[str, Any], secret_key: str) -> tuple[str | None, str | None]:
    """廉政档案: keyed hashes of who and which unit an item is about (a clue's subject; a complaint's
    unit), so that earlier items about the same person or unit are found without storing a name."""
    if kind == EventKind.clue:
        subject = payload.get("subject") or {}
        name, unit = subject.get("name"), subject.get("unit")
        person = person_key(secret_key, f"{name}|{unit or ''}") if name else None
        return person, person_key(secret_key, f"unit:{unit}") if unit else None
    if kind == EventKind.complaint and payload.get("about_unit"):
        return None, person_key(secret_key, f"unit:{payload['about_unit']}")
    return None, None


@dataclass(frozen=True, slots=True)
class Prepared:
    """One envelope checked and made ready to store (fingerprint, identity sealed, ledger key)."""

    envelope: Envelope
    event: Event
    kind: TaskKind
    year: int


def prepare_event(source: Source, envelope: Envelope, ctx: IntakeContext, box: IdentityBox) -> Prepared:
    """Check one envelope against its source and the clock; ``Forbidden`` or ``ValidationFailed``."""
    if envelope.kind.value not in source.kind_set:
        raise Forbidden(f"source {source.name!r} may not publish {envelope.kind.value} events")
    received_at = envelope.received_at or ctx.now
    if received_at > ctx.now + FUTURE_SKEW:
        raise ValidationFailed(
            "received_at is in the future",
            details=[{"path": "received_at", "message": "must not be in the future"}],
        )
    received_at = min(received_at, ctx.now)
    year = received_at.astimezone(ctx.tz).year
    if year < EARLIEST_RECEIVED_YEAR:  # its ledger year would be 1999
        raise ValidationFailed(
            f"received_at falls before {EARLIEST_RECEIVED_YEAR} in {ctx.tz.key}",
            details=[{"path": "received_at", "message": f"must not be before {EARLIEST_RECEIVED_YEAR}"}],
        )
    payload = envelope.payload.model_dump(mode="json", exclude_none=True)
    fingerprint = content_hash(
        ctx.secret_key,
        {
            "kind": envelope.kind.value,
            "payload": payload,
            "received_at": envelope.received_at.isoformat() if envelope.received_at else None,
        },
    )
    public, identity = split_identity(envelope.kind, payload, envelope.payload)
    subject_key, subject_unit_key = subject_keys(envelope.kind.value, public, ctx.secret_key)
    event = Event(
        subject_key=subject_key,
        subject_unit_key=subject_unit_key,
        id=uuid.uuid4().hex,
        source_id=source.id,  # type: ignore[arg-type]
        external_id=envelope.external_id,
        kind=envelope.kind.value,
        ledger_no="",  # numbered when stored
        received_at=received_at,
        accepted_at=ctx.now,
        content_hash=fingerprint,
        payload=public,
        identity_enc=box.seal(identity),
        status=EventStatus.accepted,
        relay_after=ctx.now + ctx.relay_after,
    )
    return Prepared(envelope, event, TaskKind(envelope.kind.value), year)


class KeyTaken(Exception):
    """A concurrent request stored one of these keys first: run the transaction again, looking."""


def store_events(
    session: Session, source: Source, prepared: Sequence[Prepared], *, look_up: bool
) -> list[Accepted | Conflict]:
    """Store checked events in one go: one upsert per (kind, year) for their ledger numbers, one
    multi-row INSERT; the caller's unit of work commits them (with their outbox state).

    ``(source_id, external_id)`` is unique in the database, and that constraint decides. With
    ``look_up`` false nothing is read first (the usual case: keys are new); if a key turns out to
    be taken the INSERT fails and ``KeyTaken`` asks for the whole transaction again with
    ``look_up``, which reads the stored keys first and answers duplicates (same content: 200) and
    conflicts (other content: 409). A key repeated inside one batch is a duplicate of its first.
    """
    keys = [p.envelope.external_id for p in prepared]
    stored: dict[str, Event] = {}
    counters = sorted({(p.kind, p.year) for p in prepared}, key=lambda k: (k[0].ledger_prefix, k[1]))
    if look_up:
        # Hold the counters first: a request storing the same events holds them until it commits,
        # so the look-up below sees its rows instead of racing it (issue 13 review).
        for kind, year in counters:
            lock_ledger(session, kind, year)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            stored.update(
                (e.external_id, e)
                for e in session.exec(
                    select(Event).where(Event.source_id == source.id, col(Event.external_id).in_(chunk))
                )
            )
    fresh: dict[str, Prepared] = {}
    for p in prepared:
        if p.envelope.external_id not in stored:
            fresh.setdefault(p.envelope.external_id, p)
    groups: dict[tuple[TaskKind, int], list[Prepared]] = {}
    for p in fresh.values():
        groups.setdefault((p.kind, p.year), []).append(p)
    for kind, year in sorted(groups, key=lambda k: (k[0].ledger_prefix, k[1])):  # one lock order for all
        group = groups[(kind, year)]
        for p, number in zip(group, next_ledger_nos(session, kind, year, len(group)), strict=True):
            p.event.ledger_no = number
    # In key order: two requests inserting the same keys then wait for each other, never cross.
    session.add_all([fresh[key].event for key in sorted(fresh)])
    try:
        session.flush()
    except IntegrityError as exc:  # a key was taken (before us, or between our look-up and now)
        raise KeyTaken() from exc
    results: list[Accepted | Conflict] = []
    for p in prepared:
        key = p.envelope.external_id
        if key in stored:
            results.append(_duplicate(stored[key], p.event.content_hash))
        elif fresh[key] is p:
            results.append(Accepted(p.event.id, p.event.ledger_no, duplicate=False))
        else:
            results.append(_duplicate(fresh[key].event, p.event.content_hash))
    return results


def accept_event(session: Session, source: Source, envelope: Envelope, ctx: IntakeContext) -> Accepted:
    """Register one event (looking up its key first); the caller's unit of work commits it."""
    prepared = prepare_event(source, envelope, ctx, IdentityBox(ctx.secret_key))
    [result] = store_events(session, source, [prepared], look_up=True)
    if isinstance(result, Conflict):
        raise result
    return result


def _duplicate(existing: Event, fingerprint: str) -> Accepted | Conflict:
    if existing.content_hash != fingerprint:
        return Conflict(
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
            #: Once verified, what the requester is to be told (before they are asked for satisfaction).
            "reply": (task.outcome or {}).get("reply") if task.verified_at is not None else None,
            "verified_at": task.verified_at.isoformat() if task.verified_at else None,
            "acknowledgement": _acknowledgement(task),
        },
    }


def _acknowledgement(task: Task) -> dict[str, Any] | None:
    """受理告知 owed to a named reporter of a clue: by when, and once given, the words to pass on."""
    if task.acknowledge_due_at is None:
        return None
    given = task.acknowledged_at
    text = None
    if given is not None:
        text = (
            f"您实名反映的问题线索（{task.ledger_no}）已按规定移送上级纪委监委处理。"
            if task.stage == "referral"
            else f"您实名反映的问题线索（{task.ledger_no}）已受理，将依规依纪依法处置。"
        )
    return {
        "due_at": task.acknowledge_due_at.isoformat(),
        "acknowledged_at": given.isoformat() if given else None,
        "message": text,
    }


def backfill_subject_keys(session: Session, secret_key: str, *, batch: int = 1000) -> int:
    """Give events stored before subject keys existed theirs (run after migrating; needs the key)."""
    done, last = 0, ""
    while True:
        rows = session.exec(
            select(Event)
            .where(
                col(Event.kind).in_([EventKind.clue.value, EventKind.complaint.value]),
                col(Event.subject_key).is_(None),
                col(Event.subject_unit_key).is_(None),
                col(Event.id) > last,
            )
            .order_by(col(Event.id))
            .limit(batch)
        ).all()
        if not rows:
            return done
        for event in rows:
            event.subject_key, event.subject_unit_key = subject_keys(event.kind, event.payload, secret_key)
            session.add(event)
        last, done = rows[-1].id, done + len(rows)
        session.flush()
