"""Working a task: every move goes through ``apply_move`` (DESIGN §6, §8).

The guarded write (``tasks.guard``) checks visibility, role and unit, recusal and the version the
actor read; then the lifecycle allows the move now (``IllegalMove``), and the body carries what
the move needs (``ValidationFailed``). A move's effects are its column changes, the state it
leads to where the lifecycle leaves that open (``lifecycle.DECIDED``), the clocks it starts,
pauses or stops (``supervision.clocks.clock_changes``), its history note, the units it notifies
and, for a clue, the record of its stages (``clue_stages``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from dispatcher.enums import Role, Stage, TaskKind
from dispatcher.enums import TaskStatus as S
from dispatcher.errors import Conflict, Forbidden, ValidationFailed
from dispatcher.models import ClueStage, Event, FeedbackAnswer, Task
from dispatcher.notify.inbox import add_notification
from dispatcher.org.model import Org
from dispatcher.routing.conflict import assist_refusal, default_verifier, designation_refusal
from dispatcher.supervision.clocks import clock_changes
from dispatcher.supervision.deadlines import extend
from dispatcher.supervision.policy import TimePolicy
from dispatcher.tasks import guard, stages
from dispatcher.tasks.access import Actor, may
from dispatcher.tasks.internal import CLOSE_ON_SUBMIT, INTERNAL_KINDS
from dispatcher.tasks.lifecycle import Move, next_status
from dispatcher.tasks.outcomes import validate_feedback, validate_outcome

#: The requester's rating, in the words a closure notification uses.
_RATED = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}

#: A unit may return a wrongly routed task within this many working days of dispatch (DESIGN §1).
RETURN_WINDOW_WORKDAYS = 5


@dataclass(frozen=True, slots=True)
class MoveRequest:
    """The body of a move (``reason``, ``note``, ``outcome``, ``unit``…) and the version the actor saw."""

    move: Move
    reason: str | None = None
    note: str | None = None
    outcome: Any = None
    unit: str | None = None
    verifier_unit: str | None = None
    units: tuple[str, ...] = ()
    logins: tuple[str, ...] = ()
    feedback: Any = None
    version: int | None = None


@dataclass
class Effects:
    """What a legal move does besides its state: columns, the note, notifications, a clue's stage."""

    note: str
    changes: dict[str, Any] = field(default_factory=dict)
    #: (unit, notification kind, message): for everyone of the unit.
    notify: list[tuple[str, str, str]] = field(default_factory=list)
    #: (unit, notification kind, message, login): for one person (who handled the task).
    tell: list[tuple[str, str, str, str]] = field(default_factory=list)

    def to_handler(self, task: Task, kind: str, message: str) -> None:
        """Tell who handled ``task`` (their own inbox), or its unit when nobody accepted it yet."""
        if task.handler_login and task.handler_unit:
            self.tell.append((task.handler_unit, kind, message, task.handler_login))
        elif task.handler_unit:
            self.notify.append((task.handler_unit, kind, message))

    #: The state the move leads to where the lifecycle leaves it to the move (``lifecycle.DECIDED``).
    decided: S | None = None
    #: A clue enters this stage (its resolve clock starts now).
    stage: Stage | None = None
    redispatched: bool = False
    #: 回访: the requester's answer, kept apart (a reopened task is asked again).
    answer: FeedbackAnswer | None = None


def _required(value: str | None, what: str) -> str:
    if value is None or not value.strip():
        raise ValidationFailed(f"{what} is required", details=[{"path": what, "message": "required"}])
    return value.strip()


def apply_move(
    session: Session,
    actor: Actor,
    task_id: int,
    request: MoveRequest,
    *,
    now: datetime,
    org: Org | None,
    policy: TimePolicy,
) -> Task:
    """Make one move; the caller's unit of work commits it with its history and notifications."""
    move = request.move
    task = guard.get_task(session, actor, task_id)
    guard.check(
        actor, task, permitted=may(actor, task, move),
        refusal=f"a {actor.role} of {actor.unit or 'no unit'} may not {move.value} this task",
    )  # fmt: skip
    seen = guard.seen_version(task, request.version)
    resume_to = S(task.suspended_from) if task.suspended_from else None
    next_status(S(task.status), move, kind=task.kind, resume_to=resume_to)  # legal now? (IllegalMove)

    effects = _effects(session, actor, task, request, now=now, org=org, policy=policy)
    target = next_status(S(task.status), move, kind=task.kind, resume_to=resume_to, decided=effects.decided)
    changes = effects.changes
    changes.update(
        clock_changes(
            session, task.model_copy(update=changes), target, now=now, policy=policy,
            redispatched=effects.redispatched, stage=effects.stage,
        )
    )  # fmt: skip
    status_before = task.status
    guard.write(
        session,
        task,
        seen,
        changes,
        actor=actor,
        move=move.value,
        to_status=target,
        note=effects.note,
        now=now,
    )
    if task.kind == TaskKind.clue:
        _record_stage(session, task, move, status_before, actor=actor, now=now)
    if effects.answer is not None:
        session.add(effects.answer)
    for unit, kind, message in effects.notify:
        add_notification(session, org, unit_code=unit, task=task, kind=kind, message=message, now=now)
    for unit, kind, message, login in effects.tell:
        add_notification(
            session, org, unit_code=unit, task=task, kind=kind, message=message, now=now, login=login
        )
    return task


