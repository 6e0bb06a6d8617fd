"""一月一培训: the monthly training task of each unit (DESIGN §7).

``issue_trainings`` gives every unit (of the kinds the policy names, with staff) a ``PX-`` task
once per period, with the next topic of the policy's curriculum and a suggested topic drawn from
the unit's most frequent rejection and return reasons of the month before (and its reopens).

The rotation is read from what each unit was given before (the ``trainings`` table), not kept in
memory: the next topic is the curriculum's first among those the unit has been given least
often. So it survives restarts, and a curriculum edit simply changes what comes next — a new
topic comes before any repeat, a removed one is never given again.

``mark_attendance``: staff of the unit mark themselves present (签到); its handlers may mark
anyone expected. The report counts issued, completed and attendance (present / expected).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from dispatcher.enums import Role, TaskKind
from dispatcher.enums import TaskStatus as S
from dispatcher.errors import Conflict, Forbidden, NotFound, ValidationFailed
from dispatcher.models import Task, TaskHistory, Training, TrainingAttendance
from dispatcher.monthly.periods import Period
from dispatcher.org.model import Org, Staff, Unit
from dispatcher.supervision.policy import TimePolicy
from dispatcher.tasks.access import Actor, get_task
from dispatcher.tasks.internal import made_once, open_internal_task

SCHEDULER = "system:schedule"
#: Reasons quoted in a suggestion are cut to this many characters.
QUOTE = 40


def next_topic(curriculum: Sequence[str], given: Sequence[str]) -> str:
    """The curriculum's first topic among those given least often (``given``: topics given before)."""
    counts = Counter(t for t in given if t in curriculum)
    return min(curriculum, key=lambda t: (counts[t], curriculum.index(t)))


def suggest(session: Session, unit: str, period: Period, policy: TimePolicy) -> str | None:
    """A topic drawn from last month's most frequent rejection and return reasons of ``unit``'s
    tasks (the reasons staff wrote), or from its reopens (whose comments are the requester's and
    are never quoted); None when nothing happened."""
    previous = period.shift(-1)
    start, end = previous.start(policy.tz), previous.end(policy.tz)
    rows = session.execute(
        sa.select(TaskHistory.move, TaskHistory.note)  # type: ignore[call-overload]
        .join(Task, col(Task.id) == col(TaskHistory.task_id))
        .where(
            col(TaskHistory.move).in_(["reject", "return", "feedback_reopen"]),
            col(TaskHistory.at) >= start,
            col(TaskHistory.at) < end,
            sa.or_(col(TaskHistory.handler_unit) == unit, col(Task.handler_unit) == unit),
        )
    ).all()
    if not rows:
        return None
    reasons = Counter((move, (note or "").strip()) for move, note in rows if move != "feedback_reopen")
    reopens = sum(1 for move, _ in rows if move == "feedback_reopen")
    if reasons:
        (move, reason), count = max(reasons.items(), key=lambda kv: (kv[1], kv[0]))
        if count >= reopens:
            what = "验单退回" if move == "reject" else "退回分办"
            quoted = reason[:QUOTE] + ("…" if len(reason) > QUOTE else "")
            return f"针对“{quoted}”（上月{what}{count}次）开展专题培训"
    return f"针对群众回访不满意（上月重办{reopens}次）开展答复质量培训"


def _open_training(
    session: Session, org: Org, unit: Unit, staff: Sequence[Staff], topic: str, suggestion: str | None,
    period: Period, now: datetime, policy: TimePolicy,
) -> str:  # fmt: skip
    reason = f"{period.year}年{period.month}月培训: {topic}"
    task = open_internal_task(
        session, org, kind=TaskKind.training, zone_code=unit.zone, handler_unit=unit.code, verifier_unit=None,
        rule="monthly_training", reason=reason, by=SCHEDULER, now=now, policy=policy,
    )  # fmt: skip
    assert task.id is not None
    session.add(
        Training(
            unit_code=unit.code, period=str(period), task_id=task.id, topic=topic, suggested_topic=suggestion,
            expected=sorted(s.login for s in staff), created_at=now,
        )
    )  # fmt: skip
    return task.ledger_no


def issue_trainings(
    session: Session, org: Org | None, period: Period, *, now: datetime, policy: TimePolicy
) -> dict[str, Any]:
    """Per unit, the ``PX-`` training task of ``period``; units that have one keep it."""
    if org is None:
        return {"trainings": 0, "note": "no org loaded"}
    curriculum = list(policy.training.curriculum)
    have = set(session.exec(select(Training.unit_code).where(Training.period == str(period))).all())
    made = []
    for unit in org.units:
        staff = org.staff_of(unit.code)
        if unit.kind not in policy.training.unit_kinds or not staff or unit.code in have:
            continue
        given = session.exec(
            select(Training.topic).where(Training.unit_code == unit.code, col(Training.period) < str(period))
        ).all()
        topic = next_topic(curriculum, list(given))
        suggestion = suggest(session, unit.code, period, policy)

        make = partial(_open_training, session, org, unit, staff, topic, suggestion, period, now, policy)
        ledger_no = made_once(session, make)
        if ledger_no is not None:
            made.append(ledger_no)
    return {"trainings": len(made), "tasks": made}


def training_of(session: Session, task: Task) -> Training | None:
    return session.exec(select(Training).where(Training.task_id == task.id)).first()


def attendance_of(session: Session, training: Training) -> dict[str, Any]:
    marks = {
        a.login: a
        for a in session.exec(select(TrainingAttendance).where(TrainingAttendance.training_id == training.id))
    }
    people = [
        {"login": login, "present": marks[login].present if login in marks else None,
         "marked_by": marks[login].marked_by if login in marks else None}
        for login in training.expected
    ]  # fmt: skip
    present = sum(1 for p in people if p["present"])
    return {
        "topic": training.topic,
        "suggested_topic": training.suggested_topic,
        "period": training.period,
        "expected": len(training.expected),
        "present": present,
        "people": people,
    }


def mark_attendance(
    session: Session,
    actor: Actor,
    task_id: int,
    *,
    logins: Sequence[str],
    present: bool,
    now: datetime,
) -> dict[str, Any]:
    """签到: ``logins`` (default: the actor) present or not at the training ``task_id``."""
    task = get_task(session, actor, task_id)
    if task.kind != TaskKind.training:
        raise NotFound(f"task {task_id} is not a training")
    training = training_of(session, task)
    if training is None:
        raise NotFound(f"task {task_id} has no training record")
    if task.status == S.closed:
        raise Conflict(f"the training {task.ledger_no} is closed; attendance can no longer change",
                       details={"current": task.status})  # fmt: skip
    who = list(dict.fromkeys(logins)) or [actor.login]
    unknown = [login for login in who if login not in training.expected]
    if unknown:
        raise ValidationFailed(
            f"not expected at this training: {', '.join(unknown)}",
            details=[
                {"path": "logins", "message": f"{login} is not staff of {training.unit_code}"}
                for login in unknown
            ],
        )
    organiser = actor.has(Role.admin) or (actor.has(Role.handler) and actor.unit == training.unit_code)
    if who != [actor.login] and not organiser:
        raise Forbidden("only a handler of the unit marks others; mark yourself with no logins")
    table = TrainingAttendance.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for login in who:  # one statement each: two people marking at once both land, the later wins
        statement = insert(table).values(
            training_id=training.id, login=login, present=present, marked_by=actor.login, marked_at=now
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["training_id", "login"],
                set_={"present": present, "marked_by": actor.login, "marked_at": now},
            )
        )
    session.flush()
    return attendance_of(session, training)
