"""Time-limited supervision (限期督办): which clock runs, when each step falls, what the sweep does.

Pure part: ``running_clock`` (which of accept / resolve / verify is running in a state),
``schedule`` (warning, overdue and the escalation ladder as dated steps), ``next_check``.
Database part: ``clock_changes`` (what a move does to a task's clocks), ``supervise`` (the
actor's work: create every step that is due, exactly once per ``(task, step)``, notify its
rung, and set ``next_check_at`` — the one indexed column the sweep reads), ``due_tasks``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from dispatcher.models import SupervisionOrder, Task, TaskHistory
from dispatcher.models import TaskStatus as S
from dispatcher.org.model import Org
from dispatcher.supervision.deadlines import (
    DayKind,
    Frame,
    Remaining,
    due_at,
    extend,
    pause,
    resume,
    warning_at,
    working_before,
    working_seconds,
)
from dispatcher.supervision.policy import TimePolicy

#: The clock running in each state; other states run none (triage waits for a person, feedback
#: has its own window, a suspended clock is paused, a closed task is done).
PHASES: dict[str, str] = {
    S.dispatched: "accept",
    S.accepted: "resolve",
    S.rejected: "resolve",
    S.reopened: "resolve",
    S.submitted: "verify",
}


@dataclass(frozen=True, slots=True)
class Running:
    name: str  #: ``accept | resolve | verify``
    started_at: datetime
    due_at: datetime
    kind: DayKind


@dataclass(frozen=True, slots=True)
class Step:
    name: str  #: ``resolve.warning``, ``resolve.overdue``, ``resolve.escalated.1``…
    at: datetime
    state: str  #: the task's ``deadline_state`` once this step is taken
    level: int  #: escalation level once taken
    notify: str  #: ``handler_unit | zone_leader | commission``
    deadline: datetime


def _clock_kind(task: Task, name: str, policy: TimePolicy) -> DayKind:
    clocks = policy.clocks.get(task.kind)  # type: ignore[call-overload]
    spec = getattr(clocks, name, None) if clocks is not None else None
    return spec.kind if spec is not None else DayKind.working


def running_clock(task: Task, policy: TimePolicy) -> Running | None:
    name = PHASES.get(task.status)
    if name is None:
        return None
    started, due = {
        "accept": (task.dispatched_at or task.created_at, task.accept_due_at),
        "resolve": (task.received_at, task.resolve_due_at),
        "verify": (task.submitted_at or task.updated_at, task.verify_due_at),
    }[name]
    if due is None:
        return None
    if task.clock_started_at is not None:  # resumed after a pause: the paused time does not count
        started = task.clock_started_at
    return Running(name, started, due, _clock_kind(task, name, policy))


def schedule(clock: Running, policy: TimePolicy, frame: Frame, *, round: int = 1) -> list[Step]:
    """Every step of a running clock, in order: warning, overdue, then the escalation ladder.

    ``round`` counts the dispatches of a task: each designation restarts the accept clock for a
    new unit, whose steps are named ``accept#2.warning``… so that they, too, are taken once.
    """
    warn = warning_at(clock.started_at, clock.due_at, clock.kind, policy.warning_threshold, frame)
    # An item that is late to be accepted is the zone leader's to designate elsewhere.
    overdue_notify = "zone_leader" if clock.name == "accept" else "handler_unit"
    prefix = clock.name if round <= 1 else f"{clock.name}#{round}"
    steps = [
        Step(f"{prefix}.warning", min(warn, clock.due_at), "warning", 0, "handler_unit", clock.due_at),
        Step(f"{prefix}.overdue", clock.due_at, "overdue", 0, overdue_notify, clock.due_at),
    ]
    at = clock.due_at
    for level, rung in enumerate(policy.escalation, start=1):
        at = extend(at, rung.after.days, rung.after.kind, frame)
        steps.append(Step(f"{prefix}.escalated.{level}", at, "escalated", level, rung.to, clock.due_at))
    return steps


def next_check(steps: Iterable[Step], done: set[str]) -> datetime | None:
    pending = [s.at for s in steps if s.name not in done]
    return min(pending) if pending else None


def _clock_spec(task: Task, name: str, policy: TimePolicy) -> Any:
    clocks = policy.clocks.get(task.kind)  # type: ignore[call-overload]
    return getattr(clocks, name, None) if clocks is not None else None


def done_steps(session: Session, task_id: int) -> set[str]:
    return set(session.exec(select(SupervisionOrder.step).where(SupervisionOrder.task_id == task_id)))


def dispatch_round(session: Session, task_id: int) -> int:
    """How many times the task was dispatched to a unit (routing, manual routing, designation)."""
    count = session.exec(
        select(sa.func.count())
        .select_from(TaskHistory)
        .where(
            TaskHistory.task_id == task_id,
            TaskHistory.to_status == S.dispatched.value,
            TaskHistory.move != "resume",  # a resumed accept clock is the same clock
        )
    ).one()
    return max(1, int(count))


def clock_round(session: Session, task: Task, clock: Running, *, redispatched: bool = False) -> int:
    """Which run of this clock it is, so that each run's steps are taken once.

    The accept clock restarts with every dispatch to a new unit (``accept#2.warning``…); the
    resolve clock restarts with every approved extension (``resolve#2.overdue``…).
    """
    if clock.name == "accept" and task.id is not None:
        # a redispatch's own history row is not written yet when its clocks are computed
        return dispatch_round(session, task.id) + (1 if redispatched else 0)
    if clock.name == "resolve":
        return task.extensions_used + 1
    return 1


def steps_of(
    session: Session,
    task: Task,
    clock: Running,
    policy: TimePolicy,
    frame: Frame,
    *,
    redispatched: bool = False,
) -> list[Step]:
    return schedule(clock, policy, frame, round=clock_round(session, task, clock, redispatched=redispatched))


def clock_changes(
    session: Session,
    task: Task,
    target: str,
    *,
    now: datetime,
    policy: TimePolicy,
    redispatched: bool = False,
) -> dict[str, Any]:
    """What moving ``task`` to ``target`` does to its clocks (the caller writes the columns)."""
    frame = policy.frame()
    changes: dict[str, Any] = {}
    if redispatched or (target == S.dispatched and task.accept_due_at is None):
        accept = _clock_spec(task, "accept", policy)
        changes["accept_due_at"] = due_at(now, accept.clock, frame) if accept else None
    if task.resolve_due_at is None and target != S.triage:
        resolve = _clock_spec(task, "resolve", policy)
        changes["resolve_due_at"] = due_at(task.received_at, resolve.clock, frame) if resolve else None
    if target == S.submitted:
        verify = _clock_spec(task, "verify", policy)
        changes["verify_due_at"] = due_at(now, verify.clock, frame) if verify else None
    before = running_clock(task, policy)
    if target == S.suspended and before is not None:
        left = pause(before.due_at, now, before.kind, frame)
        used = (
            working_seconds(before.started_at, now, frame)
            if before.kind is DayKind.working
            else (now - before.started_at).total_seconds()
        )
        changes.update(
            paused_workdays=left.workdays, paused_seconds=left.wall.total_seconds(), clock_used_seconds=used
        )
    if task.status == S.suspended and target != S.suspended and task.paused_workdays is not None:
        resumed_name = PHASES.get(target)
        if resumed_name is not None:
            kind = _clock_kind(task, resumed_name, policy)
            left = Remaining(
                kind, workdays=task.paused_workdays, wall=timedelta(seconds=task.paused_seconds or 0)
            )
            changes[f"{resumed_name}_due_at"] = resume(left, now, frame)
            used = task.clock_used_seconds or 0.0
            changes["clock_started_at"] = (
                working_before(now, used, frame) if kind is DayKind.working else now - timedelta(seconds=used)
            )
        changes.update(paused_workdays=None, paused_seconds=None, clock_used_seconds=None)
    resuming = task.status == S.suspended
    if (
        PHASES.get(target) != PHASES.get(task.status) and not resuming and target != S.suspended
    ) or redispatched:
        # a new clock starts: its state starts over (a resumed clock keeps what it had)
        changes.update(deadline_state="on_time", escalation_level=0, clock_started_at=None)
    # The next check, on the task as it will be after the move.
    # The move itself restarts the accept clock (dispatched_at) or starts the verify clock
    # (submitted_at) at ``now``; the caller writes those columns, the probe must see them too.
    started: dict[str, Any] = {}
    if redispatched or (target == S.dispatched and task.dispatched_at is None):
        started["dispatched_at"] = now
    if target == S.submitted:
        started["submitted_at"] = now
    probe = task.model_copy(update={**changes, **started, "status": target})
    after = running_clock(probe, policy)
    done = done_steps(session, task.id) if task.id is not None else set()
    changes["next_check_at"] = (
        next_check(steps_of(session, probe, after, policy, frame, redispatched=redispatched), done)
        if after
        else None
    )
    return changes


@dataclass(frozen=True, slots=True)
class Taken:
    order: SupervisionOrder
    notify_unit: str | None


def _rung_unit(step: Step, task: Task, org: Org | None) -> str | None:
    if step.notify == "handler_unit":
        return task.handler_unit
    if org is None:
        return None
    if step.notify == "zone_leader":
        zone = org.zones_by_code.get(task.zone_code or "")
        return zone.room if zone is not None else None
    return org.commission.enterprise_verifier  # the commission's supervision office (党风政风监督室)


STEP_LABELS = {"warning": "临期预警", "overdue": "已超期", "escalated": "升级督办"}


def _notify(
    session: Session, org: Org | None, task: Task, step: Step, order: SupervisionOrder, now: datetime
) -> None:
    from dispatcher.tasks.moves import add_notification  # tasks imports this module for clock_changes

    unit = _rung_unit(step, task, org)
    if unit is None:
        return
    late = f"，超期{order.days_over}天" if order.days_over else ""
    message = f"{task.ledger_no} {STEP_LABELS[step.state]}（{step.name}）: 承办单位 {task.handler_unit}{late}"
    add_notification(
        session, org, unit_code=unit, task=task, kind=f"supervision.{step.state}", message=message, now=now
    )


def claim_due(session: Session, *, now: datetime, hold: timedelta, limit: int = 1000) -> list[int]:
    """The sweep: tasks whose next check has come, held back by ``hold`` so that a sweep
    running again before the workers catch up does not enqueue them twice (the actor sets the
    real next check; if its message is lost, the task comes due again after ``hold``).

    One statement: the index range scan on ``next_check_at`` picks the ids (``SKIP LOCKED``
    lets two sweepers share the work on PostgreSQL) and the update returns them.
    """
    table = Task.__table__  # type: ignore[attr-defined]
    due = (
        sa.select(table.c.id)
        .where(table.c.next_check_at <= now)
        .order_by(table.c.next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = session.execute(
        sa.update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(next_check_at=now + hold)
        .returning(table.c.id)
    )
    return sorted(int(row[0]) for row in claimed)


def supervise(
    session: Session, task_id: int, *, now: datetime, policy: TimePolicy, org: Org | None
) -> list[Taken]:
    """Take every step of ``task_id`` that is due, each exactly once; set its next check."""
    task = session.get(Task, task_id, with_for_update=True)
    if task is None:
        return []
    clock = running_clock(task, policy)
    if clock is None:
        task.next_check_at = None
        session.add(task)
        return []
    frame = policy.frame()
    steps = steps_of(session, task, clock, policy, frame)
    done = done_steps(session, task_id)
    taken: list[Taken] = []
    for step in steps:
        if step.name in done or step.at > now:
            continue
        order = SupervisionOrder(
            task_id=task_id, step=step.name, late_unit=task.handler_unit, deadline=step.deadline,
            days_over=max(0, (now - step.deadline).days), notified=step.notify, created_at=now,
        )  # fmt: skip
        savepoint = session.begin_nested()
        try:
            session.add(order)
            session.flush()
            savepoint.commit()
        except IntegrityError:  # another sweeper took this step first
            savepoint.rollback()
        else:
            taken.append(Taken(order, _rung_unit(step, task, org)))
            _notify(session, org, task, step, order, now)
        done.add(step.name)
        task.deadline_state, task.escalation_level = step.state, step.level
    task.next_check_at = next_check(steps, done)
    session.add(task)
    return taken
