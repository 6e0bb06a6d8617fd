"""延期: a handler asks for more time on the resolve clock; the zone leader approves or refuses.

DESIGN §1, §6.

Rules (policy ``extension``): a handler of the handling unit asks while the resolve clock runs
(``accepted | rejected | reopened``), with a reason and a number of days (1 … ``max_days``);
one request may be pending at a time and at most ``max_count`` may be approved per task. The
zone leader of the task's zone (or an admin) decides. An approval pushes ``resolve_due_at`` by
the days (``deadlines.extend``, of the policy's day kind), counts the extension, recomputes the
deadline state and the next supervision check; a refusal changes no clock. Supervision steps
already taken (warning, overdue, escalation orders) stay taken: an escalated task stays
escalated after an extension.

Checks come in the order of ``apply_move``: the task exists and the actor sees it (``NotFound``),
the actor's role and unit (``Forbidden``), recusal (``Forbidden``), the version the actor saw
(``Conflict``), the task's state and the extension's (``Conflict``), then the body
(``ValidationFailed``). Every request and decision bumps the task's version with a conditional
``UPDATE … WHERE version = seen`` (so of two concurrent requests or decisions exactly one wins),
is written to the task's history (moves ``extend``, ``extend_approve``, ``extend_refuse``; the
state does not change) and notifies: a request the zone's room (zone leaders), a decision the
handling unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dispatcher.errors import Conflict, Forbidden, NotFound, ValidationFailed
from dispatcher.models import Extension, Task, TaskHistory
from dispatcher.models import TaskStatus as S
from dispatcher.org.model import Org
from dispatcher.supervision.clocks import done_steps, next_check, running_clock, steps_of
from dispatcher.supervision.deadlines import due_at, extend, warning_at
from dispatcher.tasks.moves import Actor, Policy, add_notification, can_see

#: States in which the resolve clock runs: the only ones an extension can be asked or granted in.
RESOLVE_RUNNING: frozenset[str] = frozenset({S.accepted.value, S.rejected.value, S.reopened.value})

PENDING, APPROVED, REFUSED = "pending", "approved", "refused"


@dataclass(frozen=True, slots=True)
class ExtensionRequest:
    days: int | None
    reason: str | None
    #: The task version the actor saw; a stale one is refused with ``Conflict``.
    version: int | None = None


def day_word(policy: Policy) -> str:
    """How the extension's days are counted, in words: 个工作日 or 天 (calendar days)."""
    return "个工作日" if policy.time.extension.kind == "working" else "天"


