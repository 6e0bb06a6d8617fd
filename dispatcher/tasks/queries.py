"""The lists staff read: tasks with filters, triage, the verify queue, a zone's counts.

Every query starts from ``access.visible``: a list never shows what the task page would refuse.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, func, select

from dispatcher.enums import TaskStatus as S
from dispatcher.models import Task, TaskHistory
from dispatcher.supervision.status import overdue_condition
from dispatcher.tasks.access import Actor, visibility, visible

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

    PostgreSQL: ``ILIKE`` served by the trigram GIN indexes (pg_trgm) of migration 0006 for words
    of three characters or more; a word of one or two (``低保``, ``医保``: Chinese is written in
    them) has no trigram, so it is looked up in the summary's characters and pairs of characters
    (``zd_short_grams``, the GIN index of migration 0008); a ledger number needs three. SQLite: the
    FTS5 trigram table for words of three characters or more, ``LIKE`` for shorter ones.
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
        elif len(word) < 3:
            grams = sa.func.zd_short_grams(sa.func.lower(col(Task.summary)))
            conditions.append(grams.op("@>")(sa.bindparam(None, [word.lower()], type_=ARRAY(sa.Text))))
        else:
            pattern = _like(word)
            conditions.append(
                sa.or_(
                    col(Task.summary).ilike(pattern, escape="\\"),
                    col(Task.ledger_no).ilike(pattern, escape="\\"),
                )
            )
    return sa.and_(*conditions) if conditions else sa.true()


@dataclass(frozen=True)
class TaskFilters:
    """What a list of tasks is narrowed to: the filters of ``GET /tasks``, the inbox and ``dispatcher
    tasks``."""

    status: str | None = None
    kind: str | None = None
    unit: str | None = None  #: the handling unit
    zone: str | None = None
    overdue: bool | None = None  #: True: overdue, escalated or past due; False: the others
    q: str | None = None  #: a ledger number or words of the summary

    @property
    def searching(self) -> bool:
        """A search, or a filter by kind or lateness: no covering index counts it (``listing``)."""
        return self.kind is not None or self.overdue is not None or bool(self.q and self.q.strip())


def task_list(
    actor: Actor,
    filters: TaskFilters = TaskFilters(),
    *,
    now: datetime,
    sort: str = "urgent",
    dialect: str = "sqlite",
) -> Any:
    """Tasks ``actor`` may see matching ``filters``, most urgent first by default."""
    f = filters
    query = select(Task).where(visible(actor))
    for column, value in ((Task.status, f.status), (Task.kind, f.kind), (Task.handler_unit, f.unit),
                          (Task.zone_code, f.zone)):  # fmt: skip
        if value is not None:
            query = query.where(col(column) == value)
    if f.overdue is not None:
        late = overdue_condition(now)
        query = query.where(late if f.overdue else sa.not_(late))
    if f.q and f.q.strip():
        query = query.where(matching(f.q, dialect))
    return query.order_by(*ordering(sort, dialect))


#: A search, or a filter by kind or lateness, is counted up to this many tasks and no further
#: ("more than 2,000"): counting every match of a common word would read much of the table.
COUNT_CAP = 2_000


@dataclass(frozen=True)
class Tally:
    """How many tasks a list holds: ``total`` (when not ``exact``, a lower bound: ``COUNT_CAP``) and
    ``counts`` per state, the status filter aside (the tabs), or empty when not known."""

    counts: dict[str, int]
    total: int
    exact: bool


@dataclass(frozen=True)
class Listing:
    """A list of tasks: ``query`` selects them in order (page it with offset and limit)."""

    query: Any
    tally: Tally


def listing(
    session: Session,
    actor: Actor,
    filters: TaskFilters = TaskFilters(),
    *,
    now: datetime,
    sort: str = "urgent",
    dialect: str = "sqlite",
) -> Listing:
    """``task_list`` with its size: the inbox (DESIGN §9: most urgent first, paged with a total).

    With no filter but state, unit and zone (the inbox as it opens), counted exactly by
    ``index_tally``. A search, or a filter by kind or lateness, is first looked up whole (its
    ids, by the indexes) when it matches at most ``COUNT_CAP`` tasks, the status filter aside,
    then with it: the page is then those ids in order (a few thousand rows sorted, where reading
    the urgency index for a rare word would walk all of it), counted exactly. Beyond the cap the
    page reads the urgency index (matches that many are found within its first rows) and the
    total is "more than ``COUNT_CAP``".
    """
    ordered = task_list(actor, filters, now=now, sort=sort, dialect=dialect)
    if not filters.searching:
        return Listing(ordered, index_tally(session, actor, filters))
    for state_filter in dict.fromkeys((None, filters.status)):
        where = task_list(actor, replace(filters, status=state_filter), now=now, dialect=dialect).whereclause
        hits = _hits(session, where)
        if hits is not None:
            counts = Counter(state for _, state in hits) if state_filter is None else Counter()
            ids = [task_id for task_id, state in hits if filters.status in (None, state)]
            page = select(Task).where(col(Task.id).in_(ids)).order_by(*ordering(sort, dialect))
            return Listing(page, Tally(dict(counts), len(ids), exact=True))
    return Listing(ordered, Tally({}, COUNT_CAP, exact=False))


def _hits(session: Session, where: Any) -> list[tuple[int, str]] | None:
    """(id, state) of every task matching ``where``; None when more than ``COUNT_CAP`` do.

    On PostgreSQL the table is not read whole for them (``enable_seqscan`` off for this one
    statement): expecting matches spread evenly, the planner would read rows until it met
    ``COUNT_CAP`` + 1 of them, a few hundred milliseconds on a million wide rows; the indexes
    (trigram, short grams, kind, unit, zone) find them in tens.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.exec(sa.text("SET LOCAL enable_seqscan = off"))  # type: ignore[call-overload]
    try:
        query = select(col(Task.id), col(Task.status)).where(where).limit(COUNT_CAP + 1)
        rows = [(int(task_id or 0), state) for task_id, state in session.exec(query).all()]
    finally:
        if postgres:
            session.exec(sa.text("SET LOCAL enable_seqscan = on"))  # type: ignore[call-overload]
    return None if len(rows) > COUNT_CAP else rows


