"""The use cases on tasks, called alike by the API, the pages, the CLI and the scheduler.

Each opens a unit of work on the runtime, finds who is acting (``Actor``, from the user and the
org in force), calls the core, answers what the caller shows, and after the commit hands any
new webhook deliveries to the workers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from dispatcher.enums import Role, TaskKind, TaskStatus
from dispatcher.errors import Conflict, Forbidden, NotFound
from dispatcher.models import Event, Extension, IdentityReveal, Source, Task, User
from dispatcher.monthly.meeting import agenda_for, decisions_of, meeting_of
from dispatcher.monthly.training import attendance_of, training_of
from dispatcher.notify.webhooks import pending_webhooks
from dispatcher.org.model import Org
from dispatcher.routing.conflict import designation_refusal
from dispatcher.runtime import Runtime
from dispatcher.supervision.status import deadline_counts
from dispatcher.tasks import attachments, extensions, queries
from dispatcher.tasks.access import Actor, get_task, may_reveal, visible
from dispatcher.tasks.commands import DecideBody, ExtendBody, MoveBody
from dispatcher.tasks.lifecycle import Move
from dispatcher.tasks.moves import MoveRequest, apply_move
from dispatcher.tasks.outcomes import Feedback
from dispatcher.tasks.queries import TaskFilters
from dispatcher.tasks.views import task_detail, task_summary

#: A dispatch meeting takes decisions while it is open (dispatched or accepted).
OPEN_MEETING = (TaskStatus.dispatched, TaskStatus.accepted)

#: Who asks: a staff user (the API, the pages), or an actor the caller built (the CLI, the system).
Who = User | Actor


def actor_of(rt: Runtime, session: Session, who: Who) -> Actor:
    return who if isinstance(who, Actor) else Actor.of(who, rt.org(session))


def org(rt: Runtime) -> Org | None:
    """The org in force (the pages name units and people with it)."""
    with rt.work(read_only=True) as session:
        return rt.org(session)


def _detail(rt: Runtime, session: Session, task: Task, actor: Actor) -> dict[str, Any]:
    detail = task_detail(session, task, actor, box=rt.identity_box, policy=rt.policy, now=rt.now())
    detail["attachments"] = attachments.attachments_of(session, actor, task)
    detail["may_attach"] = actor.login not in task.recused_logins and task.status != TaskStatus.closed
    if task.kind == TaskKind.monthly_dispatch:  # 调度会: its agenda (as this reader may see it) and decisions
        meeting = meeting_of(session, task)
        detail["meeting"] = (
            None if meeting is None
            else {"period": meeting.period, "agenda": agenda_for(session, actor, meeting),
                  "decisions": decisions_of(session, meeting),
                  "may_decide": actor.leads(task) and task.status in OPEN_MEETING}
        )  # fmt: skip
    elif task.kind == TaskKind.training:  # 培训: topic, suggestion, who is expected and present
        training = training_of(session, task)
        detail["training"] = None
        if training is not None:
            open_ = task.status != TaskStatus.closed
            organiser = actor.has(Role.admin) or (
                actor.has(Role.handler) and actor.unit == training.unit_code
            )
            detail["training"] = {
                **attendance_of(session, training),
                "may_mark_self": open_ and actor.login in training.expected,
                "may_mark_others": open_ and organiser,
            }
    return detail


def _summaries(rt: Runtime, tasks: Any) -> list[dict[str, Any]]:
    now = rt.now()
    return [task_summary(t, policy=rt.policy, now=now) for t in tasks]


# --- reading ------------------------------------------------------------------------------------


def read_task(rt: Runtime, user: User, task_id: int) -> dict[str, Any]:
    """A task with its event (identity masked), history, clocks and the moves ``user`` may make."""
    with rt.work(read_only=True) as session:
        actor = actor_of(rt, session, user)
        return _detail(rt, session, get_task(session, actor, task_id), actor)


def list_tasks(
    rt: Runtime,
    who: Who,
    filters: TaskFilters = TaskFilters(),
    *,
    sort: str = "urgent",
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Tasks ``who`` may see, most urgent first by default, as list rows."""
    with rt.work(read_only=True) as session:
        dialect = session.get_bind().dialect.name
        query = queries.task_list(
            actor_of(rt, session, who), filters, now=rt.now(), sort=sort, dialect=dialect
        )
        return _summaries(rt, session.exec(query.offset(offset).limit(limit)).all())


