"""Working a task: every move goes through ``apply_move`` (DESIGN §6, §8).

The guarded write (``tasks.guard``) checks visibility, role and unit, recusal and the version the
actor read; then the lifecycle allows the move now (``IllegalMove``), and the body carries what
the move needs (``ValidationFailed``). A move's effects are its column changes, the clocks it
starts, pauses or stops (``supervision.clocks.clock_changes``), its history note and the units
it notifies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from dispatcher.enums import TaskStatus as S
from dispatcher.errors import Conflict, Forbidden, ValidationFailed
from dispatcher.models import Event, Task
from dispatcher.notify.inbox import add_notification
from dispatcher.org.model import Org
from dispatcher.routing.conflict import default_verifier, designation_refusal
from dispatcher.supervision.clocks import clock_changes
from dispatcher.supervision.policy import TimePolicy
from dispatcher.tasks import guard
from dispatcher.tasks.access import Actor, may
from dispatcher.tasks.lifecycle import Move, next_status
from dispatcher.tasks.outcomes import validate_feedback, validate_outcome

#: A unit may return a wrongly routed task within this many working days of dispatch (DESIGN §1).
RETURN_WINDOW_WORKDAYS = 5


@dataclass(frozen=True, slots=True)
class MoveRequest:
    """The body of a move (``reason``, ``note``, ``outcome``, ``unit``…) and the version the actor saw."""

    move: Move
    reason: str | None = None
    note: str | None = None
    outcome: Any = None
    unit: str | None = None
    verifier_unit: str | None = None
    units: tuple[str, ...] = ()
    logins: tuple[str, ...] = ()
    feedback: Any = None
    version: int | None = None


def _required(value: str | None, what: str) -> str:
    if value is None or not value.strip():
        raise ValidationFailed(f"{what} is required", details=[{"path": what, "message": "required"}])
    return value.strip()


def apply_move(
    session: Session,
    actor: Actor,
    task_id: int,
    request: MoveRequest,
    *,
    now: datetime,
    org: Org | None,
    policy: TimePolicy,
) -> Task:
    """Make one move; the caller's unit of work commits it with its history and notifications."""
    move = request.move
    task = guard.get_task(session, actor, task_id)
    guard.check(
        actor, task, permitted=may(actor, task, move),
        refusal=f"a {actor.role} of {actor.unit or 'no unit'} may not {move.value} this task",
    )  # fmt: skip
    seen = guard.seen_version(task, request.version)
    resume_to = S(task.suspended_from) if task.suspended_from else None
    target = next_status(S(task.status), move, kind=task.kind, resume_to=resume_to)

    changes, note, notify = _effects(session, actor, task, request, target, now=now, org=org, policy=policy)
    redispatched = move in (Move.designate, Move.route)
    changes.update(clock_changes(session, task, target, now=now, policy=policy, redispatched=redispatched))
    guard.write(
        session, task, seen, changes, actor=actor, move=move.value, to_status=target, note=note, now=now
    )
    for unit, kind, message in notify:
        add_notification(session, org, unit_code=unit, task=task, kind=kind, message=message, now=now)
    return task