def _effects(
    session: Session,
    actor: Actor,
    task: Task,
    request: MoveRequest,
    *,
    now: datetime,
    org: Org | None,
    policy: TimePolicy,
) -> Effects:
    """The effects of a legal move (see ``Effects``)."""
    move = request.move
    fx = Effects(note=(request.note or request.reason or "").strip())

    if move is Move.accept:
        fx.changes.update(handler_login=actor.login, accepted_at=now)
        if task.responded_at is None:  # 响应: the first acceptance, by the deadline then in force
            on_time = task.accept_due_at is None or now <= task.accept_due_at
            fx.changes.update(responded_at=now, responded_on_time=on_time)
        if task.acknowledge_due_at is not None and task.acknowledged_at is None:
            fx.changes["acknowledged_at"] = now  # 受理告知: the reporter's platform reads it on the event
    elif move is Move.return_:
        fx.note = _required(request.reason, "reason")
        if task.kind in INTERNAL_KINDS:
            raise Conflict(
                f"a {task.kind} task was not routed and cannot be returned; ask the zone leader to designate",
                details={"current": task.status, "kind": task.kind},
            )
        dispatched = (task.dispatched_at or task.created_at).astimezone(policy.tz).date()
        used = policy.work_calendar().workdays_after(dispatched, now.astimezone(policy.tz).date())
        if used > RETURN_WINDOW_WORKDAYS:
            raise Conflict(
                f"a task may be returned within {RETURN_WINDOW_WORKDAYS} working days of dispatch; "
                f"{used} have passed",
                details={"current": task.status, "workdays_since_dispatch": used},
            )
        fx.changes.update(handler_login=None)
        if org is not None and task.zone_code in org.zones_by_code:
            room = org.zones_by_code[task.zone_code].room
            fx.notify.append((room, "returned", f"{task.ledger_no} 被{task.handler_unit}退回: {fx.note}"))
    elif move is Move.progress:
        fx.note = _required(request.note, "note")
    elif move is Move.submit:
        _submit(task, request, fx, now=now)
    elif move is Move.verify:
        _verify(task, fx, now=now, policy=policy)
    elif move is Move.reject:
        fx.note = _required(request.reason, "reason")
        fx.to_handler(task, "rejected", f"{task.ledger_no} 验单不通过: {fx.note}")
    elif move in (Move.feedback_close, Move.feedback_reopen):
        feedback = validate_feedback(request.feedback)
        # The rating is the move (feedback_reopen: unsatisfied) or the close reason; the note keeps
        # the requester's own words.
        fx.note = feedback.comment or ""
        fx.changes.update(
            feedback_rating=feedback.rating, feedback_resolved=feedback.resolved, feedback_due_at=None
        )
        fx.answer = FeedbackAnswer(
            task_id=task.id,  # type: ignore[arg-type]
            answered_at=now,
            rating=feedback.rating,
            resolved=feedback.resolved,
        )
        if move is Move.feedback_close:
            fx.changes.update(closed_at=now, close_reason=feedback.rating)
            fx.to_handler(
                task,
                "closed",
                f"{task.ledger_no} 已办结（回访：{_RATED.get(feedback.rating, feedback.rating)}）",
            )
        else:
            fx.to_handler(task, "reopened", f"{task.ledger_no} 回访不满意，重新办理")
    elif move is Move.feedback_expire:
        fx.note = "回访期满未答复，按无回复办结"
        fx.changes.update(closed_at=now, close_reason="no_response", feedback_due_at=None)
        fx.to_handler(task, "closed", f"{task.ledger_no} 已办结（回访期满无答复）")
    elif move is Move.suspend:
        fx.note = _required(request.reason, "reason")
        fx.changes.update(suspended_from=task.status)
    elif move is Move.resume:
        fx.changes.update(suspended_from=None)
    elif move in (Move.designate, Move.route):
        fx.note = _required(request.reason, "reason")
        unit = _required(request.unit, "unit")
        fx.changes.update(_reassign(session, task, unit, request.verifier_unit, org=org))
        fx.changes.update(
            handler_login=None, accepted_at=None, dispatched_at=now, handler_since=now, suspended_from=None
        )
        fx.redispatched = True
        kind = "designated" if move is Move.designate else "dispatched"
        said = "指定由贵单位办理" if move is Move.designate else "已分办"
        fx.notify.append((unit, kind, f"{task.ledger_no} {said}: {fx.note}"))
    elif move is Move.co_handle:
        _co_handle(session, task, request, fx, org=org)
    elif move is Move.recuse:
        _recuse(task, actor, fx, org=org)
    elif move is Move.review:
        fx.note = _required(request.reason, "reason")
        fx.changes.update(review_due_at=None, outcome=None, submitted_at=None)
        fx.stage = Stage.disposition
        if task.handler_unit:
            fx.notify.append(
                (task.handler_unit, "review", f"{task.ledger_no} 暂存待查线索重新处置: {fx.note}")
            )
    return fx