def browse_tasks(
    rt: Runtime,
    who: Who,
    filters: TaskFilters = TaskFilters(),
    *,
    sort: str = "urgent",
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of the tasks ``who`` may see (DESIGN §9: most urgent first, paged with a total), with
    the total and the count in each state (the status filter aside): exact, or for a search or a
    kind or lateness filter with more than ``queries.COUNT_CAP`` matches a lower bound
    (``total_exact`` false, no counts)."""
    with rt.work(read_only=True) as session:
        dialect = session.get_bind().dialect.name
        found = queries.listing(session, actor_of(rt, session, who), filters, now=rt.now(), sort=sort,
                                dialect=dialect)  # fmt: skip
        rows = _summaries(rt, session.exec(found.query.offset(offset).limit(limit)).all())
        tally = found.tally
        return {"tasks": rows, "limit": limit, "offset": offset, "sort": sort, "counts": tally.counts,
                "total": tally.total, "total_exact": tally.exact}  # fmt: skip


def count_open(rt: Runtime, who: Who, filters: TaskFilters = TaskFilters()) -> dict[str, Any]:
    """Open tasks ``who`` may see (and ``filters`` keep) by deadline state: in all, per zone, per
    unit, per (zone, unit)."""
    with rt.work(read_only=True) as session:
        query = queries.task_list(actor_of(rt, session, who), filters, now=rt.now())
        return deadline_counts(session, query.whereclause, now=rt.now())


def triage(rt: Runtime, user: User, *, limit: int = 500, choices: bool = False) -> list[dict[str, Any]]:
    """Items waiting for a person (triage, returned), oldest first, with why they wait: the routing's
    reason, and for a returned task who returned it and why (``returned_by``, ``return_reason``).

    ``choices``: each item also lists the units it may be routed to (``choices``: rule 5, 回避,
    already applied), for one-click routing on the on-call console.
    """
    with rt.work(read_only=True) as session:
        rows = session.exec(queries.triage_list(actor_of(rt, session, user)).limit(limit)).all()
        returns = queries.last_returns(session, [t.id for t in rows if t.status == TaskStatus.returned])
        directory = rt.org(session) if choices else None
        items = []
        for t, summary in zip(rows, _summaries(rt, rows), strict=True):
            by, why = returns.get(t.id or 0, (None, None))
            item = {**summary, "reason": t.reason, "returned_by": by, "return_reason": why}
            if choices:
                item["choices"] = _routable(session, t, directory)
            items.append(item)
        return items


def _routable(session: Session, task: Task, org: Org | None) -> list[str]:
    """Units ``task`` may be routed to by hand: every unit rule 5 does not exclude, the units of the
    task's own zone first (the likeliest choice), then the rest in the org file's order."""
    if org is None:
        return []
    event = session.get(Event, task.event_id) if task.event_id else None
    payload = event.payload if event is not None else {}
    allowed = [
        u for u in org.units
        if designation_refusal(task.kind, payload, org, u.code, recused=task.recused_logins) is None
    ]  # fmt: skip
    return [u.code for u in sorted(allowed, key=lambda u: u.zone != task.zone_code or task.zone_code is None)]


def verify_queue(rt: Runtime, user: User, *, limit: int = 200) -> list[dict[str, Any]]:
    """验单队列: submitted tasks ``user``'s unit verifies, oldest submission first."""
    with rt.work(read_only=True) as session:
        return _summaries(
            rt, session.exec(queries.verify_list(actor_of(rt, session, user)).limit(limit)).all()
        )


def zone_overview(rt: Runtime, user: User) -> dict[str, Any]:
    """A zone leader's view: tasks by unit × state, overdue and escalated counts, the triage list."""
    with rt.work(read_only=True) as session:
        actor = actor_of(rt, session, user)
        directory = rt.org(session)
        matrix = queries.state_counts(session, actor)
        late = deadline_counts(session, visible(actor), now=rt.now())
    zones = [
        z for z in (directory.zones if directory else ()) if actor.sees_everything or z.code in actor.zones
    ]
    lateness: dict[str, dict[str, dict[str, int]]] = {z.code: {} for z in zones}
    for row in late["rows"]:
        if row["zone"] in lateness:
            lateness[row["zone"]][row["unit"] or ""] = {
                "overdue": row["overdue"],
                "escalated": row["escalated"],
            }
    now = rt.now()
    waiting = triage(rt, user, choices=True)
    for item in waiting:
        since = item.get("updated_at") or item.get("received_at")
        item["waited_hours"] = (
            int((now - datetime.fromisoformat(since)).total_seconds() // 3600) if since else None
        )
    return {
        "org": directory,
        "zones": zones,
        "matrix": {z.code: matrix.get(z.code, {}) for z in zones},
        "late": lateness,
        "triage": waiting,
        "extensions": pending_extensions(rt, user),
        "overdue": overdue_by_unit(rt, user),
    }


def pending_extensions(rt: Runtime, user: User, *, limit: int = 100) -> list[dict[str, Any]]:
    """延期申请 waiting for this zone leader (or any, for an admin), oldest first."""
    with rt.work(read_only=True) as session:
        actor = actor_of(rt, session, user)
        rows = session.exec(
            select(Extension, Task)
            .join(Task, col(Task.id) == col(Extension.task_id))
            .where(Extension.status == extensions.PENDING, visible(actor))
            .order_by(col(Extension.requested_at))
            .limit(limit)
        ).all()
        return [
            {"id": x.id, "task_id": t.id, "ledger_no": t.ledger_no, "summary": t.summary,
             "unit": t.handler_unit, "days": x.days, "reason": x.reason, "requested_by": x.requested_by,
             "requested_at": x.requested_at.isoformat(), "version": t.version}
            for x, t in rows
            if actor.leads(t) and actor.login not in t.recused_logins
        ]  # fmt: skip


def overdue_by_unit(rt: Runtime, user: User, *, limit: int = 200) -> dict[str, list[dict[str, Any]]]:
    """Overdue and escalated open tasks, most urgent first, grouped by handling unit."""
    rows = list_tasks(rt, user, TaskFilters(overdue=True), limit=limit)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["handler_unit"] or "", []).append(row)
    return grouped


# --- acting -------------------------------------------------------------------------------------


def _after(rt: Runtime, session: Session, task_id: int) -> list[int]:
    session.flush()
    return pending_webhooks(session, [task_id])


def move_task(
    rt: Runtime, user: User, task_id: int, move: Move, body: MoveBody | None = None
) -> dict[str, Any]:
    """Make one move (DESIGN §6); answers the task as it now stands."""
    request = (body or MoveBody()).request(move)
    with rt.work() as session:
        actor = actor_of(rt, session, user)
        task = apply_move(
            session, actor, task_id, request, now=rt.now(), org=rt.org(session), policy=rt.policy
        )
        pending = _after(rt, session, task_id)
        view = _detail(rt, session, task, actor)
    rt.hand_off_webhooks(pending)
    return view


def ask_for_extension(
    rt: Runtime, user: User, task_id: int, body: ExtendBody | None = None
) -> dict[str, Any]:
    """延期申请 by a handler; answers the task with its extensions."""
    request = (body or ExtendBody()).request()
    with rt.work() as session:
        actor = actor_of(rt, session, user)
        extensions.ask(session, actor, task_id, request, now=rt.now(), org=rt.org(session), policy=rt.policy)
        pending = _after(rt, session, task_id)
        view = _detail(rt, session, get_task(session, actor, task_id), actor)
    rt.hand_off_webhooks(pending)
    return view


def decide_extension(
    rt: Runtime, user: User, task_id: int, extension_id: int, *, approve: bool, body: DecideBody | None = None
) -> dict[str, Any]:
    """The zone leader approves or refuses a pending extension; answers the task."""
    body = body or DecideBody()
    with rt.work() as session:
        actor = actor_of(rt, session, user)
        extensions.decide(
            session, actor, task_id, extension_id, approve=approve, note=body.note, version=body.version,
            now=rt.now(), org=rt.org(session), policy=rt.policy,
        )  # fmt: skip
        pending = _after(rt, session, task_id)
        view = _detail(rt, session, get_task(session, actor, task_id), actor)
    rt.hand_off_webhooks(pending)
    return view


def reveal_identity(rt: Runtime, user: User, task_id: int, reason: str) -> dict[str, Any]:
    """查看身份信息: the plaintext identity, for those entitled; every reveal is logged."""
    with rt.work() as session:
        actor = actor_of(rt, session, user)
        task = get_task(session, actor, task_id)
        if not may_reveal(actor, task):
            raise Forbidden("only the handling unit and the zone leader may see the identity")
        event = session.get(Event, task.event_id) if task.event_id else None
        session.add(IdentityReveal(task_id=task_id, login=user.login, at=rt.now(), reason=reason))
        identity = rt.identity_box.open(event.identity_enc if event else None)
        return {"task_id": task_id, "identity": identity}


# --- the requester and the system ---------------------------------------------------------------


def record_feedback(rt: Runtime, source: Source, event_id: str, feedback: Feedback) -> dict[str, Any]:
    """回访: the requester's answer, relayed by the platform that published the event."""
    move = Move.feedback_reopen if feedback.rating == "unsatisfied" else Move.feedback_close
    with rt.work() as session:
        event = session.get(Event, event_id)
        if event is None or event.source_id != source.id:
            raise NotFound(f"no event {event_id}")
        task = session.exec(select(Task).where(Task.event_id == event_id)).first()
        if task is None or task.id is None:
            raise Conflict("the event has no task yet", details={"current": event.status, "allowed": []})
        request = MoveRequest(move=move, feedback=feedback.model_dump())
        task = apply_move(
            session, Actor.source(source.name), task.id, request, now=rt.now(), org=rt.org(session),
            policy=rt.policy,
        )  # fmt: skip
        pending = _after(rt, session, task.id)  # type: ignore[arg-type]
        answer = {"event_id": event_id, "task_id": task.id, "status": task.status, "rating": feedback.rating}
    rt.hand_off_webhooks(pending)
    return answer


def expire_feedback(rt: Runtime, *, limit: int = 200) -> int:
    """Close tasks whose feedback window has passed as "no response" (回访期满); returns how many."""
    now = rt.now()
    with rt.work() as session:
        directory = rt.org(session)
        due = [t for t in session.exec(queries.feedback_expired(now).limit(limit)).all() if t is not None]
        actor = Actor.system("feedback")
        for task_id in due:
            apply_move(
                session, actor, task_id, MoveRequest(move=Move.feedback_expire), now=now, org=directory,
                policy=rt.policy,
            )  # fmt: skip
    return len(due)


# --- attachments --------------------------------------------------------------------------------


def upload_attachment(
    rt: Runtime, user: User, task_id: int, name: str | None, content: bytes
) -> dict[str, Any]:
    """Keep a file on the task (its type judged by content; size and count limited)."""
    with rt.work() as session:
        actor = actor_of(rt, session, user)
        made = attachments.add_attachment(
            session, actor, task_id, name=name, content=content, max_bytes=rt.settings.max_attachment_bytes,
            now=rt.now(),
        )  # fmt: skip
        return {"id": made.id, "filename": made.filename, "media_type": made.media_type, "size": made.size,
                "sha256": made.sha256, "url": f"/api/v1/tasks/{task_id}/attachments/{made.id}"}  # fmt: skip


def download_attachment(rt: Runtime, user: User, task_id: int, attachment_id: int) -> tuple[str, str, bytes]:
    """``(file name, media type, content)`` of one file; the download is logged."""
    with rt.work() as session:
        found = attachments.download(
            session, actor_of(rt, session, user), task_id, attachment_id, now=rt.now()
        )
        return found.filename, found.media_type, found.content
