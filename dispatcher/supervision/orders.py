"""Supervision orders (督办单): claim the tasks whose next check has come, take each due step once.

``claim_due`` is the scheduler's one statement; ``supervise`` is the actor's work on one task:
create every step that is due, exactly once per ``(task, step)`` (a unique constraint decides
between racing sweepers and redeliveries), notify its rung, and set ``next_check_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from dispatcher.models import SupervisionOrder, Task
from dispatcher.notify.inbox import add_notification
from dispatcher.org.model import Org
from dispatcher.supervision.clocks import Step, done_steps, next_check, running_clock, steps_of
from dispatcher.supervision.policy import TimePolicy


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


def _notify(
    session: Session,
    org: Org | None,
    task: Task,
    step: Step,
    order: SupervisionOrder,
    *,
    now: datetime,
    policy: TimePolicy,
) -> None:
    """督办通知 to the step's rung. The notification's kind (``supervision.<state>``) says which step."""
    unit = _rung_unit(step, task, org)
    if unit is None:
        return
    handler = org.units_by_code.get(task.handler_unit or "") if org is not None else None
    handler_name = handler.name if handler is not None else task.handler_unit or "—"
    late = f"，已超过 {order.days_over} 天" if order.days_over else ""
    due = step.deadline.astimezone(policy.tz)
    message = f"{task.ledger_no}（承办单位：{handler_name}）时限 {due:%Y-%m-%d %H:%M}{late}"
    add_notification(
        session, org, unit_code=unit, task=task, kind=f"supervision.{step.state}", message=message, now=now
    )


def claim_due(session: Session, *, now: datetime, hold: timedelta, limit: int = 1000) -> list[int]:
    """The sweep: tasks whose next check has come, held back by ``hold`` so that a sweep
    running again before the workers catch up does not enqueue them twice (the actor sets the
    real next check; if its message is lost, the task comes due again after ``hold``).

    One statement: the index range scan on ``next_check_at`` picks the ids (``SKIP LOCKED``
    lets two sweepers share the work on PostgreSQL) and the update returns them.
    """
    table = Task.__table__  # type: ignore[attr-defined]
    due = (
        sa.select(table.c.id)
        .where(table.c.next_check_at <= now)
        .order_by(table.c.next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = session.execute(
        sa.update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(next_check_at=now + hold)
        .returning(table.c.id)
    )
    return sorted(int(row[0]) for row in claimed)


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
    steps = steps_of(session, task, clock, policy, frame)
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
            _notify(session, org, task, step, order, now=now, policy=policy)
        done.add(step.name)
        task.deadline_state, task.escalation_level = step.state, step.level
    task.next_check_at = next_check(steps, done)
    session.add(task)
    return taken
