"""Read models: what the API and the pages show of a task (identity masked unless revealed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from dispatcher.clock import utcnow
from dispatcher.models import Event, SupervisionOrder, Task, TaskHistory
from dispatcher.models import TaskStatus as S
from dispatcher.security import IdentityBox
from dispatcher.supervision.clocks import PHASES, Running, running_clock
from dispatcher.supervision.deadlines import due_at, warning_at
from dispatcher.supervision.policy import DEFAULT_POLICY, TimePolicy
from dispatcher.tasks.extensions import (
    RESOLVE_RUNNING,
    extension_view,
    extensions_of,
    may_decide,
    may_request,
)
from dispatcher.tasks.moves import Actor, mask_identity, may_reveal, moves_for


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def task_summary(task: Task, policy: TimePolicy = DEFAULT_POLICY) -> dict[str, Any]:
    return {
        "id": task.id,
        "ledger_no": task.ledger_no,
        "kind": task.kind,
        "status": task.status,
        "zone": task.zone_code,
        "township": task.township_code,
        "handler_unit": task.handler_unit,
        "verifier_unit": task.verifier_unit,
        "assisting_units": task.assisting_units,
        "rule": task.rule,
        "received_at": _iso(task.received_at),
        "dispatched_at": _iso(task.dispatched_at),
        "updated_at": _iso(task.updated_at),
        "version": task.version,
        "deadline": resolve_deadline(task, policy=policy),
    }


def task_detail(
    session: Session, task: Task, actor: Actor, box: IdentityBox, policy: TimePolicy = DEFAULT_POLICY
) -> dict[str, Any]:
    event = session.get(Event, task.event_id) if task.event_id else None
    history = session.exec(
        select(TaskHistory).where(TaskHistory.task_id == task.id).order_by(col(TaskHistory.id))
    ).all()
    extensions = extensions_of(session, task.id) if task.id is not None else []
    orders = session.exec(
        select(SupervisionOrder).where(SupervisionOrder.task_id == task.id).order_by(col(SupervisionOrder.id))
    ).all()
    return {
        **task_summary(task, policy),
        "reason": task.reason,
        "handler_login": task.handler_login,
        "outcome": task.outcome,
        "feedback_rating": task.feedback_rating,
        "close_reason": task.close_reason,
        "closed_at": _iso(task.closed_at),
        "feedback_due_at": _iso(task.feedback_due_at),
        "assisting_logins": task.assisting_logins,
        "event": None
        if event is None
        else {
            "event_id": event.id,
            "external_id": event.external_id,
            "payload": event.payload,
            "identity": mask_identity(box.open(event.identity_enc)),
        },
        "history": [
            {
                "at": _iso(h.at),
                "actor": h.actor,
                "move": h.move,
                "from": h.from_status,
                "to": h.to_status,
                "note": h.note,
            }
            for h in history
        ],
        "allowed_moves": [m.value for m in moves_for(actor, task)],
        "may_reveal_identity": may_reveal(actor, task),
        "deadline_state": task.deadline_state,
        "escalation_level": task.escalation_level,
        "resolve_due_at": _iso(task.resolve_due_at),
        "extensions_used": task.extensions_used,
        "extensions": [extension_view(x) for x in extensions],
        "supervision_orders": [supervision_order_view(o) for o in orders],
        "may_request_extension": may_request(actor, task)
        and actor.login not in task.recused_logins
        and task.status in RESOLVE_RUNNING
        and not any(x.status == "pending" for x in extensions),
        "may_decide_extension": may_decide(actor, task) and actor.login not in task.recused_logins,
    }


def supervision_order_view(order: SupervisionOrder) -> dict[str, Any]:
    """督办单 as the API and the task page show it: step, deadline, days over, who was told."""
    return {
        "id": order.id,
        "step": order.step,
        "late_unit": order.late_unit,
        "deadline": _iso(order.deadline),
        "days_over": order.days_over,
        "notified": order.notified,
        "created_at": _iso(order.created_at),
    }


# --- overdue and counts (DESIGN §9 ``GET /tasks?overdue=true``, ``GET /tasks/stats``) ------------

#: Deadline states, in the order tables show them.
DEADLINE_STATES = ("on_time", "warning", "overdue", "escalated")
_DUE_COLUMNS = {"accept": Task.accept_due_at, "resolve": Task.resolve_due_at, "verify": Task.verify_due_at}


def running_late(now: datetime) -> Any:
    """SQL: the clock running in the task's state (``supervision.PHASES``) has passed its due time."""
    return sa.or_(
        *(
            sa.and_(col(Task.status).in_(sorted(s for s, p in PHASES.items() if p == name)), col(due) < now)
            for name, due in _DUE_COLUMNS.items()
        )
    )


