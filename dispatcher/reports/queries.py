"""The report's SQL: counts per (kind, zone, unit) as of the end of a window (DESIGN §7).

Everything is aggregated in the database (one statement per view, ``GROUP BY``), never by
loading tasks into Python, and everything is read "as of the end of the window" from what does
not change afterwards: timestamps that are written once (``received_at``, ``closed_at`` of a
closed task, the first acceptance, feedback answers, history rows, approved extensions, clue
stages), and for a task's unit and deadline at that moment the history row in force then (every
row records the handling unit and the pressing deadline the move left). A report made again
later gives the same figures.

Windows are ``[start, end)`` in UTC; the caller turns the policy's months into them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from dispatcher.enums import TaskKind, TaskStatus
from dispatcher.models import (
    ClueStage,
    Event,
    Extension,
    FeedbackAnswer,
    Task,
    TaskHistory,
    Training,
    TrainingAttendance,
)
from dispatcher.supervision.status import running_late

#: The tasks table itself (not an alias), so the SQL mirrors of ``supervision.status`` apply to it.
T = Task.__table__  # type: ignore[attr-defined]
H = TaskHistory.__table__  # type: ignore[attr-defined]
F = FeedbackAnswer.__table__  # type: ignore[attr-defined]
X = Extension.__table__  # type: ignore[attr-defined]
S = ClueStage.__table__  # type: ignore[attr-defined]
E = Event.__table__  # type: ignore[attr-defined]
TR = Training.__table__  # type: ignore[attr-defined]
TA = TrainingAttendance.__table__  # type: ignore[attr-defined]

REQUEST_KINDS = (TaskKind.complaint.value, TaskKind.enterprise_request.value)
_SATISFIED = ("satisfied", "basically_satisfied")


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


def _seconds(session: Session, later: Any, earlier: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.extract("epoch", later - earlier)
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _state_at(end: datetime, received_from: datetime | None, kinds: Sequence[str]) -> Any:
    """How each task changed since ``end`` stood at ``end``: the handling unit and the pressing
    deadline of its last history row before ``end`` (``task_id``, ``unit``, ``due_at``).

    A task's ``updated_at`` is the time of its last move (every move and only a move writes it,
    with its history row), so a task not moved since ``end`` stands at ``end`` as its row says
    now, and only the tasks moved after ``end`` are looked up here — right after the month, few.
    One pass with ``row_number()``, no per-task subquery.
    """
    changed = sa.and_(T.c.kind.in_(list(kinds)), T.c.received_at < end, T.c.updated_at >= end)
    if received_from is not None:
        changed = sa.and_(changed, T.c.received_at >= received_from)
    ranked = (
        sa.select(
            H.c.task_id,
            H.c.handler_unit,
            H.c.due_at,
            sa.func.row_number()
            .over(partition_by=H.c.task_id, order_by=(H.c.at.desc(), H.c.id.desc()))
            .label("n"),
        )
        .select_from(H.join(T, T.c.id == H.c.task_id))
        .where(H.c.at < end, changed)
        .subquery("ranked")
    )
    return (
        sa.select(ranked.c.task_id, ranked.c.handler_unit.label("unit"), ranked.c.due_at)
        .where(ranked.c.n == 1)
        .subquery("state")
    )


def _unit_columns(state: Any, end: datetime) -> list[Any]:
    """What tells the task's handling unit at ``end`` (today's, unless it changed hands after
    ``end``), as plain columns to group by: grouping by them (not by a CASE over them) lets the
    database estimate the groups and hash them instead of sorting every row. ``units_then``
    folds them into a ``unit``."""
    return [
        T.c.handler_unit.label("unit_now"),
        sa.and_(T.c.handler_since.is_not(None), T.c.handler_since >= end).label("handed_over"),
        state.c.unit.label("unit_then"),
    ]


def units_then(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped by ``_unit_columns`` with their ``unit`` at the window's end."""
    out = []
    for row in rows:
        data = {k: v for k, v in row.items() if k not in ("unit_now", "handed_over", "unit_then")}
        data["unit"] = (row["unit_then"] or row["unit_now"]) if row["handed_over"] else row["unit_now"]
        out.append(data)
    return out


