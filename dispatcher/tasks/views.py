"""Read models: what the API and the pages show of a task (identity masked unless revealed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dispatcher.enums import TaskKind
from dispatcher.models import ClueStage, Event, Extension, SupervisionOrder, Task, TaskHistory
from dispatcher.security import IdentityBox, mask_fields
from dispatcher.supervision.policy import TimePolicy
from dispatcher.supervision.status import time_left
from dispatcher.tasks.access import (
    Actor,
    extension_open,
    may_decide_extension,
    may_request_extension,
    may_reveal,
    may_see_history,
    moves_for,
)
from dispatcher.tasks.extensions import PENDING, extensions_of
from events.schemas import PAYLOAD_MODELS


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def task_summary(task: Task, *, policy: TimePolicy, now: datetime) -> dict[str, Any]:
    """One row of a list: where the task stands and the deadline of the clock now running."""
    return {
        "id": task.id,
        "ledger_no": task.ledger_no,
        "kind": task.kind,
        "summary": task.summary,
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
        "deadline": time_left(task, policy=policy, now=now),
    }


def mask_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """Every identity field masked, field by field, whatever the fields (张**, 138****5678,
    1101************34, a***@example.com): what every view shows by default."""
    masked: dict[str, Any] = mask_fields(identity)
    return masked


_DECLARED: dict[str, set[str]] = {
    kind.value: set(model.model_fields) for kind, model in PAYLOAD_MODELS.items()
}


def public_payload(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The event's content as staff see it: the fields the contract declares as they are; any
    other (stored before undeclared fields went to the encrypted identity) masked, not shown."""
    declared = _DECLARED.get(kind, set())
    return {k: (v if k in declared else mask_fields(v, k)) for k, v in payload.items()}


def task_detail(
    session: Session, task: Task, actor: Actor, *, box: IdentityBox, policy: TimePolicy, now: datetime
) -> dict[str, Any]:
    """One task as ``actor`` may see it: its event (identity masked), history, clocks and moves."""
    event = session.get(Event, task.event_id) if task.event_id else None
    history = session.exec(
        select(TaskHistory).where(TaskHistory.task_id == task.id).order_by(col(TaskHistory.id))
    ).all()
    extensions = extensions_of(session, task.id) if task.id is not None else []
    orders = session.exec(
        select(SupervisionOrder).where(SupervisionOrder.task_id == task.id).order_by(col(SupervisionOrder.id))
    ).all()
    recused = actor.login in task.recused_logins
    return {
        **task_summary(task, policy=policy, now=now),
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
            "payload": public_payload(event.kind, event.payload),
            "identity": mask_identity(box.open(event.identity_enc)),
        },
        "history": [history_view(h) for h in history],
        "allowed_moves": [m.value for m in moves_for(actor, task)],
        "may_reveal_identity": may_reveal(actor, task),
        "deadline_state": task.deadline_state,
        "escalation_level": task.escalation_level,
        "resolve_due_at": _iso(task.resolve_due_at),
        "extensions_used": task.extensions_used,
        "extensions": [extension_view(x) for x in extensions],
        "supervision_orders": [supervision_order_view(o) for o in orders],
        "may_request_extension": may_request_extension(actor, task)
        and not recused
        and extension_open(task)
        and not any(x.status == PENDING for x in extensions),
        "may_decide_extension": may_decide_extension(actor, task) and not recused,
        "stage": task.stage,
        "stages": [stage_view(x) for x in stages_of(session, task.id)] if task.stage else [],
        "review_due_at": _iso(task.review_due_at),
        "feedback_resolved": task.feedback_resolved,
        "acknowledge_due_at": _iso(task.acknowledge_due_at),
        "acknowledged_at": _iso(task.acknowledged_at),
        "subject_history": subject_history(session, task, event) if may_see_history(actor, task) else None,
    }


def stages_of(session: Session, task_id: int | None) -> list[ClueStage]:
    return list(
        session.exec(select(ClueStage).where(ClueStage.task_id == task_id).order_by(col(ClueStage.id))).all()
    )


def stage_view(stage: ClueStage) -> dict[str, Any]:
    """One stage of a clue: its clock, the outcome approved (or submitted) and where it led."""
    return {
        "stage": stage.stage,
        "started_at": _iso(stage.started_at),
        "due_at": _iso(stage.due_at),
        "submitted_at": _iso(stage.submitted_at),
        "outcome": stage.outcome,
        "decided_at": _iso(stage.decided_at),
        "decided_by": stage.decided_by,
        "result": stage.result,
    }


#: Earlier items shown in a clue's subject history (廉政档案), newest first.
HISTORY_LIMIT = 50


def subject_history(session: Session, task: Task, event: Event | None) -> list[dict[str, Any]]:
    """廉政档案: the other clues and complaints about the same subject (keyed hash of name and unit)
    or the same unit, received up to this one, with their outcomes."""
    if event is None or task.kind != TaskKind.clue or not (event.subject_key or event.subject_unit_key):
        return []
    same = []
    if event.subject_key:
        same.append(col(Event.subject_key) == event.subject_key)
    if event.subject_unit_key:
        same.append(col(Event.subject_unit_key) == event.subject_unit_key)
    rows = session.exec(
        select(Event, Task)
        .join(Task, col(Task.event_id) == col(Event.id))
        .where(sa.or_(*same), col(Event.id) != event.id, col(Event.received_at) <= event.received_at)
        .order_by(col(Event.received_at).desc())
        .limit(HISTORY_LIMIT)
    ).all()
    return [
        {
            "task_id": other.id, "ledger_no": other.ledger_no, "kind": other.kind,
            "received_at": _iso(other.received_at), "status": other.status, "stage": other.stage,
            "close_reason": other.close_reason, "outcome": _figures(other.outcome),
            "match": "subject" if event.subject_key and earlier.subject_key == event.subject_key else "unit",
        }
        for earlier, other in rows
    ]  # fmt: skip


#: Free text of an outcome, left out of another item's subject history (it may name people).
_FREE_TEXT = frozenset({"reply", "note", "referred_to"})


def _figures(outcome: dict[str, Any] | None) -> dict[str, Any] | None:
    if outcome is None:
        return None
    return {k: v for k, v in outcome.items() if k not in _FREE_TEXT}


def history_view(h: TaskHistory) -> dict[str, Any]:
    """One move of the append-only history: who, when, from, to, note."""
    return {"at": _iso(h.at), "actor": h.actor, "move": h.move, "from": h.from_status, "to": h.to_status,
            "note": h.note}  # fmt: skip


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


def extension_view(extension: Extension) -> dict[str, Any]:
    """延期申请 as staff see it (the requester's platform sees less: ``intake.register.event_state``)."""
    return {
        "id": extension.id,
        "days": extension.days,
        "reason": extension.reason,
        "requested_by": extension.requested_by,
        "requested_at": extension.requested_at.isoformat(),
        "status": extension.status,
        "decided_by": extension.decided_by,
        "decided_at": _iso(extension.decided_at),
        "note": extension.note,
    }
