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

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from dispatcher.deadlines import DayKind, Frame, Remaining, due_at, extend, pause, resume, warning_at
from dispatcher.models import SupervisionOrder, Task
from dispatcher.models import TaskStatus as S
from dispatcher.org.model import Org
from dispatcher.policy import TimePolicy

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
    return Running(name, started, due, _clock_kind(task, name, policy))


def schedule(clock: Running, policy: TimePolicy, frame: Frame) -> list[Step]:
    """Every step of a running clock, in order: warning, overdue, then the escalation ladder."""
    warn = warning_at(clock.started_at, clock.due_at, clock.kind, policy.warning_threshold, frame)
    # An item that is late to be accepted is the zone leader's to designate elsewhere.
    overdue_notify = "zone_leader" if clock.name == "accept" else "handler_unit"
    steps = [
        Step(f"{clock.name}.warning", min(warn, clock.due_at), "warning", 0, "handler_unit", clock.due_at),
        Step(f"{clock.name}.overdue", clock.due_at, "overdue", 0, overdue_notify, clock.due_at),
    ]
    at = clock.due_at
    for level, rung in enumerate(policy.escalation, start=1):
        at = extend(at, rung.after.days, rung.after.kind, frame)
        steps.append(Step(f"{clock.name}.escalated.{level}", at, "escalated", level, rung.to, clock.due_at))
    return steps


def next_check(steps: Iterable[Step], done: set[str]) -> datetime | None:
    pending = [s.at for s in steps if s.name not in done]
    return min(pending) if pending else None


def _clock_spec(task: Task, name: str, policy: TimePolicy) -> Any:
    clocks = policy.clocks.get(task.kind)  # type: ignore[call-overload]
    return getattr(clocks, name, None) if clocks is not None else None


def done_steps(session: Session, task_id: int) -> set[str]:
    return set(session.exec(select(SupervisionOrder.step).where(SupervisionOrder.task_id == task_id)))


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
        changes.update(paused_workdays=left.workdays, paused_seconds=left.wall.total_seconds())
    if task.status == S.suspended and target != S.suspended and task.paused_workdays is not None:
        resumed_name = PHASES.get(target)
        if resumed_name is not None:
            kind = _clock_kind(task, resumed_name, policy)
            left = Remaining(
                kind, workdays=task.paused_workdays, wall=timedelta(seconds=task.paused_seconds or 0)
            )
            changes[f"{resumed_name}_due_at"] = resume(left, now, frame)
        changes.update(paused_workdays=None, paused_seconds=None)
    if PHASES.get(target) != PHASES.get(task.status) or redispatched:
        changes.update(deadline_state="on_time", escalation_level=0)
    # The next check, on the task as it will be after the move.
    probe = task.model_copy(update={**changes, "status": target})
    after = running_clock(probe, policy)
    done = done_steps(session, task.id) if task.id is not None else set()
    if (
        redispatched and after is not None
    ):  # a new unit gets a fresh accept clock: earlier accept steps don't count
        done = {d for d in done if not d.startswith("accept.")}
    changes["next_check_at"] = next_check(schedule(after, policy, frame), done) if after else None
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
    from dispatcher.tasks import add_notification  # tasks imports this module for clock_changes

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
    real next check; if its message is lost, the task comes due again after ``hold``)."""
    query = (
        select(Task)
        .where(col(Task.next_check_at) <= now)
        .order_by(col(Task.next_check_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = []
    for task in session.exec(query):
        task.next_check_at = now + hold
        session.add(task)
        if task.id is not None:
            ids.append(task.id)
    return ids


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
    steps = schedule(clock, policy, frame)
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
