"""Supervision orders (督办单): claim the tasks whose next check has come, take each due step once.

``claim_due`` is the scheduler's one statement; ``supervise`` is the actor's work on one task:
create every step of its running clocks that is due, exactly once per ``(task, step)`` (a unique
constraint decides between racing sweepers and redeliveries), notify its rung, and set
``next_check_at``. A step already past when it is first seen is taken then (an item imported
late is already late), but a warning is never issued after the deadline it warns of. A held
clue (暂存待查) comes back for review: a ``review#N`` order to the zone's room and the handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from dispatcher.enums import ClockName
from dispatcher.enums import TaskStatus as S
from dispatcher.models import SupervisionOrder, Task
from dispatcher.notify.inbox import add_notification
from dispatcher.org.model import Org
from dispatcher.supervision.clocks import Step, done_steps, next_check, running_clocks, standing, steps_of
from dispatcher.supervision.deadlines import extend
from dispatcher.supervision.policy import TimePolicy


@dataclass(frozen=True, slots=True)
class Taken:
    order: SupervisionOrder
    notify_unit: str | None


def rung_unit(notify: str, task: Task, org: Org | None, policy: TimePolicy) -> str | None:
    """The unit a step tells: the handling unit, the zone's room (its leaders), or the commission's
    office the policy names for the task's kind (a clue's: case supervision, 案件监督管理室)."""
    if notify == "handler_unit":
        return task.handler_unit
    if org is None:
        return None
    if notify == "zone_leader":
        zone = org.zones_by_code.get(task.zone_code or "")
        return zone.room if zone is not None else None
    office: str = getattr(org.commission, policy.commission_office(task.kind))
    return office


def _unit_name(org: Org | None, code: str | None) -> str:
    unit = org.units_by_code.get(code or "") if org is not None else None
    return unit.name if unit is not None else code or "—"


def _notify(
    session: Session, org: Org | None, task: Task, step: Step, order: SupervisionOrder, *, now: datetime,
    policy: TimePolicy,
) -> None:  # fmt: skip
    """督办通知 to the step's rung. The notification's kind (``supervision.<state>``) says which step."""
    unit = rung_unit(step.notify, task, org, policy)
    if unit is None:
        return
    clock = step.name.partition(".")[0].partition("#")[0]
    what = "受理告知" if clock == ClockName.acknowledge else "时限"
    late = f"，已超过 {order.days_over} 天" if order.days_over else ""
    due = step.deadline.astimezone(policy.tz)
    handler = _unit_name(org, task.handler_unit)
    message = f"{task.ledger_no}（承办单位：{handler}）{what} {due:%Y-%m-%d %H:%M}{late}"
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


def _take(session: Session, order: SupervisionOrder) -> bool:
    """Create the order unless another sweeper or delivery took this step first."""
    savepoint = session.begin_nested()
    try:
        session.add(order)
        session.flush()
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        return False
    return True


def supervise(
    session: Session, task_id: int, *, now: datetime, policy: TimePolicy, org: Org | None
) -> list[Taken]:
    """Take every step of ``task_id`` that is due, each exactly once; set its state and next check."""
    task = session.get(Task, task_id, with_for_update=True)
    if task is None:
        return []
    if task.status == S.held:
        return _review(session, task, now=now, policy=policy, org=org)
    clocks = running_clocks(task, policy)
    if not clocks:
        task.next_check_at = None
        session.add(task)
        return []
    steps = steps_of(clocks, policy)
    done = done_steps(session, task_id)
    taken: list[Taken] = []
    for step in steps:
        if step.name in done or step.at > now or step.moot(now):
            continue
        order = SupervisionOrder(
            task_id=task_id, step=step.name, late_unit=task.handler_unit, deadline=step.deadline,
            days_over=max(0, (now - step.deadline).days), notified=step.notify, created_at=now,
        )  # fmt: skip
        if _take(session, order):
            taken.append(Taken(order, rung_unit(step.notify, task, org, policy)))
            _notify(session, org, task, step, order, now=now, policy=policy)
        done.add(step.name)
    task.deadline_state, task.escalation_level = standing(clocks, done, now=now, policy=policy)
    task.next_check_at = next_check(steps, done, now)
    session.add(task)
    return taken


def _review(
    session: Session, task: Task, *, now: datetime, policy: TimePolicy, org: Org | None
) -> list[Taken]:
    """暂存待查 comes back: once per review date, the zone's room and the handler are told."""
    due = task.review_due_at
    if due is None or due > now:
        task.next_check_at = due
        session.add(task)
        return []
    done = done_steps(session, task.id or 0)
    number = 1 + sum(1 for name in done if name.startswith("review#"))
    step = f"review#{number}"
    order = SupervisionOrder(
        task_id=task.id, step=step, late_unit=task.handler_unit, deadline=due, days_over=0,  # type: ignore[arg-type]
        notified="zone_leader", created_at=now,
    )  # fmt: skip
    taken = []
    if _take(session, order):
        day = due.astimezone(policy.tz)
        message = f"{task.ledger_no} 暂存待查到期复查（{day:%Y-%m-%d}），请在调度会研究是否重新处置"
        for notify in ("zone_leader", "handler_unit"):
            unit = rung_unit(notify, task, org, policy)
            if unit is not None:
                add_notification(
                    session, org, unit_code=unit, task=task, kind="review", message=message, now=now
                )
        taken.append(Taken(order, rung_unit("zone_leader", task, org, policy)))
    clocks = policy.clocks_for(task.kind)
    every = clocks.hold_review if clocks is not None else None
    later = extend(due, every.days, every.kind, policy.frame()) if every is not None else None
    while later is not None and later <= now and every is not None:  # a long-missed review is one order
        later = extend(later, every.days, every.kind, policy.frame())
    task.review_due_at = later
    task.next_check_at = later
    session.add(task)
    return taken
