"""The lists staff read: tasks with filters, triage, the verify queue, a zone's counts.

Every query starts from ``access.visible``: a list never shows what the task page would refuse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from dispatcher.enums import TaskStatus as S
from dispatcher.models import Task
from dispatcher.supervision.status import overdue_condition
from dispatcher.tasks.access import Actor, visible


def task_list(
    actor: Actor,
    *,
    now: datetime,
    status: str | None = None,
    kind: str | None = None,
    unit: str | None = None,
    zone: str | None = None,
    overdue: bool | None = None,
) -> Any:
    """Tasks ``actor`` may see matching the filters, newest first (``overdue=False``: the on-time ones)."""
    query = select(Task).where(visible(actor))
    for column, value in ((Task.status, status), (Task.kind, kind), (Task.handler_unit, unit),
                          (Task.zone_code, zone)):  # fmt: skip
        if value is not None:
            query = query.where(col(column) == value)
    if overdue is not None:
        late = overdue_condition(now)
        query = query.where(late if overdue else sa.not_(late))
    return query.order_by(col(Task.id).desc())


def triage_list(actor: Actor) -> Any:
    """Items waiting for a person (triage, returned), oldest first; a zone leader sees its zones' only."""
    query = select(Task).where(col(Task.status).in_([S.triage.value, S.returned.value]))
    if not actor.sees_everything:
        query = query.where(visible(actor))
    return query.order_by(col(Task.id))


def verify_list(actor: Actor) -> Any:
    """Submitted tasks the actor's unit verifies, oldest submission first (验单队列)."""
    return (
        select(Task)
        .where(visible(actor), Task.verifier_unit == (actor.unit or ""), Task.status == S.submitted.value)
        .order_by(col(Task.submitted_at))
    )


def state_counts(session: Session, actor: Actor) -> dict[str, dict[str, dict[str, int]]]:
    """zone → handling unit → status → tasks, over what ``actor`` may see."""
    rows = session.exec(
        select(Task.zone_code, Task.handler_unit, Task.status, func.count())
        .where(visible(actor), col(Task.zone_code).is_not(None))
        .group_by(col(Task.zone_code), col(Task.handler_unit), col(Task.status))
    ).all()
    matrix: dict[str, dict[str, dict[str, int]]] = {}
    for zone, unit, status, n in rows:
        matrix.setdefault(zone or "", {}).setdefault(unit or "", {})[status] = n
    return matrix


def feedback_expired(now: datetime) -> Any:
    """Ids of tasks still awaiting feedback whose window has passed (回访期满), the oldest first."""
    return (
        select(Task.id)
        .where(Task.status == S.awaiting_feedback.value, col(Task.feedback_due_at) <= now)
        .order_by(col(Task.feedback_due_at))
    )
