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


def resolve_deadline(
    task: Task, *, policy: TimePolicy = DEFAULT_POLICY, now: datetime | None = None
) -> dict[str, Any]:
    """The resolve-by deadline and time left, from ``received_at`` and the policy's clock.

    Provisional until the supervision clocks are stored on the task (suspensions and
    extensions not yet counted); closed tasks and kinds without a clock have none.
    """
    clocks = policy.clocks.get(task.kind)  # type: ignore[call-overload]
    if clocks is None or task.status == "closed":
        return {"due_at": None, "seconds_left": None, "state": "closed" if task.status == "closed" else None,
                "label": "已办结" if task.status == "closed" else "—"}  # fmt: skip
    frame = policy.frame()
    now = now or utcnow()
    due = due_at(task.received_at, clocks.resolve.clock, frame)
    left = (due - now).total_seconds()
    warn = warning_at(task.received_at, due, clocks.resolve.kind, policy.warning_threshold, frame)
    state = "overdue" if left < 0 else "warning" if now >= warn else "on_time"
    label = f"超期{_span(left)}" if left < 0 else f"剩余{_span(left)}"
    return {"due_at": due.isoformat(), "seconds_left": int(left), "state": state, "label": label}
