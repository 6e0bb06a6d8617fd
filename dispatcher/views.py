"""Read models: what the API and the pages show of a task (identity masked unless revealed)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from dispatcher.models import Event, Task, TaskHistory
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
