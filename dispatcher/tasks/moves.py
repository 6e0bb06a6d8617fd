"""Working a task: every move goes through ``apply_move`` (DESIGN §6, §8).

Checks, in order: the task exists and the actor may see it (else ``NotFound``: another unit's
task is not even acknowledged), the actor's role and unit may make this move (``Forbidden``),
the actor is not recused (回避, ``Forbidden``), the task has not changed since the actor read
it (``Conflict``), the lifecycle allows the move now (``IllegalMove``), and the body carries
what the move needs (``ValidationFailed``). The update itself is conditional on the version
read, so of two people acting at once exactly one wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dispatcher.errors import Conflict, Forbidden, NotFound, ValidationFailed
from dispatcher.models import Event, Notification, Task, TaskHistory, User
from dispatcher.models import TaskStatus as S
from dispatcher.org.model import Org
from dispatcher.routing.rules import default_verifier, designation_refusal
from dispatcher.supervision.clocks import clock_changes
from dispatcher.supervision.deadlines import due_at
from dispatcher.supervision.policy import DEFAULT_POLICY, TimePolicy
from dispatcher.tasks.lifecycle import Move, next_status
from dispatcher.tasks.outcomes import validate_feedback, validate_outcome

RATING_LABELS = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}

#: A unit may return a wrongly routed task within this many working days of dispatch (DESIGN §1).
RETURN_WINDOW_WORKDAYS = 5

#: Moves a handler of the handling unit makes.
HANDLER_MOVES = frozenset({Move.accept, Move.return_, Move.progress, Move.submit, Move.suspend, Move.resume})
VERIFIER_MOVES = frozenset({Move.verify, Move.reject})
LEADER_MOVES = frozenset({Move.designate, Move.co_handle, Move.route})
#: Moves only the requester's platform or the system makes (not through the staff API).
REQUESTER_MOVES = frozenset({Move.feedback_close, Move.feedback_reopen, Move.feedback_expire})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a staff member, a source (the requester's platform) or the system."""

    login: str
    role: str
    unit: str | None = None
    #: Zones this person leads (协作区组长).
    zones: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, user: User, org: Org | None) -> Actor:
        zones: set[str] = set()
        if org is not None and user.role == "zone_leader":
            zones = {z.code for z in org.zones if user.login in z.leaders}
            unit = org.units_by_code.get(user.unit_code)
            if unit is not None and unit.zone:
                zones.add(unit.zone)
        return cls(login=user.login, role=user.role, unit=user.unit_code, zones=frozenset(zones))

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(login=f"system:{name}", role="system")

    @property
    def sees_everything(self) -> bool:
        return self.role in ("admin", "oncall", "system")


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


@dataclass(frozen=True, slots=True)
class Policy:
    """What the moves need from settings and the time-limit policy file."""

    tz: ZoneInfo
    #: A fixed feedback window overriding the policy's feedback clock (``None``: the policy decides).
    feedback_window: timedelta | None
    time: TimePolicy = DEFAULT_POLICY

    def feedback_due(self, kind: str, now: datetime) -> datetime:
        """When an unanswered feedback request closes the task (回访期)."""
        if self.feedback_window is not None:
            return now + self.feedback_window
        clocks = self.time.clocks.get(kind)  # type: ignore[call-overload]
        spec = clocks.feedback if clocks is not None else None
        if spec is None:
            return now + timedelta(days=7)
        return due_at(now, spec.clock, self.time.frame())


def can_see(actor: Actor, task: Task) -> bool:
    if actor.sees_everything or actor.role == "source":  # a source reaches a task only through its own event
        return True
    if actor.login in task.assisting_logins:  # 增派人员: staff a zone leader added by name
        return True
    if actor.role == "zone_leader":
        return task.zone_code in actor.zones
    return actor.unit is not None and (
        actor.unit in (task.handler_unit, task.verifier_unit) or actor.unit in task.assisting_units
    )


def visible(actor: Actor) -> Any:
    """The SQL condition matching the tasks ``actor`` may see (mirror of ``can_see``)."""
    if actor.sees_everything:
        return sa.true()
    # Assisting units and logins are JSON lists: match the quoted code inside (portable across backends).
    named = sa.cast(Task.assisting_logins, sa.String).contains(f'"{actor.login}"', autoescape=True)
    if actor.role == "zone_leader":
        return sa.or_(col(Task.zone_code).in_(sorted(actor.zones)), named)
    unit = actor.unit or ""
    return sa.or_(
        col(Task.handler_unit) == unit,
        col(Task.verifier_unit) == unit,
        sa.cast(Task.assisting_units, sa.String).contains(f'"{unit}"', autoescape=True),
        named,
    )