def _task_for(session: Session, actor: Actor, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None or not can_see(actor, task):
        raise NotFound(f"no task {task_id}")
    return task


def may_request(actor: Actor, task: Task) -> bool:
    return actor.role == "handler" and actor.unit is not None and actor.unit == task.handler_unit


def may_decide(actor: Actor, task: Task) -> bool:
    if actor.role == "admin":
        return True
    return actor.role == "zone_leader" and task.zone_code in actor.zones


def _check_version(task: Task, seen: int | None) -> int:
    seen = seen if seen is not None else task.version
    if seen != task.version:
        raise Conflict(
            f"task {task.id} changed since you read it (version {seen}, now {task.version}); reload it",
            details={"current": task.status, "version": task.version},
        )
    return seen


def _not_running(task: Task, what: str) -> Conflict:
    return Conflict(
        f"cannot {what} while the task is {task.status}: the resolve clock runs only when it is "
        "accepted, rejected or reopened",
        details={"current": task.status, "extension": "clock_not_running"},
    )


def pending_of(session: Session, task_id: int) -> Extension | None:
    return session.exec(
        select(Extension).where(Extension.task_id == task_id, Extension.status == PENDING)
    ).first()


def extensions_of(session: Session, task_id: int) -> list[Extension]:
    return list(
        session.exec(select(Extension).where(Extension.task_id == task_id).order_by(col(Extension.id))).all()
    )


def latest_of(session: Session, task_id: int) -> Extension | None:
    return session.exec(
        select(Extension).where(Extension.task_id == task_id).order_by(col(Extension.id).desc())
    ).first()


def _bump(session: Session, task: Task, seen: int, changes: dict[str, Any], now: datetime) -> None:
    """The conditional write every request and decision makes: of two writers exactly one wins."""
    table = Task.__table__  # type: ignore[attr-defined]
    done = session.execute(
        sa.update(table)
        .where(table.c.id == task.id, table.c.version == seen)
        .values(**changes, updated_at=now, version=seen + 1)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"task {task.id} was changed by someone else at the same time; reload it")


def _history(session: Session, task: Task, actor: Actor, move: str, note: str, now: datetime) -> None:
    session.add(
        TaskHistory(
            task_id=task.id,  # type: ignore[arg-type]
            at=now,
            actor=actor.login,
            move=move,
            from_status=task.status,
            to_status=task.status,
            note=note,
        )
    )


def request_extension(
    session: Session,
    actor: Actor,
    task_id: int,
    request: ExtensionRequest,
    *,
    now: datetime,
    org: Org | None,
    policy: Policy,
) -> Extension:
    """A handler asks for ``days`` more; the caller's unit of work commits it."""
    task = _task_for(session, actor, task_id)
    if not may_request(actor, task):
        raise Forbidden(f"a {actor.role} of {actor.unit or 'no unit'} may not ask to extend this task")
    if actor.login in task.recused_logins:
        raise Forbidden(f"{actor.login} is recused from this task (回避)")
    seen = _check_version(task, request.version)
    if task.status not in RESOLVE_RUNNING:
        raise _not_running(task, "ask for an extension")
    rule = policy.time.extension
    waiting = pending_of(session, task_id)
    if waiting is not None:
        raise Conflict(
            f"extension {waiting.id} of task {task_id} is still waiting for the zone leader",
            details={"current": task.status, "extension": "pending", "extension_id": waiting.id},
        )
    if task.extensions_used >= rule.max_count:
        raise Conflict(
            f"task {task_id} has used {task.extensions_used} of {rule.max_count} extension(s)",
            details={"current": task.status, "extension": "max_count", "max_count": rule.max_count},
        )
    reason = (request.reason or "").strip()
    problems = []
    if not reason:
        problems.append({"path": "reason", "message": "required"})
    if request.days is None:
        problems.append({"path": "days", "message": "required"})
    elif not 1 <= request.days <= rule.max_days:
        problems.append({"path": "days", "message": f"between 1 and {rule.max_days}"})
    if problems:
        raise ValidationFailed(
            "an extension needs a reason and 1 to " + f"{rule.max_days} days", details=problems
        )
    assert request.days is not None
    _bump(session, task, seen, {}, now)
    extension = Extension(
        task_id=task_id, days=request.days, reason=reason, requested_by=actor.login, requested_at=now,
        status=PENDING,
    )  # fmt: skip
    session.add(extension)
    kind = day_word(policy)
    _history(session, task, actor, "extend", f"申请延期{request.days}{kind}: {reason}", now)
    session.flush()
    if org is not None and task.zone_code in org.zones_by_code:
        room = org.zones_by_code[task.zone_code].room
        add_notification(
            session, org, unit_code=room, task=task, kind="extension_requested",
            message=f"{task.ledger_no} {task.handler_unit} 申请延期{request.days}{kind}: {reason}", now=now,
        )  # fmt: skip
    session.expire(task)
    return extension


def _resolve_due(task: Task, policy: Policy) -> datetime | None:
    if task.resolve_due_at is not None:
        return task.resolve_due_at
    clocks = policy.time.clocks.get(task.kind)  # type: ignore[call-overload]
    return due_at(task.received_at, clocks.resolve.clock, policy.time.frame()) if clocks else None


def approved_changes(
    session: Session, task: Task, days: int, *, now: datetime, policy: Policy
) -> dict[str, Any]:
    """The columns an approval of ``days`` writes: new deadline, count, state and next check."""
    frame = policy.time.frame()
    old = _resolve_due(task, policy)
    if old is None:
        raise _not_running(task, "extend")
    new = extend(old, days, policy.time.extension.kind, frame)
    changes: dict[str, Any] = {"resolve_due_at": new, "extensions_used": task.extensions_used + 1}
    probe = task.model_copy(update=changes)
    clock = running_clock(probe, policy.time)
    if clock is not None:
        if task.escalation_level > 0:
            state = "escalated"  # an escalation already made stays made
        elif clock.due_at <= now:
            state = "overdue"
        else:
            threshold = policy.time.warning_threshold
            warn = warning_at(clock.started_at, clock.due_at, clock.kind, threshold, frame)
            state = "warning" if now >= warn else "on_time"
        done = done_steps(session, task.id) if task.id is not None else set()
        changes.update(
            deadline_state=state,
            next_check_at=next_check(steps_of(session, probe, clock, policy.time, frame), done),
        )
    return changes


def decide_extension(
    session: Session,
    actor: Actor,
    task_id: int,
    extension_id: int,
    *,
    approve: bool,
    note: str | None,
    version: int | None = None,
    now: datetime,
    org: Org | None,
    policy: Policy,
) -> Extension:
    """The zone leader (or an admin) approves or refuses a pending request."""
    task = _task_for(session, actor, task_id)
    extension = session.get(Extension, extension_id)
    if extension is None or extension.task_id != task_id:
        raise NotFound(f"no extension {extension_id} of task {task_id}")
    verb = "approve" if approve else "refuse"
    if not may_decide(actor, task):
        raise Forbidden(f"only the zone leader of {task.zone_code or 'the zone'} may {verb} an extension")
    if actor.login in task.recused_logins:
        raise Forbidden(f"{actor.login} is recused from this task (回避)")
    seen = _check_version(task, version)
    if extension.status != PENDING:
        raise Conflict(
            f"extension {extension_id} was already {extension.status}",
            details={"current": task.status, "extension": extension.status},
        )
    if approve and task.status not in RESOLVE_RUNNING:
        raise _not_running(task, "approve an extension")
    text = (note or "").strip() or None
    changes = approved_changes(session, task, extension.days, now=now, policy=policy) if approve else {}
    _bump(session, task, seen, changes, now)
    table = Extension.__table__  # type: ignore[attr-defined]
    decided = session.execute(
        sa.update(table)
        .where(table.c.id == extension_id, table.c.status == PENDING)
        .values(status=APPROVED if approve else REFUSED, decided_by=actor.login, decided_at=now, note=text)
    )
    if decided.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"extension {extension_id} was decided by someone else at the same time; reload it")
    session.expire(task)
    session.refresh(task)
    session.expire(extension)
    session.refresh(extension)
    if approve:
        local = task.resolve_due_at.astimezone(policy.tz) if task.resolve_due_at else None
        until = f"，办结时限延至 {local:%Y-%m-%d %H:%M}" if local else ""
        message = f"{task.ledger_no} 延期{extension.days}{day_word(policy)}已批准{until}"
    else:
        message = f"{task.ledger_no} 延期申请未获批准"
    history_note = message + (f"。{text}" if text else "")
    _history(session, task, actor, f"extend_{verb}", history_note, now)
    if task.handler_unit:
        add_notification(
            session, org, unit_code=task.handler_unit, task=task,
            kind="extension_approved" if approve else "extension_refused", message=history_note, now=now,
        )  # fmt: skip
    return extension


def extension_view(extension: Extension) -> dict[str, Any]:
    return {
        "id": extension.id,
        "days": extension.days,
        "reason": extension.reason,
        "requested_by": extension.requested_by,
        "requested_at": extension.requested_at.isoformat(),
        "status": extension.status,
        "decided_by": extension.decided_by,
        "decided_at": extension.decided_at.isoformat() if extension.decided_at else None,
        "note": extension.note,
    }