def _submit(task: Task, request: MoveRequest, fx: Effects, *, now: datetime) -> None:
    """办结报送: the outcome of the kind, or of the clue's stage; a referral closes when recorded."""
    if task.kind == TaskKind.clue:
        stage = task.stage or Stage.disposition
        fx.changes.update(outcome=stages.validate_stage_outcome(stage, request.outcome), submitted_at=now)
        if stage == Stage.referral:  # 上报 is recorded, not approved: the clue leaves the county
            fx.decided = S.closed
            fx.changes.update(closed_at=now, close_reason="referred")
            if task.acknowledge_due_at is not None and task.acknowledged_at is None:
                fx.changes["acknowledged_at"] = now
    else:
        fx.changes.update(outcome=validate_outcome(task.kind, request.outcome), submitted_at=now)
        if task.kind in CLOSE_ON_SUBMIT:  # a meeting or a training is recorded, not verified
            fx.decided = S.closed
            fx.changes.update(closed_at=now, close_reason="recorded")


def _verify(task: Task, fx: Effects, *, now: datetime, policy: TimePolicy) -> None:
    """验单 / 审批: a request waits for feedback; a clue's stage opens the next, holds or concludes."""
    fx.changes.update(verified_at=now)
    fx.to_handler(task, "verified", f"{task.ledger_no} 验单通过")
    if TaskKind(task.kind).asks_feedback:
        fx.changes.update(feedback_due_at=policy.feedback_due(task.kind, now))
        return
    if task.kind != TaskKind.clue:
        fx.decided = S.closed
        fx.changes.update(closed_at=now, close_reason="verified")
        return
    verdict = stages.after_approval(task.stage or Stage.disposition, task.outcome or {})
    if isinstance(verdict, Stage):
        fx.decided, fx.stage = S.accepted, verdict
        fx.changes.update(outcome=None, submitted_at=None)
        fx.note = fx.note or f"审批通过，进入{verdict.value}"
    elif verdict is stages.Next.held:
        clocks = policy.clocks_for(task.kind)
        every = clocks.hold_review if clocks is not None else None
        review = extend(now, every.days, every.kind, policy.frame()) if every is not None else None
        fx.decided = S.held
        fx.changes.update(review_due_at=review)
    else:
        fx.decided = S.closed
        fx.changes.update(closed_at=now, close_reason="verified")


def _record_stage(
    session: Session, task: Task, move: Move, before: str, *, actor: Actor, now: datetime
) -> None:
    """Keep ``clue_stages`` in step with the clue: a row per stage run, its submission and approval."""
    record_stage(session, task, move=move, opened=move is Move.review or (
        move is Move.verify and before == S.submitted and task.status == S.accepted
    ), actor=actor, now=now)  # fmt: skip


def record_stage(
    session: Session, task: Task, *, move: Move | None, opened: bool, actor: Actor, now: datetime
) -> None:
    """The stage rows of ``task`` after ``move`` (``None``: routing made the task)."""
    current = session.exec(
        select(ClueStage)
        .where(ClueStage.task_id == task.id, col(ClueStage.decided_at).is_(None))
        .order_by(col(ClueStage.id).desc())
    ).first()
    if current is not None:
        if move is Move.submit:
            current.submitted_at, current.outcome = now, task.outcome
            if task.status == S.closed:  # a referral: recorded on submission, not approved
                current.decided_at, current.decided_by, current.result = (
                    now,
                    actor.login,
                    stages.Next.concluded,
                )
        elif move is Move.reject:
            current.submitted_at = None  # the approved submission is the one that counts
        elif move is Move.verify:
            current.decided_at, current.decided_by = now, actor.login
            held, concluded = stages.Next.held.value, stages.Next.concluded.value
            current.result = task.stage if opened else held if task.status == S.held else concluded
        if current.decided_at is None and current.stage == (task.stage or Stage.disposition):
            current.due_at = task.resolve_due_at  # follows the first dispatch and extensions
        session.add(current)
    active = task.status not in (S.closed, S.held)
    if opened or (current is None and active):
        session.add(
            ClueStage(
                task_id=task.id,  # type: ignore[arg-type]
                stage=task.stage or Stage.disposition,
                started_at=task.resolve_started_at or task.received_at,
                due_at=task.resolve_due_at,
            )
        )