def _past_due(state: Any, end: datetime) -> ColumnElement[bool]:
    """Open at ``end`` and past the deadline it had then: as its history says for a task moved
    since, as its clocks say now (``supervision.status.running_late``) for one that was not."""
    moved = T.c.updated_at >= end
    then = sa.and_(moved, sa.or_(T.c.closed_at.is_(None), T.c.closed_at >= end), state.c.due_at < end)
    still = sa.and_(T.c.updated_at < end, T.c.status != TaskStatus.closed, running_late(end))
    return sa.or_(then, still)


def request_counts(session: Session, w: Window, month_from: datetime | None = None) -> list[dict[str, Any]]:
    """Counts of complaints and enterprise requests received in ``w``, per (kind, zone, unit), and
    ``in_month``: received on or after ``month_from`` (the year to date and its month in one pass)."""
    answers = (
        sa.select(
            F.c.task_id,
            sa.func.count().label("answers"),
            _count(F.c.resolved.is_not(None)).label("resolved_asked"),
            _count(F.c.resolved.is_(True)).label("resolved_yes"),
            _count(F.c.rating.in_(_SATISFIED)).label("satisfied"),
        )
        .where(F.c.answered_at < w.end)
        .group_by(F.c.task_id)
        .subquery("a")
    )
    moves = (
        sa.select(
            H.c.task_id,
            sa.func.max(sa.case((H.c.move == "return", 1), else_=0)).label("returned"),
            sa.func.max(sa.case((H.c.move == "feedback_reopen", 1), else_=0)).label("reopened"),
        )
        .where(H.c.move.in_(["return", "feedback_reopen"]), H.c.at < w.end)
        .group_by(H.c.task_id)
        .subquery("m")
    )
    extended = (
        sa.select(X.c.task_id)
        .where(X.c.status == "approved", X.c.decided_at < w.end)
        .group_by(X.c.task_id)
        .subquery("x")
    )
    state = _state_at(w.end, w.start, REQUEST_KINDS)
    closed = sa.and_(T.c.closed_at.is_not(None), T.c.closed_at < w.end)
    in_month = (T.c.received_at >= (month_from or w.start)).label("in_month")
    groups = [T.c.kind, T.c.zone_code.label("zone"), *_unit_columns(state, w.end), in_month]
    query = (
        sa.select(
            *groups,
            sa.func.count().label("received"),
            _count(closed).label("closed"),
            _count(sa.and_(closed, T.c.submitted_at <= T.c.resolve_due_at)).label("closed_on_time"),
            _handling_seconds(session, closed).label("handling_seconds"),
            _count(sa.and_(T.c.responded_at < w.end, T.c.responded_on_time.is_(True))).label(
                "responded_on_time"
            ),
            sa.func.coalesce(sa.func.sum(answers.c.answers), 0).label("answers"),
            sa.func.coalesce(sa.func.sum(answers.c.resolved_asked), 0).label("resolved_asked"),
            sa.func.coalesce(sa.func.sum(answers.c.resolved_yes), 0).label("resolved_yes"),
            sa.func.coalesce(sa.func.sum(answers.c.satisfied), 0).label("satisfied"),
            sa.func.coalesce(sa.func.sum(moves.c.returned), 0).label("returned"),
            sa.func.coalesce(sa.func.sum(moves.c.reopened), 0).label("reopened"),
            sa.func.count(extended.c.task_id).label("extended"),
            _count(_past_due(state, w.end)).label("late_open"),
            *_handling_buckets(session, closed),
        )
        .select_from(
            T.outerjoin(answers, answers.c.task_id == T.c.id)
            .outerjoin(moves, moves.c.task_id == T.c.id)
            .outerjoin(extended, extended.c.task_id == T.c.id)
            .outerjoin(state, state.c.task_id == T.c.id)
        )
        .where(T.c.kind.in_(REQUEST_KINDS), T.c.received_at >= w.start, T.c.received_at < w.end)
        .group_by(*groups)
    )
    return units_then([dict(r) for r in session.execute(query).mappings()])