def get_task(session: Session, actor: Actor, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None or not can_see(actor, task):
        raise NotFound(f"no task {task_id}")
    return task


def _may(actor: Actor, task: Task, move: Move) -> bool:
    if actor.role == "system":
        return True
    if move in REQUESTER_MOVES:
        return actor.role == "source"
    if move in LEADER_MOVES:
        if actor.role == "admin":
            return True
        if move is Move.route and actor.role == "oncall":
            return True
        return actor.role == "zone_leader" and task.zone_code in actor.zones
    if move in VERIFIER_MOVES:
        return actor.role == "verifier" and actor.unit == task.verifier_unit
    if move is Move.progress and actor.role == "handler":
        return (
            actor.unit == task.handler_unit
            or actor.unit in task.assisting_units
            or actor.login in task.assisting_logins
        )
    return actor.role == "handler" and actor.unit == task.handler_unit


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
    policy: Policy,
) -> Task:
    """Make one move; the caller's unit of work commits it with its history and notifications."""
    task = session.get(Task, task_id)
    if task is None or not can_see(actor, task):
        raise NotFound(f"no task {task_id}")
    move = request.move
    if not _may(actor, task, move):
        raise Forbidden(f"a {actor.role} of {actor.unit or 'no unit'} may not {move.value} this task")
    if actor.login in task.recused_logins:
        raise Forbidden(f"{actor.login} is recused from this task (回避)")
    seen = request.version if request.version is not None else task.version
    if seen != task.version:
        raise Conflict(
            f"task {task_id} changed since you read it (version {seen}, now {task.version}); reload it",
            details={"current": task.status, "version": task.version},
        )
    current = S(task.status)
    resume_to = S(task.suspended_from) if task.suspended_from else None
    target = next_status(current, move, kind=task.kind, resume_to=resume_to)

    changes, note, notify = _effects(session, actor, task, request, target, now=now, org=org, policy=policy)
    redispatched = move in (Move.designate, Move.route)
    changes.update(
        clock_changes(session, task, target.value, now=now, policy=policy.time, redispatched=redispatched)
    )
    changes.update(status=target.value, updated_at=now, version=task.version + 1)
    table = Task.__table__  # type: ignore[attr-defined]
    done = session.execute(
        sa.update(table).where(table.c.id == task.id, table.c.version == task.version).values(**changes)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"task {task_id} was changed by someone else at the same time; reload it")
    session.add(
        TaskHistory(
            task_id=task_id, at=now, actor=actor.login, move=move.value, from_status=current.value,
            to_status=target.value, note=note,
        )
    )  # fmt: skip
    session.expire(task)
    session.refresh(task)
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
    policy: Policy,
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
        used = policy.time.work_calendar().workdays_after(dispatched, now.astimezone(policy.tz).date())
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
        note = f"回访: {RATING_LABELS[feedback.rating]}" + (
            f"，{feedback.comment}" if feedback.comment else ""
        )
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


def add_notification(
    session: Session, org: Org | None, *, unit_code: str, task: Task, kind: str, message: str, now: datetime
) -> Notification:
    unit = org.units_by_code.get(unit_code) if org is not None else None
    notification = Notification(
        unit_code=unit_code,
        task_id=task.id,  # type: ignore[arg-type]
        kind=kind,
        message=message,
        created_at=now,
        webhook_status="pending" if unit is not None and unit.webhook is not None else "none",
    )
    session.add(notification)
    return notification


def moves_for(actor: Actor, task: Task) -> list[Move]:
    """The moves ``actor`` could make on ``task`` right now (the buttons a page shows)."""
    from dispatcher.tasks.lifecycle import allowed_moves

    if actor.login in task.recused_logins:
        return []
    return [m for m in allowed_moves(S(task.status)) if m not in REQUESTER_MOVES and _may(actor, task, m)]


def mask_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """Names and phones masked (张**, 138****5678): what every view shows by default."""
    from dispatcher.security import mask_name, mask_phone

    masked: dict[str, Any] = {}
    for role, person in identity.items():
        if isinstance(person, dict):
            masked[role] = {
                **person,
                **({"name": mask_name(person["name"])} if person.get("name") else {}),
                **({"phone": mask_phone(person["phone"])} if person.get("phone") else {}),
            }
    return masked


def may_reveal(actor: Actor, task: Task) -> bool:
    """Only the handling unit's staff and the zone's leader may see who reported or complained."""
    if actor.login in task.recused_logins:
        return False
    if actor.role == "zone_leader":
        return task.zone_code in actor.zones
    return actor.role in ("handler", "verifier") and actor.unit == task.handler_unit


def expire_feedback(
    session: Session, *, now: datetime, org: Org | None, policy: Policy, limit: int = 200
) -> int:
    """Close tasks whose feedback window has passed as "no response" (回访期满); returns how many."""
    due = session.exec(
        select(Task.id)
        .where(Task.status == S.awaiting_feedback.value, col(Task.feedback_due_at) <= now)
        .order_by(col(Task.feedback_due_at))
        .limit(limit)
    ).all()
    actor = Actor.system("feedback")
    for task_id in due:
        if task_id is not None:
            apply_move(
                session,
                actor,
                task_id,
                MoveRequest(move=Move.feedback_expire),
                now=now,
                org=org,
                policy=policy,
            )
    return len(due)
