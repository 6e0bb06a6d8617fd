"""Staff routes (DESIGN §9): tasks and their moves, identity reveal, triage, notifications."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from dispatcher.db import unit_of_work
from dispatcher.errors import Forbidden, ValidationFailed
from dispatcher.http.auth import UserDep, require_roles
from dispatcher.http.state import Services, ServicesDep
from dispatcher.models import Event, IdentityReveal, Notification, Task, User
from dispatcher.models import TaskStatus as S
from dispatcher.notify.webhooks import pending_webhooks
from dispatcher.org.store import current_org
from dispatcher.security import IdentityBox
from dispatcher.tasks.extensions import ExtensionRequest, decide_extension, request_extension
from dispatcher.tasks.lifecycle import Move
from dispatcher.tasks.moves import Actor, MoveRequest, Policy, apply_move, get_task, may_reveal, visible
from dispatcher.tasks.views import deadline_counts, overdue_condition, task_detail, task_summary

router = APIRouter(tags=["tasks"])


class MoveBody(BaseModel):
    """Every field a move may need; each move reads its own (DESIGN §9)."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=2000)] | None = None
    note: Annotated[str, Field(max_length=5000)] | None = None
    outcome: dict[str, Any] | None = None
    unit: Annotated[str, Field(max_length=64)] | None = None
    verifier_unit: Annotated[str, Field(max_length=64)] | None = None
    units: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    logins: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    #: The task version the actor saw; a stale one answers 409.
    version: int | None = None


class ExtendBody(BaseModel):
    """延期申请: how many days (the policy's kind: calendar days by default) and why."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=2000)] | None = None
    days: int | None = None
    version: int | None = None


class DecideBody(BaseModel):
    """The zone leader's decision on an extension: an optional note."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(max_length=2000)] | None = None
    version: int | None = None


class RevealBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=2, max_length=500)]


def policy_of(services: Services) -> Policy:
    return Policy(
        tz=services.settings.tz,
        feedback_window=(
            timedelta(days=services.settings.feedback_window_days)
            if services.settings.feedback_window_days
            else None
        ),
        time=services.policy,
    )


def detail_of(services: Services, session: Session, task: Task, actor: Actor) -> dict[str, Any]:
    """What the API and the pages show of one task, on this process's secret key and policy."""
    return task_detail(
        session, task, actor, IdentityBox(services.settings.resolved_secret_key), services.policy
    )


def actor_of(session: Session, user: User) -> Actor:
    loaded = current_org(session)
    return Actor.of(user, loaded[1] if loaded else None)


def run_move(
    services: Services, user: User, task_id: int, move: Move, body: MoveBody | None
) -> dict[str, Any]:
    """Apply a move in a unit of work, then hand new webhook notifications to the workers."""
    body = body or MoveBody()
    request = MoveRequest(
        move=move, reason=body.reason, note=body.note, outcome=body.outcome, unit=body.unit,
        verifier_unit=body.verifier_unit, units=tuple(body.units), logins=tuple(body.logins),
        version=body.version,
    )  # fmt: skip
    with unit_of_work(services.engine) as session:
        loaded = current_org(session)
        org = loaded[1] if loaded else None
        actor = Actor.of(user, org)
        task = apply_move(
            session, actor, task_id, request, now=services.clock(), org=org, policy=policy_of(services)
        )
        session.flush()
        pending = pending_webhooks(session, [task_id])
        view = detail_of(services, session, task, actor)
    services.deliver(pending)
    return view


def run_extend(services: Services, user: User, task_id: int, body: ExtendBody | None) -> dict[str, Any]:
    """Ask for an extension in a unit of work; answers the task as a move does (with its extensions)."""
    body = body or ExtendBody()
    with unit_of_work(services.engine) as session:
        loaded = current_org(session)
        org = loaded[1] if loaded else None
        actor = Actor.of(user, org)
        request = ExtensionRequest(days=body.days, reason=body.reason, version=body.version)
        request_extension(
            session, actor, task_id, request, now=services.clock(), org=org, policy=policy_of(services)
        )
        session.flush()
        pending = pending_webhooks(session, [task_id])
        task = get_task(session, actor, task_id)
        view = detail_of(services, session, task, actor)
    services.deliver(pending)
    return view


