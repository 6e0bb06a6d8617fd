"""The guarded write: the one path by which a move or an extension changes a task.

Checks, in order: the task exists and the actor may see it (``NotFound``: another unit's task is
not even acknowledged), the actor's role and unit allow it (``Forbidden``), the actor is not
recused (回避, ``Forbidden`` naming it), the task has not changed since the actor read it
(``Conflict``). The write is ``UPDATE … WHERE version = seen`` with the history row beside it,
so of two people acting at once exactly one wins and every change is in the history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from dispatcher.errors import Conflict, Forbidden
from dispatcher.models import Task, TaskHistory
from dispatcher.supervision.clocks import pressing_due
from dispatcher.tasks.access import Actor, get_task

__all__ = ["check", "get_task", "seen_version", "write"]


def check(actor: Actor, task: Task, *, permitted: bool, refusal: str) -> None:
    """Role and unit (``permitted``, else ``Forbidden`` with ``refusal``), then recusal."""
    if not permitted:
        raise Forbidden(refusal)
    if actor.login in task.recused_logins:
        raise Forbidden(f"回避: {actor.login} is recused from task {task.ledger_no} (a declared conflict)")


def seen_version(task: Task, seen: int | None) -> int:
    """The version the actor read (``None``: the current one); a stale one is ``Conflict``."""
    seen = seen if seen is not None else task.version
    if seen != task.version:
        raise Conflict(
            f"task {task.id} changed since you read it (version {seen}, now {task.version}); reload it",
            details={"current": task.status, "version": task.version},
        )
    return seen


def write(
    session: Session,
    task: Task,
    seen: int,
    changes: dict[str, Any],
    *,
    actor: Actor,
    move: str,
    to_status: str,
    note: str,
    now: datetime,
) -> None:
    """Apply ``changes`` if the task is still at version ``seen``, bump it, and record the move."""
    table = Task.__table__  # type: ignore[attr-defined]
    done = session.execute(
        sa.update(table)
        .where(table.c.id == task.id, table.c.version == seen)
        .values(**changes, status=to_status, updated_at=now, version=seen + 1)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"task {task.id} was changed by someone else at the same time; reload it")
    from_status = task.status
    session.expire(task)
    session.refresh(task)
    session.add(
        TaskHistory(
            task_id=task.id,  # type: ignore[arg-type]
            at=now,
            actor=actor.login,
            move=move,
            from_status=from_status,
            to_status=to_status,
            note=note,
            handler_unit=task.handler_unit,
            due_at=pressing_due(task),
        )
    )