def overdue_condition(now: datetime) -> Any:
    """SQL: an open task that the sweep marked overdue or escalated, or whose running clock is past due
    (the sweep may not have come by yet)."""
    return sa.and_(
        col(Task.status) != S.closed.value,
        sa.or_(col(Task.deadline_state).in_(["overdue", "escalated"]), running_late(now)),
    )


def effective_state(now: datetime) -> Any:
    """SQL: the stored deadline state, made ``overdue`` as soon as the running clock is past due."""
    return sa.case(
        (col(Task.deadline_state) == "escalated", "escalated"),
        (sa.or_(col(Task.deadline_state) == "overdue", running_late(now)), "overdue"),
        else_=col(Task.deadline_state),
    )


def _zero() -> dict[str, int]:
    return {**dict.fromkeys(DEADLINE_STATES, 0), "total": 0}


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
        "states": list(DEADLINE_STATES),
        "total": total,
        "zones": dict(sorted(zones.items())),
        "units": dict(sorted(units.items())),
        "rows": [
            {"zone": z, "unit": u, **c}
            for (z, u), c in sorted(pairs.items(), key=lambda kv: (kv[0][0] or "~", kv[0][1] or "~"))
        ],
    }


def _span(seconds: float) -> str:
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时"
    return f"{hours}小时{mins}分" if hours else f"{mins}分"


STATUS_LABELS = {"closed": "已办结", "suspended": "已暂停", "awaiting_feedback": "待回访", "triage": "待分办",
                 "returned": "已退回"}  # fmt: skip
CLOCK_LABELS = {"accept": "接单", "resolve": "办结", "verify": "验单"}


def resolve_deadline(
    task: Task, *, policy: TimePolicy = DEFAULT_POLICY, now: datetime | None = None
) -> dict[str, Any]:
    """The running clock's deadline, time left and state (``on_time | warning | overdue | escalated``).

    Uses the clocks stored on the task (moved by accept, submit, suspend/resume, extensions);
    a task routed before clocks existed falls back to the resolve clock from ``received_at``.
    """
    now = now or utcnow()
    frame = policy.frame()
    clock = running_clock(task, policy)
    if clock is None and task.status in STATUS_LABELS:
        return {"clock": None, "due_at": None, "seconds_left": None, "state": None,
                "label": STATUS_LABELS[task.status]}  # fmt: skip
    if clock is None:
        clocks = policy.clocks.get(task.kind)  # type: ignore[call-overload]
        if clocks is None:
            return {"clock": None, "due_at": None, "seconds_left": None, "state": None, "label": "—"}
        due = due_at(task.received_at, clocks.resolve.clock, frame)
        clock = Running("resolve", task.received_at, due, clocks.resolve.kind)
    left = (clock.due_at - now).total_seconds()
    warn = warning_at(clock.started_at, clock.due_at, clock.kind, policy.warning_threshold, frame)
    state = "overdue" if left < 0 else "warning" if now >= warn else "on_time"
    if task.escalation_level > 0:
        state = "escalated"
    what = CLOCK_LABELS[clock.name]
    label = f"{what}超期{_span(left)}" if left < 0 else f"{what}剩余{_span(left)}"
    return {
        "clock": clock.name,
        "due_at": clock.due_at.isoformat(),
        "seconds_left": int(left),
        "state": state,
        "label": label,
        "escalation_level": task.escalation_level,
    }