#: Handling-time histogram edges, in days (the last bucket is open-ended).
HANDLING_EDGES = (0.0, 1.0, 3.0, 5.0, 10.0, 20.0)


def _handling_seconds(session: Session, closed: ColumnElement[bool]) -> ColumnElement[Any]:
    """Sum over the closed of ``closed_at − received_at`` in seconds. PostgreSQL adds the intervals
    and converts once; SQLite adds Julian days."""
    if session.get_bind().dialect.name == "postgresql":
        spent = sa.func.sum(sa.case((closed, T.c.closed_at - T.c.received_at), else_=None))
        return sa.func.coalesce(sa.func.extract("epoch", spent), 0)
    return sa.func.coalesce(
        sa.func.sum(sa.case((closed, _seconds(session, T.c.closed_at, T.c.received_at)), else_=0)), 0
    )


def _handling_buckets(session: Session, closed: ColumnElement[bool]) -> list[Any]:
    """Closed tasks by handling time: one count per bucket of ``HANDLING_EDGES``. On PostgreSQL
    the bounds are timestamp comparisons (``closed_at < received_at + interval``), far cheaper per
    row than working out each task's days; SQLite compares Julian days."""
    bins: list[float | None] = [*HANDLING_EDGES, None]
    if session.get_bind().dialect.name == "postgresql":

        def at_least(days: float) -> ColumnElement[bool]:
            return T.c.closed_at >= T.c.received_at + sa.literal(timedelta(days=days), sa.Interval())
    else:
        taken = sa.func.julianday(T.c.closed_at) - sa.func.julianday(T.c.received_at)

        def at_least(days: float) -> ColumnElement[bool]:
            return taken >= days

    return [
        _count(sa.and_(closed, at_least(lo), *([] if hi is None else [~at_least(hi)]))).label(f"days_{i}")
        for i, (lo, hi) in enumerate(pairwise(bins))
        if lo is not None
    ]


def overdue_open(session: Session, end: datetime, kinds: Sequence[str]) -> list[dict[str, Any]]:
    """Tasks of ``kinds`` (received any time) open at ``end`` and past due then, per (kind, zone, unit)."""
    state = _state_at(end, None, kinds)
    groups = [T.c.kind, T.c.zone_code.label("zone"), *_unit_columns(state, end)]
    query = (
        sa.select(*groups, sa.func.count().label("overdue_open"))
        .select_from(T.outerjoin(state, state.c.task_id == T.c.id))
        .where(T.c.kind.in_(kinds), T.c.received_at < end, _past_due(state, end))
        .group_by(*groups)
    )
    return units_then([dict(r) for r in session.execute(query).mappings()])


#: Clue figures that count approvals (decided in the window) and openings (started in it).
_OPENED = ("talk_letters", "verifications", "cases_filed")


