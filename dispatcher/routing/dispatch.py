"""Dispatch (分办): turn a stored event into its task, exactly once, as the routing rules decide."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dispatcher.enums import OPEN_TASK_STATUSES, EventStatus, Stage, TaskKind, TaskStatus
from dispatcher.models import ClueStage, Event, Notification, Task, TaskHistory
from dispatcher.notify.inbox import add_notification
from dispatcher.org.model import Org
from dispatcher.org.store import org_in_force
from dispatcher.routing.rules import DISPATCH, RouteDecision, decide_route
from dispatcher.security import IdentityBox, person_key
from dispatcher.supervision.clocks import clock_changes, pressing_due
from dispatcher.supervision.deadlines import due_at
from dispatcher.supervision.policy import DEFAULT_POLICY, TimePolicy

log = logging.getLogger(__name__)

#: Actor name written in the history of moves made by the routing worker.
ROUTING_ACTOR = "system:routing"


def open_task_counts(session: Session, units: Collection[str]) -> dict[str, int]:
    """Open tasks per handling unit (rule 6: the least loaded unit wins)."""
    if not units:
        return {}
    rows = session.exec(
        select(Task.handler_unit, sa.func.count())
        .where(Task.handler_unit.in_(list(units)), Task.status.in_(list(OPEN_TASK_STATUSES)))  # type: ignore[union-attr,attr-defined]
        .group_by(Task.handler_unit)
    ).all()
    return {unit: count for unit, count in rows if unit is not None}


#: "Look the org up": ``dispatch_event``'s default; a caller routing many events passes the one it read.
LOOK_UP: Any = object()


@dataclass(frozen=True, slots=True)
class Routed:
    """One event routed: its new task, and the notification its handling unit's webhook is owed."""

    task: Task
    webhook: Notification | None


def township_loads(session: Session, org: Org) -> dict[str, int]:
    """Open tasks of every township commission (0 for one with none): rule 6's figures."""
    codes = [u.code for u in org.township_commissions.values()]
    return {code: 0 for code in codes} | open_task_counts(session, codes)


def dispatch_event(
    session: Session,
    event_id: str,
    *,
    now: datetime,
    failure: str | None = None,
    policy: TimePolicy = DEFAULT_POLICY,
    secret_key: str | None = None,
    org: Org | None = LOOK_UP,
) -> Task | None:
    """Create the event's task (dispatched or triage). A second call for the same event does nothing.

    Returns the new task, or ``None`` when there was nothing to do (unknown or already routed).
    ``failure`` names an error that made automatic routing impossible: the event then goes to
    triage with a reason that repeats none of its content, so a person can route it.
    ``secret_key`` opens the event's identity here, in the worker, and nowhere stored: recusals
    that name the reporter are matched on keyed hashes, and a named reporter of a clue is owed an
    acknowledgement (受理告知).
    """
    event = session.get(Event, event_id, with_for_update=True)
    if event is None:
        log.warning("dispatch_event: no event %s", event_id)
        return None
    existing = session.exec(select(Task.status).where(Task.event_id == event.id)).first()
    routed = route_locked(
        session, event, existing, now=now, failure=failure, policy=policy, secret_key=secret_key,
        org=org_in_force(session) if org is LOOK_UP else org,
    )  # fmt: skip
    return routed.task if routed is not None else None


def lock_events(session: Session, event_ids: Collection[str]) -> list[tuple[Event, str | None]]:
    """The events (locked, in id order, so two deliveries cannot deadlock) with their task's status.

    One statement for a whole routing message, where a look-up per event cost two round trips.
    """
    rows = session.exec(
        select(Event, Task.status)
        .outerjoin(Task, col(Task.event_id) == col(Event.id))
        .where(col(Event.id).in_(sorted(event_ids)))
        .order_by(col(Event.id))
        .with_for_update(of=Event)
    ).all()
    return [(event, status) for event, status in rows]


@dataclass(slots=True)
class Planned:
    """An event's task, decided and built but not yet stored (its id comes with the INSERT)."""

    event: Event
    task: Task
    decision: RouteDecision


