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

#: 最紧急: escalated, overdue, reopened, rejected, then the rest open (by time left); held and
#: closed last. SQL text, so that the index of migration 0007 is on exactly this expression.
URGENCY_SQL = (
    "(CASE WHEN status = 'closed' THEN 9 WHEN status = 'held' THEN 8"
    " WHEN deadline_state = 'escalated' THEN 0 WHEN deadline_state = 'overdue' THEN 1"
    " WHEN status = 'reopened' THEN 2 WHEN status = 'rejected' THEN 3 ELSE 4 END)"
)
#: The deadline of the clock running in the state (``enums.RUNNING_CLOCKS``), none last.
_DUE = (
    "(CASE WHEN status = 'dispatched' THEN (CASE WHEN accept_due_at IS NULL OR resolve_due_at < accept_due_at"
    " THEN resolve_due_at ELSE accept_due_at END)"
    " WHEN status IN ('accepted', 'rejected', 'reopened') THEN resolve_due_at"
    " WHEN status = 'submitted' THEN verify_due_at ELSE NULL END)"
)
_NEVER = {"postgresql": "TIMESTAMP '9999-12-31 00:00:00'", "sqlite": "'9999-12-31 00:00:00'"}


def due_sql(dialect: str) -> str:
    """The running clock's deadline as SQL text, ``9999-12-31`` when none runs (so it sorts last)."""
    return f"COALESCE({_DUE}, {_NEVER.get(dialect, _NEVER['sqlite'])})"


#: ``sort`` of ``GET /tasks``: most urgent first (the default), newest or oldest first.
SORTS = ("urgent", "newest", "oldest")


def ordering(sort: str, dialect: str) -> list[Any]:
    if sort == "newest":
        return [col(Task.id).desc()]
    if sort == "oldest":
        return [col(Task.id)]
    return [sa.text(URGENCY_SQL), sa.text(due_sql(dialect)), col(Task.id)]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matching(q: str, dialect: str) -> Any:
    """``q``: a ledger number (or part of one) or words of the summary, each word required.

    PostgreSQL: ``ILIKE`` served by the trigram GIN indexes (pg_trgm) of migration 0006. SQLite:
    the FTS5 trigram table for words of three characters or more, ``LIKE`` for shorter ones.
    """
    conditions: list[Any] = []
    for word in q.split()[:8]:
        word = word[:100]
        if dialect == "sqlite" and len(word) >= 3:
            phrase = '"' + word.replace('"', '""') + '"'
            hits: Any = (
                sa.select(sa.literal_column("rowid"))
                .select_from(sa.table("tasks_fts"))
                .where(sa.literal_column("tasks_fts").op("MATCH")(phrase))
            )
            conditions.append(col(Task.id).in_(hits))
        elif dialect == "sqlite":
            pattern = _like(word)
            conditions.append(
                sa.or_(
                    col(Task.summary).like(pattern, escape="\\"),
                    col(Task.ledger_no).like(pattern, escape="\\"),
                )
            )
        else:
            pattern = _like(word)
            conditions.append(
                sa.or_(
                    col(Task.summary).ilike(pattern, escape="\\"),
                    col(Task.ledger_no).ilike(pattern, escape="\\"),
                )
            )
    return sa.and_(*conditions) if conditions else sa.true()


def task_list(
    actor: Actor,
    *,
    now: datetime,
    status: str | None = None,
    kind: str | None = None,
    unit: str | None = None,
    zone: str | None = None,
    overdue: bool | None = None,
    q: str | None = None,
    sort: str = "urgent",
    dialect: str = "sqlite",
) -> Any:
    """Tasks ``actor`` may see matching the filters, most urgent first by default (``overdue=False``:
    the on-time ones; ``q``: a ledger number or words of the summary)."""
    query = select(Task).where(visible(actor))
    for column, value in ((Task.status, status), (Task.kind, kind), (Task.handler_unit, unit),
                          (Task.zone_code, zone)):  # fmt: skip
        if value is not None:
            query = query.where(col(column) == value)
    if overdue is not None:
        late = overdue_condition(now)
        query = query.where(late if overdue else sa.not_(late))
    if q and q.strip():
        query = query.where(matching(q, dialect))
    return query.order_by(*ordering(sort, dialect))


def state_tally(session: Session, where: Any) -> dict[str, int]:
    rows = session.exec(select(Task.status, func.count()).where(where).group_by(col(Task.status))).all()
    return {status: int(n) for status, n in rows}


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