def clue_counts(
    session: Session, w: Window, month_from: datetime | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Clue figures per (zone, unit) for ``w`` and for its part from ``month_from`` (the year to
    date and its month in one pass each): clues received, and the stages approved, opened or
    concluded (activity of the window), with the case figures of the cases concluded.

    Returns ``(whole window, month)`` rows."""
    month_from = month_from or w.start
    state = _state_at(w.end, None, [TaskKind.clue.value])
    groups = [T.c.zone_code.label("zone"), *_unit_columns(state, w.end)]
    received = (
        sa.select(
            *groups, (T.c.received_at >= month_from).label("in_month"), sa.func.count().label("received")
        )
        .select_from(T.outerjoin(state, state.c.task_id == T.c.id))
        .where(T.c.kind == TaskKind.clue, T.c.received_at >= w.start, T.c.received_at < w.end)
        .group_by(*groups, sa.literal_column("in_month"))
    )
    whole: dict[tuple[Any, Any], dict[str, Any]] = {}
    month: dict[tuple[Any, Any], dict[str, Any]] = {}

    def add(into: dict[tuple[Any, Any], dict[str, Any]], r: Mapping[str, Any], keys: Sequence[str]) -> None:
        row = into.setdefault((r["zone"], r["unit"]), {})
        for k in keys:
            row[k] = row.get(k, 0) + (r.get(k) or 0)

    for r in units_then([dict(r) for r in session.execute(received).mappings()]):
        add(whole, r, ["received"])
        if r["in_month"]:
            add(month, r, ["received"])

    out = S.c.outcome
    decided = sa.and_(S.c.decided_at >= w.start, S.c.decided_at < w.end)
    opened = sa.and_(S.c.started_at >= w.start, S.c.started_at < w.end)
    disposition = out["disposition"].as_string()

    def num(*path: str) -> ColumnElement[Any]:
        return sa.func.coalesce(out[path].as_float(), 0)

    case_done = sa.and_(decided, S.c.stage == "case")
    disposed = sa.and_(decided, S.c.stage == "disposition")
    flags = [
        sa.func.coalesce(S.c.decided_at >= month_from, False).label("decided_in_month"),
        sa.func.coalesce(S.c.started_at >= month_from, False).label("opened_in_month"),
    ]
    stages = (
        sa.select(
            *groups,
            *flags,
            _count(disposed).label("dispositions"),
            *(
                _count(sa.and_(disposed, disposition == d)).label(f"disposition_{d}")
                for d in ("talk_letter", "preliminary_verification", "hold", "close_out")
            ),
            _count(sa.and_(disposed, S.c.submitted_at <= S.c.due_at)).label("dispositions_on_time"),
            _count(sa.and_(opened, S.c.stage == "talk_letter")).label("talk_letters"),
            _count(sa.and_(opened, S.c.stage == "preliminary_verification")).label("verifications"),
            _count(sa.and_(opened, S.c.stage == "case")).label("cases_filed"),
            _count(sa.and_(decided, S.c.result == "concluded")).label("concluded"),
            sa.func.sum(sa.case((case_done, num("disciplined_count")), else_=0)).label("people_disciplined"),
            *(
                sa.func.sum(sa.case((case_done, num("sanctions", k)), else_=0)).label(f"sanction_{k}")
                for k in ("party", "government", "organizational")
            ),
            *(
                sa.func.sum(sa.case((case_done, num("four_forms", k)), else_=0)).label(f"form_{k}")
                for k in ("first", "second", "third", "fourth")
            ),
            sa.func.sum(sa.case((case_done, num("amount_recovered")), else_=0)).label("amount_recovered"),
        )
        .select_from(S.join(T, T.c.id == S.c.task_id).outerjoin(state, state.c.task_id == T.c.id))
        .where(T.c.kind == TaskKind.clue, sa.or_(decided, opened))
        .group_by(*groups, *(sa.literal_column(f.name) for f in flags))
    )
    for r in units_then([dict(r) for r in session.execute(stages).mappings()]):
        figures = [k for k in r if k not in ("zone", "unit", "decided_in_month", "opened_in_month")]
        add(whole, r, figures)
        if r["decided_in_month"]:  # what was approved in the month
            add(month, r, [k for k in figures if k not in _OPENED])
        if r["opened_in_month"]:  # what was opened in the month
            add(month, r, [k for k in figures if k in _OPENED])

    def rows(of: dict[tuple[Any, Any], dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"zone": z, "unit": u, **v} for (z, u), v in of.items()]

    return rows(whole), rows(month)


def training_counts(session: Session, periods: Sequence[str], end: datetime) -> list[dict[str, Any]]:
    """Training tasks of ``periods`` per unit: issued, completed by ``end``, people present and expected."""
    present = (
        sa.select(TA.c.training_id, _count(TA.c.present.is_(True)).label("present"))
        .where(TA.c.marked_at < end)
        .group_by(TA.c.training_id)
        .subquery("p")
    )
    expected = sa.func.json_array_length(TR.c.expected)
    if session.get_bind().dialect.name == "postgresql":
        expected = sa.func.json_array_length(sa.cast(TR.c.expected, sa.JSON))
    query = (
        sa.select(
            TR.c.unit_code.label("unit"),
            sa.func.count().label("issued"),
            _count(sa.and_(T.c.closed_at.is_not(None), T.c.closed_at < end)).label("completed"),
            sa.func.coalesce(sa.func.sum(present.c.present), 0).label("present"),
            sa.func.coalesce(sa.func.sum(expected), 0).label("expected"),
        )
        .select_from(TR.join(T, T.c.id == TR.c.task_id).outerjoin(present, present.c.training_id == TR.c.id))
        .where(TR.c.period.in_(list(periods)))
        .group_by(TR.c.unit_code)
    )
    return [dict(r) for r in session.execute(query).mappings()]


def hot_spots(session: Session, w: Window) -> list[dict[str, Any]]:
    """Clues and complaints received in ``w`` per (township, category)."""
    category = E.c.payload["category"].as_string().label("category")
    query = (
        sa.select(T.c.township_code.label("township"), category, sa.func.count().label("count"))
        .select_from(T.join(E, E.c.id == T.c.event_id))
        .where(
            T.c.kind.in_((TaskKind.clue.value, TaskKind.complaint.value)),
            T.c.received_at >= w.start,
            T.c.received_at < w.end,
        )
        .group_by(T.c.township_code, category)
    )
    return [dict(r) for r in session.execute(query).mappings()]


def repeated_subjects(session: Session, w: Window) -> int:
    """Subjects (keyed hashes) with two or more clues by the end of ``w``, one of them in ``w``."""
    repeated = (
        sa.select(E.c.subject_key)
        .where(E.c.kind == TaskKind.clue, E.c.subject_key.is_not(None), E.c.received_at < w.end)
        .group_by(E.c.subject_key)
        .having(sa.func.count() >= 2, sa.func.max(E.c.received_at) >= w.start)
        .subquery()
    )
    return int(session.execute(sa.select(sa.func.count()).select_from(repeated)).scalar_one())


def counts_by_kind(
    session: Session, bounds: Sequence[datetime], column: str, kinds: Sequence[str]
) -> dict[str, list[int]]:
    """Per kind, how many tasks have ``column`` in each ``[bounds[i], bounds[i+1])`` (one statement)."""
    c = T.c[column]
    buckets = [_count(sa.and_(c >= lo, c < hi)).label(f"b{i}") for i, (lo, hi) in enumerate(pairwise(bounds))]
    rows = session.execute(
        sa.select(T.c.kind, *buckets)
        .where(T.c.kind.in_(list(kinds)), c >= bounds[0], c < bounds[-1])
        .group_by(T.c.kind)
    ).all()
    found = {row[0]: [int(v or 0) for v in row[1:]] for row in rows}
    return {k: found.get(k, [0] * (len(bounds) - 1)) for k in kinds}


def counts_in(session: Session, bounds: Sequence[datetime], column: str, kinds: Sequence[str]) -> list[int]:
    """How many tasks of ``kinds`` have ``column`` in each ``[bounds[i], bounds[i+1])`` (one statement)."""
    c = T.c[column]
    buckets = [_count(sa.and_(c >= lo, c < hi)).label(f"b{i}") for i, (lo, hi) in enumerate(pairwise(bounds))]
    row = session.execute(
        sa.select(*buckets).where(T.c.kind.in_(kinds), c >= bounds[0], c < bounds[-1])
    ).one()
    return [int(v or 0) for v in row]
