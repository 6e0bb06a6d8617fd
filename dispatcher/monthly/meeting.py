"""一月一调度: the monthly dispatch meeting of each zone (DESIGN §7).

``hold_meetings`` makes, per zone, a ``DD-`` task for the zone leader (handled by the zone's room)
with its agenda, once per period. The agenda is data naming tasks by id: last month's decisions
and their state; open and overdue work by unit; stale items; held clues due for review;
difficult items proposed for 提级/交叉/联合办案 or reinforcement; load per unit with a suggested
re-balancing; unsatisfied and reopened items. It carries no personal data (ledger number, kind,
unit, state, township and category only), and each reader sees it through ``agenda_for``: an
item whose task the reader is recused from is shown without its details.

``record_decision``: a decision taken at the meeting becomes a follow-up task (``DD-``) for its
owner with a deadline, supervised like any other; the next month's agenda opens with its state.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dispatcher.enums import OPEN_TASK_STATUSES, DeadlineState, TaskKind
from dispatcher.enums import TaskStatus as S
from dispatcher.errors import Conflict, Forbidden, NotFound, ValidationFailed
from dispatcher.models import Event, FeedbackAnswer, Meeting, MeetingDecision, Task, TaskHistory
from dispatcher.monthly.periods import Period
from dispatcher.org.model import Org, UnitKind, Zone
from dispatcher.routing.conflict import designation_refusal
from dispatcher.supervision.deadlines import DayKind, TimeLimit, due_at
from dispatcher.supervision.policy import TimePolicy
from dispatcher.tasks.access import Actor, can_see, get_task
from dispatcher.tasks.internal import made_once, open_internal_task

#: At most this many items per agenda section (the rest are counted).
SECTION_LIMIT = 50
SCHEDULER = "system:schedule"
OPEN = [s.value for s in OPEN_TASK_STATUSES]


def _item(task: Task, category: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "task_id": task.id, "ledger_no": task.ledger_no, "kind": task.kind, "status": task.status,
        "unit": task.handler_unit, "township": task.township_code, "category": category,
        "deadline_state": task.deadline_state, "escalation_level": task.escalation_level,
        "updated_at": task.updated_at.isoformat(), **extra,
    }  # fmt: skip


def _categories(session: Session, tasks: list[Task]) -> dict[int, str | None]:
    ids = [t.event_id for t in tasks if t.event_id]
    if not ids:
        return {}
    rows = session.exec(select(Event.id, Event.payload).where(col(Event.id).in_(ids))).all()
    by_event = {eid: (payload or {}).get("category") for eid, payload in rows}
    return {t.id: by_event.get(t.event_id) for t in tasks if t.id is not None and t.event_id}


def _section(session: Session, tasks: list[Task], **extra_of: Any) -> dict[str, Any]:
    shown = tasks[:SECTION_LIMIT]
    categories = _categories(session, shown)
    return {
        "total": len(tasks),
        "items": [
            _item(t, categories.get(t.id or 0), **{k: f(t) for k, f in extra_of.items()}) for t in shown
        ],
    }


def build_agenda(
    session: Session, org: Org, zone_code: str, period: Period, now: datetime, policy: TimePolicy
) -> dict[str, Any]:
    """The agenda of ``zone_code``'s meeting of ``period``, as the zone stands at ``now``."""
    tz = policy.tz
    zone_tasks = select(Task).where(Task.zone_code == zone_code, col(Task.kind) != TaskKind.monthly_dispatch)
    open_tasks = list(session.exec(zone_tasks.where(col(Task.status).in_(OPEN))).all())
    previous = period.shift(-1)
    last_start, last_end = previous.start(tz), previous.end(tz)

    # 1. last month's decisions and their state
    decisions = []
    last = session.exec(
        select(Meeting).where(Meeting.zone_code == zone_code, Meeting.period == str(previous))
    ).first()
    if last is not None:
        for d in session.exec(
            select(MeetingDecision)
            .where(MeetingDecision.meeting_id == last.id)
            .order_by(col(MeetingDecision.id))
        ):
            follow = session.get(Task, d.follow_up_task_id)
            decisions.append({
                "text": d.text, "owner_unit": d.owner_unit, "due_at": d.due_at.isoformat(),
                "task_id": d.follow_up_task_id, "ledger_no": follow.ledger_no if follow else None,
                "status": follow.status if follow else None,
                "deadline_state": follow.deadline_state if follow else None,
                "about_task_id": d.about_task_id,
            })  # fmt: skip

    # 2. open and overdue work by unit; 7. load and re-balancing
    by_unit: dict[str, Counter[str]] = {}
    for t in open_tasks:
        counts = by_unit.setdefault(t.handler_unit or "-", Counter())
        counts["open"] += 1
        if t.deadline_state in (DeadlineState.overdue, DeadlineState.escalated):
            counts["overdue"] += 1
        if t.deadline_state == DeadlineState.escalated:
            counts["escalated"] += 1
    load = [
        {"unit": u, "open": c["open"], "overdue": c["overdue"], "escalated": c["escalated"]}
        for u, c in sorted(by_unit.items(), key=lambda kv: (-kv[1]["open"], kv[0]))
    ]
    townships = [u.code for u in org.units if u.kind is UnitKind.township_commission and u.zone == zone_code]
    township_load = sorted((by_unit.get(u, Counter())["open"], u) for u in townships)
    rebalance = None
    if len(township_load) >= 2:
        (low, least), (high, most) = township_load[0], township_load[-1]
        if high - low >= policy.meeting.rebalance_gap:
            rebalance = {"from": most, "to": least, "from_open": high, "to_open": low,
                         "move": (high - low) // 2}  # fmt: skip

    overdue = sorted(
        (t for t in open_tasks if t.deadline_state in (DeadlineState.overdue, DeadlineState.escalated)),
        key=lambda t: (-t.escalation_level, t.received_at),
    )
    stale_before = now - timedelta(days=policy.meeting.stale_days)
    stale = sorted(
        (t for t in open_tasks if t.updated_at < stale_before and t.status != S.held),
        key=lambda t: t.updated_at,
    )
    review_by = period.end(tz)
    held = list(  # held clues are not open work (no clock runs), but their review comes back here
        session.exec(
            zone_tasks.where(
                col(Task.status) == S.held,
                col(Task.review_due_at).is_not(None),
                col(Task.review_due_at) < review_by,
            ).order_by(col(Task.review_due_at))
        ).all()
    )

    # 5. difficult items: escalated, returned twice or more, reopened twice or more
    ids = [t.id for t in open_tasks if t.id is not None]
    moved: dict[tuple[int, str], int] = {}
    if ids:
        rows = session.execute(
            sa.select(TaskHistory.task_id, TaskHistory.move, sa.func.count())  # type: ignore[call-overload]
            .where(
                col(TaskHistory.task_id).in_(ids), col(TaskHistory.move).in_(["return", "feedback_reopen"])
            )
            .group_by(TaskHistory.task_id, TaskHistory.move)
        ).all()
        moved = {(task_id, move): n for task_id, move, n in rows}

    def proposal(t: Task) -> str | None:
        if t.escalation_level >= 1:
            return "joint" if t.kind == TaskKind.clue and t.rule == "cross_handling" else "escalate"
        if moved.get((t.id or 0, "return"), 0) >= 2:
            return "designate"
        if moved.get((t.id or 0, "feedback_reopen"), 0) >= 2:
            return "reinforce"
        return None

    difficult = [t for t in open_tasks if proposal(t) is not None]
    difficult.sort(key=lambda t: (-t.escalation_level, t.received_at))

    # 8. unsatisfied and reopened: answered unsatisfied last month, or reopened now
    unsatisfied_ids = set(
        session.exec(
            select(FeedbackAnswer.task_id).where(
                FeedbackAnswer.rating == "unsatisfied",
                col(FeedbackAnswer.answered_at) >= last_start,
                col(FeedbackAnswer.answered_at) < last_end,
            )
        ).all()
    )
    unsatisfied = list(
        session.exec(
            zone_tasks.where(
                sa.or_(col(Task.id).in_(unsatisfied_ids or [-1]), col(Task.status) == S.reopened)
            ).order_by(col(Task.received_at))
        ).all()
    )

    return {
        "zone": zone_code,
        "period": str(period),
        "as_of": now.isoformat(),
        "sections": {
            "decisions": {"total": len(decisions), "items": decisions},
            "load": {"total": len(load), "items": load, "rebalance": rebalance},
            "overdue": _section(session, overdue),
            "stale": _section(session, stale, idle_days=lambda t: (now - t.updated_at).days),
            "held_review": _section(session, held, review_due_at=lambda t: t.review_due_at.isoformat()),
            "difficult": _section(session, difficult, proposal=proposal),
            "unsatisfied": _section(session, unsatisfied),
        },
    }


def _open_meeting(
    session: Session, org: Org, zone: Zone, period: Period, now: datetime, policy: TimePolicy
) -> str:
    agenda = build_agenda(session, org, zone.code, period, now, policy)
    reason = f"{period.year}年{period.month}月{zone.name}月度调度会"
    task = open_internal_task(
        session, org, kind=TaskKind.monthly_dispatch, zone_code=zone.code, handler_unit=zone.room,
        verifier_unit=None, rule="monthly_dispatch", reason=reason, by=SCHEDULER, now=now, policy=policy,
    )  # fmt: skip
    assert task.id is not None
    session.add(
        Meeting(zone_code=zone.code, period=str(period), task_id=task.id, agenda=agenda, created_at=now)
    )
    return task.ledger_no


def hold_meetings(
    session: Session, org: Org | None, period: Period, *, now: datetime, policy: TimePolicy
) -> dict[str, Any]:
    """Per zone, the ``DD-`` meeting task of ``period`` with its agenda; zones that have one keep it."""
    if org is None:
        return {"meetings": 0, "note": "no org loaded"}
    made = []
    for zone in org.zones:
        if session.exec(
            select(Meeting.id).where(Meeting.zone_code == zone.code, Meeting.period == str(period))
        ).first():
            continue

        ledger_no = made_once(session, partial(_open_meeting, session, org, zone, period, now, policy))
        if ledger_no is not None:
            made.append(ledger_no)
    return {"meetings": len(made), "tasks": made}


# -- reading and deciding -------------------------------------------------------------------------


def meeting_of(session: Session, task: Task) -> Meeting | None:
    return session.exec(select(Meeting).where(Meeting.task_id == task.id)).first()


def agenda_for(session: Session, actor: Actor, meeting: Meeting) -> dict[str, Any]:
    """The agenda as ``actor`` may read it: an item whose task the actor is recused from, or may not
    see, keeps only its ledger number (the meeting knows it exists, not what it is)."""
    agenda = dict(meeting.agenda)
    ids = {
        item["task_id"]
        for section in agenda.get("sections", {}).values()
        for item in section.get("items", [])
        if isinstance(item, dict) and item.get("task_id")
    }
    tasks = {t.id: t for t in session.exec(select(Task).where(col(Task.id).in_(ids or [-1]))).all()}

    def readable(item: dict[str, Any]) -> dict[str, Any]:
        task = tasks.get(item.get("task_id"))
        if task is None or actor.login in task.recused_logins or not can_see(actor, task):
            return {"task_id": None, "ledger_no": item.get("ledger_no"), "withheld": True}
        return item

    sections = {}
    for name, section in agenda.get("sections", {}).items():
        items = [
            readable(i) if isinstance(i, dict) and "task_id" in i else i for i in section.get("items", [])
        ]
        sections[name] = {**section, "items": items}
    return {**agenda, "sections": sections}


def decisions_of(session: Session, meeting: Meeting) -> list[dict[str, Any]]:
    rows = session.exec(
        select(MeetingDecision)
        .where(MeetingDecision.meeting_id == meeting.id)
        .order_by(col(MeetingDecision.id))
    ).all()
    out = []
    for d in rows:
        follow = session.get(Task, d.follow_up_task_id)
        out.append({
            "id": d.id, "text": d.text, "owner_unit": d.owner_unit, "due_at": d.due_at.isoformat(),
            "about_task_id": d.about_task_id, "task_id": d.follow_up_task_id,
            "ledger_no": follow.ledger_no if follow else None, "status": follow.status if follow else None,
            "decided_by": d.decided_by, "decided_at": d.decided_at.isoformat(),
        })  # fmt: skip
    return out


def record_decision(
    session: Session,
    actor: Actor,
    task_id: int,
    *,
    text: str,
    owner_unit: str,
    due: datetime | None,
    about_task_id: int | None,
    org: Org | None,
    now: datetime,
    policy: TimePolicy,
) -> dict[str, Any]:
    """A decision of the meeting ``task_id``: a follow-up task for ``owner_unit`` due at ``due``
    (default: the policy's ``decision_workdays``), subject to rule 5 when it is about a task."""
    task = get_task(session, actor, task_id)
    if task.kind != TaskKind.monthly_dispatch:
        raise NotFound(f"task {task_id} is not a dispatch meeting")
    if not actor.leads(task):
        raise Forbidden("only the zone's leader (or an admin) records the meeting's decisions")
    if task.status not in (S.dispatched, S.accepted):
        raise Conflict(
            f"the meeting {task.ledger_no} is {task.status}; decisions are recorded while it is open",
            details={"current": task.status},
        )
    meeting = meeting_of(session, task)
    if meeting is None or org is None:
        raise Conflict("the meeting has no agenda (no org was loaded when it was made)")
    problems = []
    text = (text or "").strip()
    if not text:
        problems.append({"path": "text", "message": "required"})
    owner = org.units_by_code.get(owner_unit or "")
    if owner is None:
        problems.append({"path": "owner_unit", "message": f"unknown unit {owner_unit!r}"})
    if due is not None and due <= now:
        problems.append({"path": "due", "message": "the deadline must lie ahead"})
    if problems:
        raise ValidationFailed("the decision is incomplete", details=problems)
    assert owner is not None
    recused: list[str] = []
    if about_task_id is not None:
        about = get_task(session, actor, about_task_id)
        if actor.login in about.recused_logins:
            raise Forbidden(f"回避: {actor.login} is recused from task {about.ledger_no}")
        event = session.get(Event, about.event_id) if about.event_id else None
        refusal = designation_refusal(about.kind, event.payload if event else {}, org, owner.code,
                                      recused=about.recused_logins)  # fmt: skip
        if refusal:
            raise Forbidden(refusal)
        recused = list(about.recused_logins)
    zone = org.zones_by_code.get(task.zone_code or "")
    verifier = zone.room if zone is not None and zone.room != owner.code else org.commission.clue_verifier
    if due is None:  # the policy's decision deadline, in working days
        due = due_at(now, TimeLimit(policy.meeting.decision_workdays, DayKind.working), policy.frame())
    follow = open_internal_task(
        session, org, kind=TaskKind.follow_up, zone_code=task.zone_code, handler_unit=owner.code,
        verifier_unit=verifier, rule="meeting_decision", reason=f"调度会决定: {text}", by=actor.login,
        now=now, policy=policy, resolve_due=due, recused=recused,
    )  # fmt: skip
    assert meeting.id is not None and follow.id is not None and task.id is not None
    decision = MeetingDecision(
        meeting_id=meeting.id, text=text, owner_unit=owner.code, due_at=due, about_task_id=about_task_id,
        follow_up_task_id=follow.id, decided_by=actor.login, decided_at=now,
    )  # fmt: skip
    session.add(decision)
    session.add(
        TaskHistory(
            task_id=task.id, at=now, actor=actor.login, move="decision", from_status=task.status,
            to_status=task.status, note=f"{follow.ledger_no} {text}", handler_unit=task.handler_unit,
            due_at=task.resolve_due_at,
        )
    )  # fmt: skip
    session.flush()
    return {
        "decision_id": decision.id,
        "task_id": follow.id,
        "ledger_no": follow.ledger_no,
        "due_at": due.isoformat(),
    }