def plan_task(
    session: Session,
    event: Event,
    *,
    now: datetime,
    org: Org | None,
    failure: str | None = None,
    policy: TimePolicy = DEFAULT_POLICY,
    secret_key: str | None = None,
    counts: dict[str, int] | None = None,
) -> Planned:
    """Decide where an accepted event goes and build its task with its clocks (nothing written).

    ``counts``: the open tasks per township commission (rule 6), read once for a whole message
    by the caller and kept up to date as its clues are assigned; read here when not given.
    """
    names = _identity_names(event, secret_key)
    reporter_keys = frozenset(person_key(secret_key, n) for n in names) if secret_key else frozenset()
    if failure is not None:
        decision = RouteDecision("triage", "routing_error", f"自动分办出错（{failure}），需人工分办")
    elif org is None:
        decision = RouteDecision("triage", "no_org", "尚未加载组织目录（dispatcher org load），需人工分办")
    else:
        if event.kind == TaskKind.clue and counts is None:
            counts = township_loads(session, org)
        decision = decide_route(event.kind, event.payload, org, counts or {}, reporter_keys=reporter_keys)
        if counts is not None and decision.outcome == DISPATCH and decision.handler_unit in counts:
            counts[decision.handler_unit] += 1  # the next clue of this message sees this one

    dispatched = decision.outcome == DISPATCH
    status = TaskStatus.dispatched if dispatched else TaskStatus.triage
    task = Task(
        event_id=event.id,
        kind=event.kind,
        ledger_no=event.ledger_no,
        status=status,
        zone_code=decision.zone,
        township_code=decision.township,
        handler_unit=decision.handler_unit,
        verifier_unit=decision.verifier_unit,
        rule=decision.rule,
        reason=decision.reason,
        recused_logins=list(decision.recused_logins),
        received_at=event.received_at,
        created_at=now,
        dispatched_at=now if dispatched else None,
        handler_since=now if dispatched else None,
        summary=str(event.payload.get("summary") or "")[:20_000] or None,
        updated_at=now,
        channel=event.payload.get("channel") if event.kind == TaskKind.complaint else None,
    )
    if event.kind == TaskKind.clue:
        task.stage = Stage.referral if decision.rule == "refer_upward" else Stage.disposition
        clocks = policy.clocks_for(event.kind)
        if names and clocks is not None and clocks.acknowledge is not None:  # 受理告知 to a named reporter
            task.acknowledge_due_at = due_at(event.received_at, clocks.acknowledge.limit, policy.frame())
    if dispatched:  # the accept and resolve clocks start (限期); a new task has taken no step yet
        for column, value in clock_changes(None, task, status, now=now, policy=policy).items():
            setattr(task, column, value)
    return Planned(event, task, decision)


def record_routed(session: Session, planned: Planned, *, now: datetime, org: Org | None) -> Routed:
    """What follows a stored task (its id known): history, a clue's first stage, the handling
    unit's notification, the event marked routed."""
    task, decision, event = planned.task, planned.decision, planned.event
    assert task.id is not None
    dispatched = task.status == TaskStatus.dispatched
    session.add(
        TaskHistory(
            task_id=task.id,
            at=now,
            actor=ROUTING_ACTOR,
            to_status=task.status,
            note=decision.reason,
            handler_unit=task.handler_unit,
            due_at=pressing_due(task),
        )
    )
    if task.stage is not None:  # a clue's first stage starts at receipt (处置意见 within a month)
        session.add(
            ClueStage(
                task_id=task.id, stage=task.stage, due_at=task.resolve_due_at,
                started_at=task.resolve_started_at or event.received_at,
            )
        )  # fmt: skip
    notification = None
    if dispatched and decision.handler_unit:
        notification = add_notification(
            session, org, unit_code=decision.handler_unit, task=task,
            kind="dispatched", message=f"{task.ledger_no} 已分办: {decision.reason}", now=now,
        )  # fmt: skip
    _mark_routed(event, EventStatus.dispatched if dispatched else EventStatus.triage, now)
    webhook = notification if notification is not None and notification.webhook_status == "pending" else None
    return Routed(task, webhook)


def repair(event: Event, existing: str | None, now: datetime) -> bool:
    """Whether there is nothing to route: the event is routed already, or its task exists (then the
    event, which says otherwise, is repaired)."""
    if event.status != EventStatus.accepted:
        return True
    if existing is not None:
        _mark_routed(
            event, EventStatus.triage if existing == TaskStatus.triage else EventStatus.dispatched, now
        )
        return True
    return False


def route_locked(
    session: Session,
    event: Event,
    existing: str | None,
    *,
    now: datetime,
    org: Org | None,
    failure: str | None = None,
    policy: TimePolicy = DEFAULT_POLICY,
    secret_key: str | None = None,
) -> Routed | None:
    """``dispatch_event`` on an event already read under its row lock, with its task's status."""
    if repair(event, existing, now):
        return None
    planned = plan_task(
        session, event, now=now, org=org, failure=failure, policy=policy, secret_key=secret_key
    )
    session.add(planned.task)
    session.flush()  # a concurrent delivery that got here first makes this raise IntegrityError
    return record_routed(session, planned, now=now, org=org)


def _identity_names(event: Event, secret_key: str | None) -> list[str]:
    """The names of the event's reporter, complainant or contact (not an anonymous reporter's)."""
    if secret_key is None or not event.identity_enc:
        return []
    identity = IdentityBox(secret_key).open(event.identity_enc)
    return [
        str(person["name"])
        for person in identity.values()
        if isinstance(person, dict) and person.get("name") and not person.get("anonymous")
    ]


def _mark_routed(event: Event, status: EventStatus, now: datetime) -> None:
    event.status = status
    event.relay_after = None
    event.routed_at = now
