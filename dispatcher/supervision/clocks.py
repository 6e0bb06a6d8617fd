"""The clocks of a task (限期): which run, when their steps fall, how they stand, what a move does.

Every clock counts from ``received_at`` (DESIGN §6): an item imported late is already late, and
once it is dispatched its accept and resolve clocks run, and are watched, side by side. A
redispatch's accept clock and a later clue stage's resolve clock start at the move instead.

Pure part: ``running_clocks`` (the clocks running in the task's state, per
``enums.RUNNING_CLOCKS``, and a named reporter's acknowledge clock until the reporter is told),
``schedule`` (warning, overdue and the escalation ladder as dated steps), ``deadline_state`` (how
one clock stands at a time), ``standing`` (how the task stands, from the time and the steps
already taken), ``next_check``. Database part: ``clock_changes``, what a move does to the clocks,
including ``next_check_at``, the one indexed column the sweep reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from dispatcher.enums import RUNNING_CLOCKS, ClockName, DeadlineState, states_running, worst
from dispatcher.enums import TaskStatus as S
from dispatcher.models import SupervisionOrder, Task
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

_DUE = {
    ClockName.accept: "accept_due_at",
    ClockName.resolve: "resolve_due_at",
    ClockName.verify: "verify_due_at",
    ClockName.acknowledge: "acknowledge_due_at",
}
_STARTED = {
    ClockName.accept: "accept_started_at",
    ClockName.resolve: "resolve_started_at",
    ClockName.verify: "verify_started_at",
}
_RUN = {ClockName.accept: "accept_run", ClockName.resolve: "resolve_run", ClockName.verify: "verify_run"}


@dataclass(frozen=True, slots=True)
class RunningClock:
    """One run of a clock: since when it counts (paused time excluded) and when it falls due."""

    name: ClockName
    started_at: datetime
    due_at: datetime
    kind: DayKind
    #: Which run of the clock (a redispatch, an extension, a clue stage start a new one).
    run: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", ClockName(self.name))

    @property
    def prefix(self) -> str:
        """How its supervision steps are named: ``resolve``, ``resolve#2``…"""
        return self.name.value if self.run <= 1 else f"{self.name.value}#{self.run}"


@dataclass(frozen=True, slots=True)
class Step:
    name: str  #: ``resolve.warning``, ``resolve.overdue``, ``accept#2.escalated.1``…
    at: datetime
    state: DeadlineState  #: what the task's ``deadline_state`` becomes once this step is taken
    level: int  #: escalation level once taken
    notify: str  #: ``handler_unit | zone_leader | commission``
    deadline: datetime

    def moot(self, now: datetime) -> bool:
        """A warning is never issued after the deadline it warns of."""
        return self.state == DeadlineState.warning and now >= self.deadline


def clock_spec(task: Task, name: ClockName, policy: TimePolicy) -> ClockSpec | None:
    """The policy's limit of ``name`` for this task (its kind, channel and, for a clue, stage)."""
    clocks = policy.clocks_for(task.kind, task.channel)
    if clocks is None:
        return None
    if name is ClockName.resolve:
        return clocks.for_stage(task.stage)
    spec: ClockSpec | None = getattr(clocks, name.value)
    return spec


def _kind(task: Task, name: ClockName, policy: TimePolicy) -> DayKind:
    spec = clock_spec(task, name, policy)
    return spec.kind if spec is not None else DayKind.working


def _started(task: Task, name: ClockName) -> datetime:
    column = _STARTED.get(name)
    started: datetime | None = getattr(task, column) if column else None
    if started is not None:
        return started
    if name is ClockName.verify:  # rows from before the clocks knew their starts
        return task.submitted_at or task.updated_at
    return task.received_at


def acknowledgement_pending(task: Task) -> bool:
    return task.acknowledge_due_at is not None and task.acknowledged_at is None


def pressing_due(task: Task) -> datetime | None:
    """The deadline of the most pressing clock running in the task's state (None: none runs).

    Written on every history row, so that how a task stood at a past moment (overdue or not) can
    be read back later (the monthly report's ``overdue_open``).
    """
    dues = [getattr(task, _DUE[name]) for name in RUNNING_CLOCKS.get(S(task.status), ())]
    if acknowledgement_pending(task) and S(task.status) in states_running(ClockName.acknowledge):
        dues.append(task.acknowledge_due_at)
    present = [d for d in dues if d is not None]
    return min(present) if present else None