def run_decision(
    services: Services, user: User, task_id: int, extension_id: int, approve: bool, body: DecideBody | None
) -> dict[str, Any]:
    """Approve or refuse an extension in a unit of work; answers the task."""
    body = body or DecideBody()
    with unit_of_work(services.engine) as session:
        loaded = current_org(session)
        org = loaded[1] if loaded else None
        actor = Actor.of(user, org)
        decide_extension(
            session, actor, task_id, extension_id, approve=approve, note=body.note, version=body.version,
            now=services.clock(), org=org, policy=policy_of(services),
        )  # fmt: skip
        session.flush()
        pending = pending_webhooks(session, [task_id])
        task = get_task(session, actor, task_id)
        view = detail_of(services, session, task, actor)
    services.deliver(pending)
    return view


MOVES: dict[str, Move] = {
    "accept": Move.accept,
    "return": Move.return_,
    "progress": Move.progress,
    "submit": Move.submit,
    "verify": Move.verify,
    "reject": Move.reject,
    "suspend": Move.suspend,
    "resume": Move.resume,
    "designate": Move.designate,
    "assist": Move.co_handle,
}


def _register_move(path: str, move: Move) -> None:
    async def endpoint(
        task_id: int, user: UserDep, services: ServicesDep, body: Annotated[MoveBody | None, Body()] = None
    ) -> dict[str, Any]:
        return await run_in_threadpool(run_move, services, user, task_id, move, body)

    endpoint.__name__ = f"task_{path}"
    router.post(f"/tasks/{{task_id}}/{path}", summary=f"{move.value}: {move.__doc__ or ''}".strip())(endpoint)


for _path, _move in MOVES.items():
    _register_move(_path, _move)


@router.post("/tasks/{task_id}/extend", summary="extend: ask the zone leader for more time (延期申请)")
async def task_extend(
    task_id: int, user: UserDep, services: ServicesDep, body: Annotated[ExtendBody | None, Body()] = None
) -> dict[str, Any]:
    return await run_in_threadpool(run_extend, services, user, task_id, body)


@router.post(
    "/tasks/{task_id}/extensions/{extension_id}/{decision}",
    summary="Approve or refuse an extension (zone leader): decision is `approve` or `refuse`",
)
async def extension_decision(
    task_id: int,
    extension_id: int,
    decision: Literal["approve", "refuse"],
    user: UserDep,
    services: ServicesDep,
    body: Annotated[DecideBody | None, Body()] = None,
) -> dict[str, Any]:
    approve = decision == "approve"
    return await run_in_threadpool(run_decision, services, user, task_id, extension_id, approve, body)