def _co_handle(session: Session, task: Task, request: MoveRequest, fx: Effects, *, org: Org | None) -> None:
    """增派协助: units or staff join; rule 5 still applies to them (回避, in words)."""
    reason = _required(request.reason, "reason")
    units, logins = _known(org, request.units, request.logins)
    if org is not None:
        payload = _payload(session, task)
        for who in [*units, *logins]:
            refusal = assist_refusal(task.kind, payload, org, who, recused=task.recused_logins)
            if refusal:
                raise Forbidden(refusal, details={"recusal": who})
    fx.changes.update(
        assisting_units=sorted({*task.assisting_units, *units}),
        assisting_logins=sorted({*task.assisting_logins, *logins}),
    )
    fx.note = f"增派协助 {', '.join([*units, *logins])}: {reason}"
    staff_units = {s.login: s.unit for s in org.staff} if org is not None else {}
    helped = dict.fromkeys([*units, *(staff_units[x] for x in logins if x in staff_units)])
    fx.notify += [(u, "assist", f"{task.ledger_no} 请协助办理: {reason}") for u in helped]


def _recuse(task: Task, actor: Actor, fx: Effects, *, org: Org | None) -> None:
    """自行回避: the person leaves the task for good; its handling unit's other handlers carry on, or,
    with none left, it goes back to the zone leader (returned) to be designated elsewhere."""
    fx.note = f"自行回避: {fx.note}" if fx.note else "自行回避"
    fx.changes["recused_logins"] = sorted({*task.recused_logins, actor.login})
    fx.changes["assisting_logins"] = [x for x in task.assisting_logins if x != actor.login]
    if task.handler_login == actor.login:
        fx.changes["handler_login"] = None
    if not actor.has(Role.handler) or actor.unit != task.handler_unit or org is None:
        return
    others = [
        s.login for s in org.staff_of(task.handler_unit or "")
        if Role.handler in s.roles and s.login != actor.login and s.login not in task.recused_logins
    ]  # fmt: skip
    if others:
        fx.notify.append(
            (task.handler_unit or "", "recused", f"{task.ledger_no} {actor.login} 回避，请另行承办")
        )
        return
    fx.decided = S.returned
    fx.changes.update(handler_login=None, suspended_from=None)
    zone = org.zones_by_code.get(task.zone_code or "")
    if zone is not None:
        fx.notify.append(
            (zone.room, "returned", f"{task.ledger_no} {task.handler_unit} 承办人员均已回避，请指定办案")
        )


def _payload(session: Session, task: Task) -> dict[str, Any]:
    event = session.get(Event, task.event_id) if task.event_id else None
    return event.payload if event is not None else {}


def _known(org: Org | None, units: Iterable[str], logins: Iterable[str]) -> tuple[list[str], list[str]]:
    units, logins = list(units), list(logins)
    if not units and not logins:
        raise ValidationFailed(
            "name at least one unit or login to assist", details=[{"path": "units", "message": "empty"}]
        )
    if org is not None:
        bad = [u for u in units if u not in org.units_by_code]
        bad += [login for login in logins if login not in {s.login for s in org.staff}]
        if bad:
            raise ValidationFailed(
                f"unknown: {', '.join(bad)}", details=[{"path": "units", "message": "unknown"}]
            )
    return units, logins


def _reassign(
    session: Session, task: Task, unit: str, verifier: str | None, *, org: Org | None
) -> dict[str, Any]:
    """指定办案 / 分办: a new handling unit, still subject to rule 5 (回避)."""
    if org is None or unit not in org.units_by_code:
        raise ValidationFailed(
            f"unknown unit {unit!r}", details=[{"path": "unit", "message": "unknown unit"}]
        )
    refusal = designation_refusal(
        task.kind, _payload(session, task), org, unit, verifier, recused=task.recused_logins
    )
    if refusal:
        raise Forbidden(refusal, details={"recusal": unit})
    target = org.units_by_code[unit]
    zone = task.zone_code or target.zone
    chosen_verifier = verifier or task.verifier_unit or default_verifier(task.kind, org, zone, unit)
    return {"handler_unit": unit, "verifier_unit": chosen_verifier, "zone_code": zone}
