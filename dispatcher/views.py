"""Read models: what the API and the pages show of a task (identity masked unless revealed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from dispatcher.clock import utcnow
from dispatcher.deadlines import due_at, warning_at
from dispatcher.models import Event, Task, TaskHistory
from dispatcher.policy import DEFAULT_POLICY, TimePolicy
from dispatcher.security import IdentityBox
from dispatcher.supervision import Running, running_clock
from dispatcher.tasks import Actor, mask_identity, may_reveal, moves_for


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def task_summary(task: Task) -> dict[str, Any]:
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
        "deadline": resolve_deadline(task),
    }


def task_detail(session: Session, task: Task, actor: Actor, box: IdentityBox) -> dict[str, Any]:
    event = session.get(Event, task.event_id) if task.event_id else None
    history = session.exec(
        select(TaskHistory).where(TaskHistory.task_id == task.id).order_by(col(TaskHistory.id))
    ).all()
    return {
        **task_summary(task),
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