def running_clocks(task: Task, policy: TimePolicy) -> list[RunningClock]:
    """The clocks running in the task's state, soonest due first."""
    status = S(task.status)
    names = list(RUNNING_CLOCKS.get(status, ()))
    if acknowledgement_pending(task) and status in states_running(ClockName.acknowledge):
        names.append(ClockName.acknowledge)
    clocks = []
    for name in names:
        due: datetime | None = getattr(task, _DUE[name])
        if due is None:
            continue
        run = getattr(task, _RUN[name]) if name in _RUN else 1
        clocks.append(RunningClock(name, _started(task, name), due, _kind(task, name, policy), run=run or 1))
    return sorted(clocks, key=lambda c: c.due_at)


def deadline_state(clock: RunningClock, *, now: datetime, policy: TimePolicy) -> DeadlineState:
    """How one clock stands at ``now`` by the time alone: overdue, warning or on time."""
    if clock.due_at <= now:
        return DeadlineState.overdue
    warn = warning_at(clock.started_at, clock.due_at, clock.kind, policy.warning_threshold, policy.frame())
    return DeadlineState.warning if now >= warn else DeadlineState.on_time


def schedule(clock: RunningClock, policy: TimePolicy, frame: Frame) -> list[Step]:
    """Every step of a running clock, in order: warning, overdue, then the escalation ladder."""
    warn = warning_at(clock.started_at, clock.due_at, clock.kind, policy.warning_threshold, frame)
    # An item that is late to be accepted is the zone leader's to designate elsewhere.
    overdue_notify = "zone_leader" if clock.name is ClockName.accept else "handler_unit"
    prefix, state = clock.prefix, DeadlineState
    steps = [
        Step(f"{prefix}.warning", min(warn, clock.due_at), state.warning, 0, "handler_unit", clock.due_at),
        Step(f"{prefix}.overdue", clock.due_at, state.overdue, 0, overdue_notify, clock.due_at),
    ]
    at = clock.due_at
    for level, rung in enumerate(policy.escalation, start=1):
        at = extend(at, rung.after.days, rung.after.kind, frame)
        steps.append(Step(f"{prefix}.escalated.{level}", at, state.escalated, level, rung.to, clock.due_at))
    return steps


def steps_of(clocks: Iterable[RunningClock], policy: TimePolicy) -> list[Step]:
    """The steps of every running clock, in the order they fall."""
    frame = policy.frame()
    return sorted((s for c in clocks for s in schedule(c, policy, frame)), key=lambda s: s.at)


def next_check(steps: Iterable[Step], done: set[str], now: datetime) -> datetime | None:
    """When the next step not yet taken falls (a moot warning is never taken, so never waited for)."""
    pending = [s.at for s in steps if s.name not in done and not s.moot(now)]
    return min(pending) if pending else None


def _step_state(rest: str) -> tuple[DeadlineState, int] | None:
    name, _, level = rest.partition(".")
    if name == "warning":
        return DeadlineState.warning, 0
    if name == "overdue":
        return DeadlineState.overdue, 0
    if name == "escalated" and level.isdigit():
        return DeadlineState.escalated, int(level)
    return None


def standing(
    clocks: Iterable[RunningClock], done: set[str], *, now: datetime, policy: TimePolicy
) -> tuple[DeadlineState, int]:
    """The worst state and the highest escalation level of the running clocks.

    Each clock counts by the time and by the steps taken of its current run; a clock whose
    deadline has passed also keeps what its earlier runs reached (a reopened or extended task
    keeps its escalation unless its new deadline lies ahead, DESIGN §6).
    """
    state, level = DeadlineState.on_time, 0
    for clock in clocks:
        state = worst(state, deadline_state(clock, now=now, policy=policy))
        for taken in done:
            head, _, rest = taken.partition(".")
            if head.partition("#")[0] != clock.name.value:
                continue
            if head != clock.prefix and clock.due_at > now:
                continue  # an earlier run, and this run's deadline lies ahead
            step = _step_state(rest)
            if step is not None:
                state, level = worst(state, step[0]), max(level, step[1])
    return (DeadlineState.escalated if level else state), level


def done_steps(session: Session, task_id: int) -> set[str]:
    return set(session.exec(select(SupervisionOrder.step).where(SupervisionOrder.task_id == task_id)))