@router.get("/tasks", summary="Tasks visible to me, newest first")
async def list_tasks(
    user: UserDep,
    services: ServicesDep,
    status: str | None = None,
    kind: str | None = None,
    unit: str | None = None,
    zone: str | None = None,
    overdue: Annotated[
        bool | None, Query(description="true: overdue or escalated, or past the running clock's due time")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    if status is not None and status not in {s.value for s in S}:
        raise ValidationFailed(
            f"unknown status {status!r}", details=[{"path": "status", "message": "unknown"}]
        )

    def read() -> dict[str, Any]:
        with unit_of_work(services.engine, read_only=True) as session:
            actor = actor_of(session, user)
            query = select(Task).where(visible(actor))
            for column, value in (
                (Task.status, status),
                (Task.kind, kind),
                (Task.handler_unit, unit),
                (Task.zone_code, zone),
            ):
                if value is not None:
                    query = query.where(col(column) == value)
            if overdue is not None:
                late = overdue_condition(services.clock())
                query = query.where(late if overdue else sa.not_(late))
            rows = session.exec(query.order_by(col(Task.id).desc()).offset(offset).limit(limit)).all()
            return {
                "tasks": [task_summary(t, services.policy) for t in rows],
                "limit": limit,
                "offset": offset,
            }

    return await run_in_threadpool(read)


@router.get("/tasks/stats", summary="Open tasks I may see, counted by deadline state per zone and unit")
async def task_stats(user: UserDep, services: ServicesDep) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with unit_of_work(services.engine, read_only=True) as session:
            actor = actor_of(session, user)
            return deadline_counts(session, visible(actor), now=services.clock())

    return await run_in_threadpool(read)


@router.get("/tasks/{task_id}", summary="A task with its event, routing reason and history")
async def read_task(task_id: int, user: UserDep, services: ServicesDep) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with unit_of_work(services.engine, read_only=True) as session:
            actor = actor_of(session, user)
            task = get_task(session, actor, task_id)
            return detail_of(services, session, task, actor)

    return await run_in_threadpool(read)


@router.post("/tasks/{task_id}/identity", summary="Reveal the reporter's or complainant's identity (logged)")
async def reveal_identity(
    task_id: int, body: RevealBody, user: UserDep, services: ServicesDep
) -> dict[str, Any]:
    return await run_in_threadpool(reveal, services, user, task_id, body.reason)


def reveal(services: Services, user: User, task_id: int, reason: str) -> dict[str, Any]:
    """The plaintext identity of a task's event, for those entitled; every reveal is logged."""
    with unit_of_work(services.engine) as session:
        actor = actor_of(session, user)
        task = get_task(session, actor, task_id)
        if not may_reveal(actor, task):
            raise Forbidden("only the handling unit and the zone leader may see the identity")
        event = session.get(Event, task.event_id) if task.event_id else None
        session.add(IdentityReveal(task_id=task_id, login=user.login, at=services.clock(), reason=reason))
        identity = IdentityBox(services.settings.resolved_secret_key).open(
            event.identity_enc if event else None
        )
        return {"task_id": task_id, "identity": identity}


def triage_query(actor: Actor) -> Any:
    """Items waiting for a person (triage, returned), oldest first; a zone leader sees its zones' only."""
    query = select(Task).where(col(Task.status).in_([S.triage.value, S.returned.value]))
    if actor.role == "zone_leader":
        query = query.where(visible(actor))
    return query.order_by(col(Task.id))


@router.get("/triage", summary="Items waiting for manual routing (on-call, zone leaders, admin)")
async def triage(
    user: Annotated[User, Depends(require_roles("oncall", "zone_leader", "admin"))], services: ServicesDep
) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with unit_of_work(services.engine, read_only=True) as session:
            rows = session.exec(triage_query(actor_of(session, user))).all()
            return {"tasks": [{**task_summary(t, services.policy), "reason": t.reason} for t in rows]}

    return await run_in_threadpool(read)


@router.post("/triage/{task_id}/route", summary="Route a triage item to a unit by hand (rule 7)")
async def route_triage(
    task_id: int,
    user: Annotated[User, Depends(require_roles("oncall", "zone_leader", "admin"))],
    services: ServicesDep,
    body: Annotated[MoveBody | None, Body()] = None,
) -> dict[str, Any]:
    return await run_in_threadpool(run_move, services, user, task_id, Move.route, body)


@router.get("/notifications", summary="My unit's notifications, newest first")
async def notifications(
    user: UserDep, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with unit_of_work(services.engine, read_only=True) as session:
            rows = session.exec(
                select(Notification)
                .where(Notification.unit_code == user.unit_code)
                .order_by(col(Notification.id).desc())
                .limit(limit)
            ).all()
            return {"notifications": [_notification(n) for n in rows]}

    return await run_in_threadpool(read)


@router.get("/notifications/failed", summary="Webhook deliveries given up after the last try (on-call)")
async def failed_notifications(
    user: Annotated[User, Depends(require_roles("oncall", "admin"))], services: ServicesDep
) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with unit_of_work(services.engine, read_only=True) as session:
            rows = session.exec(
                select(Notification)
                .where(Notification.webhook_status == "failed")
                .order_by(col(Notification.id).desc())
            ).all()
            return {"notifications": [_notification(n) for n in rows]}

    return await run_in_threadpool(read)


def _notification(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id, "unit": n.unit_code, "task_id": n.task_id, "kind": n.kind, "message": n.message,
        "created_at": n.created_at.isoformat(), "webhook_status": n.webhook_status,
        "webhook_attempts": n.webhook_attempts, "webhook_error": n.webhook_error,
    }  # fmt: skip
