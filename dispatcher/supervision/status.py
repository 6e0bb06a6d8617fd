"""How tasks stand against their clocks: one task's time left, and SQL for lists and counts.

``time_left`` is what the API shows of a task's running clocks (English; the pages word it in
Chinese from ``dispatcher.web.labels``). The SQL functions mirror ``clocks.standing`` for
queries: the state stored by the last move or sweep, made ``overdue`` as soon as a running clock
is past due (the sweep may not have come by yet). SQL cannot compute a working-time warning, so
a list shows ``warning`` only once a move or the sweep has stored it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from dispatcher.enums import ClockName, DeadlineState, states_running, worst
from dispatcher.enums import TaskStatus as S
from dispatcher.models import Task
from dispatcher.supervision.clocks import RunningClock, deadline_state, running_clocks
from dispatcher.supervision.deadlines import due_at
from dispatcher.supervision.policy import TimePolicy
from dispatcher.wallclock import span_parts

_DUE_COLUMNS = {
    ClockName.accept: Task.accept_due_at,
    ClockName.resolve: Task.resolve_due_at,
    ClockName.verify: Task.verify_due_at,
}


def _span(seconds: float) -> str:
    days, hours, mins = span_parts(seconds)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def _left(clock: RunningClock, now: datetime, policy: TimePolicy) -> dict[str, Any]:
    left = (clock.due_at - now).total_seconds()
    return {
        "clock": clock.name.value,
        "due_at": clock.due_at.isoformat(),
        "seconds_left": int(left),
        "state": deadline_state(clock, now=now, policy=policy).value,
    }


def time_left(task: Task, *, policy: TimePolicy, now: datetime) -> dict[str, Any]:
    """The most pressing running clock's deadline and time left, the task's ``DeadlineState``, and
    every running clock (``clocks``); ``clock: None`` when none runs.

    Uses the clocks stored on the task (moved by the moves, pauses and extensions); a task routed
    before clocks existed falls back to the resolve clock from ``received_at``.
    """
    clocks = running_clocks(task, policy)
    idle = (S.triage, S.returned, S.closed, S.suspended, S.awaiting_feedback, S.held)
    if not clocks and task.status not in idle:
        kind_clocks = policy.clocks_for(task.kind, task.channel)
        if kind_clocks is not None:
            due = due_at(task.received_at, kind_clocks.resolve.limit, policy.frame())
            clocks = [RunningClock(ClockName.resolve, task.received_at, due, kind_clocks.resolve.kind)]
    if not clocks:
        return {
            "clock": None, "due_at": None, "seconds_left": None, "state": None,
            "label": task.status.replace("_", " "), "escalation_level": task.escalation_level, "clocks": [],
        }  # fmt: skip
    each = [_left(c, now, policy) for c in clocks]
    states = [DeadlineState(e["state"]) for e in each]
    pressing = max(range(len(each)), key=lambda i: (states[i].severity, -each[i]["seconds_left"]))
    head, left = each[pressing], each[pressing]["seconds_left"]
    stored = DeadlineState(task.deadline_state) if task.deadline_state in set(DeadlineState) else None
    state = worst(*states, *([stored] if stored else []))
    if task.escalation_level > 0:
        state = DeadlineState.escalated
    label = (
        f"{head['clock']} overdue by {_span(left)}" if left < 0 else f"{head['clock']} due in {_span(left)}"
    )
    return {
        **head,
        "state": state.value,
        "label": label,
        "escalation_level": task.escalation_level,
        "clocks": each,
    }


def running_late(now: datetime) -> Any:
    """SQL: a clock running in the task's state (``enums.RUNNING_CLOCKS``) has passed its due time."""
    return sa.or_(
        *(
            sa.and_(col(Task.status).in_(sorted(states_running(name))), col(due).is_not(None), col(due) < now)
            for name, due in _DUE_COLUMNS.items()
        ),
        sa.and_(  # NULLs are tested apart: "not overdue" must be true, not unknown, for a task without one
            col(Task.status).in_(sorted(states_running(ClockName.acknowledge))),
            col(Task.acknowledged_at).is_(None),
            col(Task.acknowledge_due_at).is_not(None),
            col(Task.acknowledge_due_at) < now,
        ),
    )


def overdue_condition(now: datetime) -> Any:
    """SQL: an open task the sweep marked overdue or escalated, or whose running clock is past due."""
    late = [DeadlineState.overdue.value, DeadlineState.escalated.value]
    return sa.and_(
        col(Task.status) != S.closed.value,
        sa.or_(col(Task.deadline_state).in_(late), running_late(now)),
    )


def effective_state(now: datetime) -> Any:
    """SQL: the stored deadline state, made ``overdue`` as soon as the running clock is past due."""
    escalated, overdue = DeadlineState.escalated.value, DeadlineState.overdue.value
    return sa.case(
        (col(Task.deadline_state) == escalated, escalated),
        (sa.or_(col(Task.deadline_state) == overdue, running_late(now)), overdue),
        else_=col(Task.deadline_state),
    )


def _zero() -> dict[str, int]:
    return {**dict.fromkeys((s.value for s in DeadlineState), 0), "total": 0}


def deadline_counts(session: Session, where: Any, *, now: datetime) -> dict[str, Any]:
    """Open tasks matching ``where`` by deadline state: in all, per zone, per unit, per (zone, unit)."""
    state = effective_state(now).label("dstate")
    rows = session.exec(
        select(Task.zone_code, Task.handler_unit, state, func.count())
        .where(where, col(Task.status) != S.closed.value)
        .group_by(col(Task.zone_code), col(Task.handler_unit), sa.text("dstate"))
    ).all()
    total = _zero()
    zones: dict[str, dict[str, int]] = {}
    units: dict[str, dict[str, int]] = {}
    pairs: dict[tuple[str | None, str | None], dict[str, int]] = {}
    for zone, unit, name, n in rows:
        targets = [total, pairs.setdefault((zone, unit), _zero())]
        if zone is not None:
            targets.append(zones.setdefault(zone, _zero()))
        if unit is not None:
            targets.append(units.setdefault(unit, _zero()))
        for counts in targets:
            counts[name] = counts.get(name, 0) + n
            counts["total"] += n
    return {
        "at": now.isoformat(),
        "states": [s.value for s in DeadlineState],
        "total": total,
        "zones": dict(sorted(zones.items())),
        "units": dict(sorted(units.items())),
        "rows": [
            {"zone": z, "unit": u, **c}
            for (z, u), c in sorted(pairs.items(), key=lambda kv: (kv[0][0] or "~", kv[0][1] or "~"))
        ],
    }