def _paused(clock: RunningClock, now: datetime, frame: Frame) -> dict[str, Any]:
    left = pause(clock.due_at, now, clock.kind, frame)
    used = (
        working_seconds(clock.started_at, now, frame)
        if clock.kind is DayKind.working
        else (now - clock.started_at).total_seconds()
    )
    return {"workdays": left.workdays, "seconds": left.wall.total_seconds(), "used": used, "kind": clock.kind}


def _resumed(name: ClockName, saved: dict[str, Any], now: datetime, frame: Frame) -> dict[str, Any]:
    kind = DayKind(saved.get("kind", DayKind.working))
    left = Remaining(
        kind, workdays=int(saved.get("workdays") or 0), wall=timedelta(seconds=saved.get("seconds") or 0)
    )
    used = float(saved.get("used") or 0.0)
    started = working_before(now, used, frame) if kind is DayKind.working else now - timedelta(seconds=used)
    changes = {_DUE[name]: resume(left, now, frame)}
    if name in _STARTED:
        changes[_STARTED[name]] = started
    return changes


def clock_changes(
    session: Session | None,
    task: Task,
    target: S,
    *,
    now: datetime,
    policy: TimePolicy,
    redispatched: bool = False,
    stage: str | None = None,
) -> dict[str, Any]:
    """What moving ``task`` to ``target`` does to its clocks (the caller writes the columns).

    ``redispatched``: designation or manual routing sends it to a (new) unit, whose accept clock
    starts now. ``stage``: a clue enters this stage, whose resolve clock starts now.
    """
    frame = policy.frame()
    changes: dict[str, Any] = {}
    if target == S.dispatched and (task.accept_due_at is None or redispatched):
        first = task.accept_due_at is None  # the first dispatch counts from receipt
        start = task.received_at if first else now
        accept = clock_spec(task, ClockName.accept, policy)
        changes.update(
            accept_due_at=due_at(start, accept.limit, frame) if accept else None,
            accept_started_at=start,
            accept_run=1 if first else (task.accept_run or 1) + 1,
        )
    if stage is not None:  # a clue's new stage: its own resolve clock, from now
        resolve = clock_spec(task.model_copy(update={"stage": stage}), ClockName.resolve, policy)
        changes.update(
            stage=stage,
            resolve_due_at=due_at(now, resolve.limit, frame) if resolve else None,
            resolve_started_at=now,
            resolve_run=(task.resolve_run or 1) + 1,
        )
    elif task.resolve_due_at is None and target not in (S.triage, S.returned):
        resolve = clock_spec(task, ClockName.resolve, policy)
        changes.update(
            resolve_due_at=due_at(task.received_at, resolve.limit, frame) if resolve else None,
            resolve_started_at=task.received_at,
        )
    if target == S.submitted:
        verify = clock_spec(task, ClockName.verify, policy)
        changes.update(
            verify_due_at=due_at(now, verify.limit, frame) if verify else None,
            verify_started_at=now,
            verify_run=1 if task.verify_due_at is None else (task.verify_run or 1) + 1,
        )
    if target == S.suspended and task.status != S.suspended:  # every running clock stops, keeping what it had
        changes["clock_pauses"] = {c.name.value: _paused(c, now, frame) for c in running_clocks(task, policy)}
    if task.status == S.suspended and target != S.suspended:
        for name, saved in (task.clock_pauses or {}).items():
            changes.update(_resumed(ClockName(name), saved, now, frame))
        changes["clock_pauses"] = None
    # The task as it will be after the move (the move itself writes dispatched_at / submitted_at).
    started: dict[str, Any] = {}
    if target == S.dispatched and (task.dispatched_at is None or redispatched):
        started["dispatched_at"] = now
    if target == S.submitted:
        started["submitted_at"] = now
    probe = task.model_copy(update={**changes, **started, "status": target})
    after = running_clocks(probe, policy)
    if target == S.held:
        changes["next_check_at"] = probe.review_due_at
        return changes
    done = done_steps(session, task.id) if session is not None and task.id is not None else set()
    changes["next_check_at"] = next_check(steps_of(after, policy), done, now)
    if after:  # a paused, waiting or finished task keeps the state its clocks reached
        changes["deadline_state"], changes["escalation_level"] = standing(after, done, now=now, policy=policy)
    return changes
