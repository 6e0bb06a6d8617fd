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

Requests and decisions go through the guarded write of every move (``tasks.guard``): the task
exists and the actor sees it (``NotFound``), the actor's role and unit (``Forbidden``), recusal
(``Forbidden``), the version the actor saw (``Conflict``); then the task's state and the
extension's (``Conflict``), then the body (``ValidationFailed``). Each is written to the task's
history (moves ``extend``, ``extend_approve``, ``extend_refuse``; the state does not change) and
notifies: a request the zone's room (zone leaders), a decision the handling unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dispatcher.enums import ClockName
from dispatcher.errors import Conflict, NotFound, ValidationFailed
from dispatcher.models import Extension, Task
from dispatcher.notify.inbox import add_notification
from dispatcher.org.model import Org
from dispatcher.supervision.clocks import (
    clock_spec,
    done_steps,
    next_check,
    running_clocks,
    standing,
    steps_of,
)
from dispatcher.supervision.deadlines import DayKind, due_at, extend
from dispatcher.supervision.policy import TimePolicy
from dispatcher.tasks import guard
from dispatcher.tasks.access import Actor, extension_open, may_decide_extension, may_request_extension

PENDING, APPROVED, REFUSED = "pending", "approved", "refused"


@dataclass(frozen=True, slots=True)
class ExtensionRequest:
    days: int | None
    reason: str | None
    #: The task version the actor saw; a stale one is refused with ``Conflict``.
    version: int | None = None


def day_word(policy: TimePolicy) -> str:
    """The unit the extension's days are counted in, as the sentences say it."""
    return "个工作日" if policy.extension.kind is DayKind.working else "天"


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


def ask(
    session: Session,
    actor: Actor,
    task_id: int,
    request: ExtensionRequest,
    *,
    now: datetime,
    org: Org | None,
    policy: TimePolicy,
) -> Extension:
    """A handler asks for ``days`` more; the caller's unit of work commits it."""
    task = guard.get_task(session, actor, task_id)
    guard.check(
        actor, task, permitted=may_request_extension(actor, task),
        refusal=f"a {actor.role} of {actor.unit or 'no unit'} may not ask to extend this task",
    )  # fmt: skip
    seen = guard.seen_version(task, request.version)
    if not extension_open(task):
        raise _not_running(task, "ask for an extension")
    rule = policy.extension
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
        raise ValidationFailed(f"an extension needs a reason and 1 to {rule.max_days} days", details=problems)
    assert request.days is not None
    note = f"申请延期{request.days}{day_word(policy)}: {reason}"
    guard.write(
        session, task, seen, {}, actor=actor, move="extend", to_status=task.status, note=note, now=now
    )
    extension = Extension(
        task_id=task_id, days=request.days, reason=reason, requested_by=actor.login, requested_at=now,
        status=PENDING,
    )  # fmt: skip
    session.add(extension)
    session.flush()
    if org is not None and task.zone_code in org.zones_by_code:
        room = org.zones_by_code[task.zone_code].room
        add_notification(
            session, org, unit_code=room, task=task, kind="extension_requested",
            message=f"{task.ledger_no} {task.handler_unit} {note}", now=now,
        )  # fmt: skip
    return extension


def approved_changes(
    session: Session, task: Task, days: int, *, now: datetime, policy: TimePolicy
) -> dict[str, Any]:
    """The columns an approval of ``days`` writes: a new run of the resolve clock with the later
    deadline, the count, and the state and next check it gives (an escalation reached stays
    unless the new deadline lies ahead)."""
    frame = policy.frame()
    old = task.resolve_due_at
    if old is None:
        spec = clock_spec(task, ClockName.resolve, policy)
        if spec is None:
            raise _not_running(task, "extend")
        old = due_at(task.received_at, spec.limit, frame)
    changes: dict[str, Any] = {
        "resolve_due_at": extend(old, days, policy.extension.kind, frame),
        "extensions_used": task.extensions_used + 1,
        "resolve_run": (task.resolve_run or 1) + 1,
    }
    clocks = running_clocks(task.model_copy(update=changes), policy)
    done = done_steps(session, task.id) if task.id is not None else set()
    changes["next_check_at"] = next_check(steps_of(clocks, policy), done, now)
    if clocks:
        changes["deadline_state"], changes["escalation_level"] = standing(
            clocks, done, now=now, policy=policy
        )
    return changes


def decide(
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
    policy: TimePolicy,
) -> Extension:
    """The zone leader (or an admin) approves or refuses a pending request."""
    task = guard.get_task(session, actor, task_id)
    extension = session.get(Extension, extension_id)
    if extension is None or extension.task_id != task_id:
        raise NotFound(f"no extension {extension_id} of task {task_id}")
    verb = "approve" if approve else "refuse"
    guard.check(
        actor, task, permitted=may_decide_extension(actor, task),
        refusal=f"only the zone leader of {task.zone_code or 'the zone'} may {verb} an extension",
    )  # fmt: skip
    seen = guard.seen_version(task, version)
    if extension.status != PENDING:
        raise Conflict(
            f"extension {extension_id} was already {extension.status}",
            details={"current": task.status, "extension": extension.status},
        )
    if approve and not extension_open(task):
        raise _not_running(task, "approve an extension")
    text = (note or "").strip() or None
    changes = approved_changes(session, task, extension.days, now=now, policy=policy) if approve else {}
    if approve:
        until = changes["resolve_due_at"].astimezone(policy.tz)
        granted = f"延期{extension.days}{day_word(policy)}已批准"
        message = f"{task.ledger_no} {granted}，办结时限延至 {until:%Y-%m-%d %H:%M}"
    else:
        message = f"{task.ledger_no} 延期申请未获批准"
    history_note = message + (f"。{text}" if text else "")
    guard.write(
        session, task, seen, changes, actor=actor, move=f"extend_{verb}", to_status=task.status,
        note=history_note, now=now,
    )  # fmt: skip
    table = Extension.__table__  # type: ignore[attr-defined]
    decided = session.execute(
        sa.update(table)
        .where(table.c.id == extension_id, table.c.status == PENDING)
        .values(status=APPROVED if approve else REFUSED, decided_by=actor.login, decided_at=now, note=text)
    )
    if decided.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"extension {extension_id} was decided by someone else at the same time; reload it")
    session.expire(extension)
    session.refresh(extension)
    if task.handler_unit:
        add_notification(
            session, org, unit_code=task.handler_unit, task=task,
            kind="extension_approved" if approve else "extension_refused", message=history_note, now=now,
        )  # fmt: skip
    return extension