def _effects(
    session: Session,
    actor: Actor,
    task: Task,
    request: MoveRequest,
    target: S,
    *,
    now: datetime,
    org: Org | None,
    policy: TimePolicy,
) -> tuple[dict[str, Any], str, list[tuple[str, str, str]]]:
    """Column changes, the history note and notifications (unit, kind, message) of a legal move."""
    move = request.move
    changes: dict[str, Any] = {}
    notify: list[tuple[str, str, str]] = []
    note = (request.note or request.reason or "").strip()

    if move is Move.accept:
        changes.update(handler_login=actor.login, accepted_at=now)
    elif move is Move.return_:
        note = _required(request.reason, "reason")
        dispatched = (task.dispatched_at or task.created_at).astimezone(policy.tz).date()
        used = policy.work_calendar().workdays_after(dispatched, now.astimezone(policy.tz).date())
        if used > RETURN_WINDOW_WORKDAYS:
            raise Conflict(
                f"a task may be returned within {RETURN_WINDOW_WORKDAYS} working days of dispatch; "
                f"{used} have passed",
                details={"current": task.status, "workdays_since_dispatch": used},
            )
        changes.update(handler_login=None)
        if org is not None and task.zone_code in org.zones_by_code:
            room = org.zones_by_code[task.zone_code].room
            notify.append((room, "returned", f"{task.ledger_no} 被{task.handler_unit}退回: {note}"))
    elif move is Move.progress:
        note = _required(request.note, "note")
    elif move is Move.submit:
        changes.update(outcome=validate_outcome(task.kind, request.outcome), submitted_at=now)
    elif move is Move.verify:
        changes.update(verified_at=now)
        if target is S.closed:
            changes.update(closed_at=now, close_reason="verified")
        else:
            changes.update(feedback_due_at=policy.feedback_due(task.kind, now))
    elif move is Move.reject:
        note = _required(request.reason, "reason")
        if task.handler_unit:
            notify.append((task.handler_unit, "rejected", f"{task.ledger_no} 验单不通过: {note}"))
    elif move in (Move.feedback_close, Move.feedback_reopen):
        feedback = validate_feedback(request.feedback)
        # The rating is the move (feedback_reopen: unsatisfied) or the close reason; the note keeps
        # the requester's own words.
        note = feedback.comment or ""
        changes.update(feedback_rating=feedback.rating, feedback_due_at=None)
        if target is S.closed:
            changes.update(closed_at=now, close_reason=feedback.rating)
        elif task.handler_unit:
            notify.append((task.handler_unit, "reopened", f"{task.ledger_no} 回访不满意，重新办理"))
    elif move is Move.feedback_expire:
        note = "回访期满未答复，按无回复办结"
        changes.update(closed_at=now, close_reason="no_response", feedback_due_at=None)
    elif move is Move.suspend:
        note = _required(request.reason, "reason")
        changes.update(suspended_from=task.status)
    elif move is Move.resume:
        changes.update(suspended_from=None)
    elif move in (Move.designate, Move.route):
        note = _required(request.reason, "reason")
        unit = _required(request.unit, "unit")
        changes.update(_reassign(session, task, unit, request.verifier_unit, org=org))
        changes.update(handler_login=None, accepted_at=None, dispatched_at=now, suspended_from=None)
        kind = "designated" if move is Move.designate else "dispatched"
        notify.append(
            (
                unit,
                kind,
                f"{task.ledger_no} {'指定由贵单位办理' if move is Move.designate else '已分办'}: {note}",
            )
        )
    elif move is Move.co_handle:
        note = _required(request.reason, "reason")
        units, logins = _known(org, request.units, request.logins)
        changes.update(
            assisting_units=sorted({*task.assisting_units, *units}),
            assisting_logins=sorted({*task.assisting_logins, *logins}),
        )
        note = f"增派协助 {', '.join([*units, *logins])}: {note}"
        staff_units = {s.login: s.unit for s in org.staff} if org is not None else {}
        helped = dict.fromkeys([*units, *(staff_units[x] for x in logins if x in staff_units)])
        notify += [(u, "assist", f"{task.ledger_no} 请协助办理: {request.reason}") for u in helped]
    return changes, note, notify


def _known(org: Org | None, units: Iterable[str], logins: Iterable[str]) -> tuple[list[str], list[str]]:
    units, logins = list(units), list(logins)
    if not units and not logins:
        raise ValidationFailed(
            "name at least one unit or login to assist", details=[{"path": "units", "message": "empty"}]
        )
    if org is not None:
        bad = [u for u in units if u not in org.units_by_code]
        bad += [login for login in logins if login not in {s.login for s in org.staff}]
        if bad:
            raise ValidationFailed(
                f"unknown: {', '.join(bad)}", details=[{"path": "units", "message": "unknown"}]
            )
    return units, logins


def _reassign(
    session: Session, task: Task, unit: str, verifier: str | None, *, org: Org | None
) -> dict[str, Any]:
    """指定办案 / 分办: a new handling unit, still subject to rule 5 (回避)."""
    if org is None or unit not in org.units_by_code:
        raise ValidationFailed(
            f"unknown unit {unit!r}", details=[{"path": "unit", "message": "unknown unit"}]
        )
    event = session.get(Event, task.event_id) if task.event_id else None
    payload = event.payload if event is not None else {}
    refusal = designation_refusal(task.kind, payload, org, unit, verifier)
    if refusal:
        raise Forbidden(refusal)
    target = org.units_by_code[unit]
    zone = task.zone_code or target.zone
    chosen_verifier = verifier or task.verifier_unit or default_verifier(task.kind, org, zone, unit)
    return {"handler_unit": unit, "verifier_unit": chosen_verifier, "zone_code": zone}
