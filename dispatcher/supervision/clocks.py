"""The clocks of a task (限期): which one runs, when its steps fall, how it stands, what a move does.

Pure part: ``running_clock`` (which of accept / resolve / verify runs in the task's state, per
``enums.RUNNING_CLOCK``), ``schedule`` (warning, overdue and the escalation ladder as dated
steps), ``deadline_state`` (the one computation of on-time / warning / overdue / escalated),
``next_check``. Database part: ``clock_changes`` (what a move does to a task's clocks, including
``next_check_at``, the one indexed column the sweep reads) and the step bookkeeping it needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from dispatcher.enums import RUNNING_CLOCK, ClockName, DeadlineState
from dispatcher.enums import TaskStatus as S
from dispatcher.models import SupervisionOrder, Task, TaskHistory
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
from dispatcher.supervision.policy import ClockSpec, TimePolicy


@dataclass(frozen=True, slots=True)
class RunningClock:
    """One run of a clock: since when it counts (paused time excluded) and when it falls due."""

    name: ClockName
    started_at: datetime
    due_at: datetime
    kind: DayKind

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", ClockName(self.name))


@dataclass(frozen=True, slots=True)
class Step:
    name: str  #: ``resolve.warning``, ``resolve.overdue``, ``resolve.escalated.1``…
    at: datetime
    state: DeadlineState  #: the task's ``deadline_state`` once this step is taken
    level: int  #: escalation level once taken
    notify: str  #: ``handler_unit | zone_leader | commission``
    deadline: datetime


def _clock_spec(task: Task, name: ClockName, policy: TimePolicy) -> ClockSpec | None:
    clocks = policy.clocks_for(task.kind)
    spec: ClockSpec | None = getattr(clocks, name) if clocks is not None else None
    return spec


def _clock_kind(task: Task, name: ClockName, policy: TimePolicy) -> DayKind:
    spec = _clock_spec(task, name, policy)
    return spec.kind if spec is not None else DayKind.working


def running_clock(task: Task, policy: TimePolicy) -> RunningClock | None:
    """The clock running in the task's state, with when it (deemed) started and falls due."""
    name = RUNNING_CLOCK.get(S(task.status))
    if name is None:
        return None
    started, due = {
        ClockName.accept: (task.dispatched_at or task.created_at, task.accept_due_at),
        ClockName.resolve: (task.received_at, task.resolve_due_at),
        ClockName.verify: (task.submitted_at or task.updated_at, task.verify_due_at),
    }[name]
    if due is None:
        return None
    if task.clock_started_at is not None:  # resumed after a pause: the paused time does not count
        started = task.clock_started_at
    return RunningClock(name, started, due, _clock_kind(task, name, policy))


def deadline_state(
    clock: RunningClock, *, now: datetime, escalation_level: int, policy: TimePolicy
) -> DeadlineState:
    """How ``clock`` stands at ``now``: an escalation made stays made; then overdue, warning, on time."""
    if escalation_level > 0:
        return DeadlineState.escalated
    if clock.due_at <= now:
        return DeadlineState.overdue
    warn = warning_at(clock.started_at, clock.due_at, clock.kind, policy.warning_threshold, policy.frame())
    return DeadlineState.warning if now >= warn else DeadlineState.on_time


def schedule(clock: RunningClock, policy: TimePolicy, frame: Frame, *, round: int = 1) -> list[Step]:
    """Every step of a running clock, in order: warning, overdue, then the escalation ladder.

    ``round`` counts the dispatches of a task: each designation restarts the accept clock for a
    new unit, whose steps are named ``accept#2.warning``… so that they, too, are taken once.
    """
    warn = warning_at(clock.started_at, clock.due_at, clock.kind, policy.warning_threshold, frame)
    # An item that is late to be accepted is the zone leader's to designate elsewhere.
    overdue_notify = "zone_leader" if clock.name is ClockName.accept else "handler_unit"
    prefix = clock.name.value if round <= 1 else f"{clock.name.value}#{round}"
    state = DeadlineState
    steps = [
        Step(f"{prefix}.warning", min(warn, clock.due_at), state.warning, 0, "handler_unit", clock.due_at),
        Step(f"{prefix}.overdue", clock.due_at, state.overdue, 0, overdue_notify, clock.due_at),
    ]
    at = clock.due_at
    for level, rung in enumerate(policy.escalation, start=1):
        at = extend(at, rung.after.days, rung.after.kind, frame)
        steps.append(Step(f"{prefix}.escalated.{level}", at, state.escalated, level, rung.to, clock.due_at))
    return steps


def next_check(steps: Iterable[Step], done: set[str]) -> datetime | None:
    pending = [s.at for s in steps if s.name not in done]
    return min(pending) if pending else None


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


def clock_round(session: Session, task: Task, clock: RunningClock, *, redispatched: bool = False) -> int:
    """Which run of this clock it is, so that each run's steps are taken once.

    The accept clock restarts with every dispatch to a new unit (``accept#2.warning``…); the
    resolve clock restarts with every approved extension (``resolve#2.overdue``…).
    """
    if clock.name is ClockName.accept and task.id is not None:
        # a redispatch's own history row is not written yet when its clocks are computed
        return dispatch_round(session, task.id) + (1 if redispatched else 0)
    if clock.name is ClockName.resolve:
        return task.extensions_used + 1
    return 1


def steps_of(
    session: Session,
    task: Task,
    clock: RunningClock,
    policy: TimePolicy,
    frame: Frame,
    *,
    redispatched: bool = False,
) -> list[Step]:
    return schedule(clock, policy, frame, round=clock_round(session, task, clock, redispatched=redispatched))


def clock_changes(
    session: Session,
    task: Task,
    target: S,
    *,
    now: datetime,
    policy: TimePolicy,
    redispatched: bool = False,
) -> dict[str, Any]:
    """What moving ``task`` to ``target`` does to its clocks (the caller writes the columns)."""
    frame = policy.frame()
    changes: dict[str, Any] = {}
    if redispatched or (target == S.dispatched and task.accept_due_at is None):
        accept = _clock_spec(task, ClockName.accept, policy)
        changes["accept_due_at"] = due_at(now, accept.limit, frame) if accept else None
    if task.resolve_due_at is None and target != S.triage:
        resolve = _clock_spec(task, ClockName.resolve, policy)
        changes["resolve_due_at"] = due_at(task.received_at, resolve.limit, frame) if resolve else None
    if target == S.submitted:
        verify = _clock_spec(task, ClockName.verify, policy)
        changes["verify_due_at"] = due_at(now, verify.limit, frame) if verify else None
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
        resumed_name = RUNNING_CLOCK.get(target)
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
        RUNNING_CLOCK.get(target) != RUNNING_CLOCK.get(S(task.status))
        and not resuming
        and target != S.suspended
    ) or redispatched:
        # a new clock starts: its state starts over (a resumed clock keeps what it had)
        changes.update(deadline_state=DeadlineState.on_time, escalation_level=0, clock_started_at=None)
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
