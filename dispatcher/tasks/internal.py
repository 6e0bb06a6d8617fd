"""Internal tasks (DESIGN §4, §7): made by the system, not published upstream — the monthly
dispatch meeting (``DD-``), a meeting's follow-up decision (``DD-``, the meeting's ledger) and the
monthly training (``PX-``). They are dispatched like any task, supervised by the policy's clocks
of their kind, and listed with the rest; a meeting and a training close when their handler
records them (there is no one to verify them), a follow-up is verified by the zone's room.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import Session

from dispatcher.enums import TaskKind
from dispatcher.enums import TaskStatus as S
from dispatcher.intake.ledger import next_ledger_no
from dispatcher.models import Task, TaskHistory
from dispatcher.notify.inbox import add_notification
from dispatcher.org.model import Org
from dispatcher.supervision.clocks import clock_changes, pressing_due
from dispatcher.supervision.policy import TimePolicy
from dispatcher.tasks.access import INTERNAL_KINDS

__all__ = ["CLOSE_ON_SUBMIT", "INTERNAL_KINDS", "made_once", "open_internal_task"]

#: Internal kinds whose handler's record closes them (nothing to verify).
CLOSE_ON_SUBMIT = frozenset({TaskKind.monthly_dispatch, TaskKind.training})


def open_internal_task(
    session: Session,
    org: Org | None,
    *,
    kind: TaskKind,
    zone_code: str | None,
    handler_unit: str,
    verifier_unit: str | None,
    rule: str,
    reason: str,
    by: str,
    now: datetime,
    policy: TimePolicy,
    resolve_due: datetime | None = None,
    recused: Sequence[str] = (),
) -> Task:
    """A new dispatched task of ``kind`` for ``handler_unit``, its clocks running from now (or its
    resolve clock until ``resolve_due`` where the caller sets the deadline), in the history and the
    unit's inbox."""
    year = now.astimezone(policy.tz).year
    task = Task(
        kind=kind,
        ledger_no=next_ledger_no(session, kind, year),
        status=S.dispatched,
        zone_code=zone_code,
        handler_unit=handler_unit,
        verifier_unit=verifier_unit,
        rule=rule,
        reason=reason,
        summary=reason,
        recused_logins=sorted(recused),
        received_at=now,
        created_at=now,
        dispatched_at=now,
        handler_since=now,
        updated_at=now,
        resolve_due_at=resolve_due,
        resolve_started_at=now if resolve_due is not None else None,
    )
    session.add(task)
    session.flush()
    for column, value in clock_changes(session, task, S.dispatched, now=now, policy=policy).items():
        setattr(task, column, value)
    session.add(
        TaskHistory(
            task_id=task.id,  # type: ignore[arg-type]
            at=now,
            actor=by,
            move="dispatch",
            to_status=S.dispatched,
            note=reason,
            handler_unit=handler_unit,
            due_at=pressing_due(task),
        )
    )
    message = f"{task.ledger_no} {reason}"
    add_notification(
        session, org, unit_code=handler_unit, task=task, kind=kind.value, message=message, now=now
    )
    return task


Made = TypeVar("Made")


def made_once(session: Session, make: Callable[[], Made]) -> Made | None:
    """``make`` in a savepoint; ``None`` when a concurrent run made the same thing first (its
    unique constraint refused ours), which is then left as it is."""
    savepoint = session.begin_nested()
    try:
        made = make()
        session.flush()
    except sa.exc.IntegrityError:
        savepoint.rollback()
        return None
    savepoint.commit()
    return made