def index_tally(session: Session, actor: Actor, filters: TaskFilters = TaskFilters()) -> Tally:
    """The tasks ``actor`` sees (of the filters' unit, in their zone) per state, the status filter
    aside (the tabs).

    Each way ``actor`` sees tasks (``access.visibility``) is counted apart, leaving out the ways
    before it, so each count is an index-only scan of migration 0008's covering indexes and
    nothing is counted twice; one count of the ``OR`` would read the whole table.
    """
    pairs = ((Task.handler_unit, filters.unit), (Task.zone_code, filters.zone))
    keyed = [col(c) == v for c, v in pairs if v is not None]
    ways = visibility(actor) or [sa.true()]
    counts: dict[str, int] = {}
    for i, way in enumerate(ways):
        before = [sa.not_(func.coalesce(earlier, sa.false())) for earlier in ways[:i]]
        query = select(Task.status, func.count()).where(way, *before, *keyed).group_by(col(Task.status))
        for state, n in session.exec(query).all():
            counts[state] = counts.get(state, 0) + int(n)
    total = counts.get(filters.status, 0) if filters.status else sum(counts.values())
    return Tally(counts, total, exact=True)


def triage_list(actor: Actor) -> Any:
    """Items waiting for a person (triage, returned), oldest first; a zone leader sees its zones' only."""
    query = select(Task).where(col(Task.status).in_([S.triage.value, S.returned.value]))
    if not actor.sees_everything:
        query = query.where(visible(actor))
    return query.order_by(col(Task.id))


def last_returns(session: Session, task_ids: list[int | None]) -> dict[int, tuple[str, str]]:
    """task id → (who, why) of its latest 退回, for returned tasks waiting to be routed again."""
    wanted = [i for i in task_ids if i is not None]
    if not wanted:
        return {}
    rows = session.exec(
        select(TaskHistory.task_id, TaskHistory.actor, TaskHistory.note)
        .where(col(TaskHistory.task_id).in_(wanted), TaskHistory.move == "return")
        .order_by(col(TaskHistory.at), col(TaskHistory.id))
    ).all()
    return {task_id: (actor, note) for task_id, actor, note in rows}  # the latest wins


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
