"""The database's half of the queue state: rates, routing latency, backlogs, lateness, failures.

Each figure is one small aggregate over an index (``events.status``, ``events.accepted_at``,
``tasks.status``, ``supervision_orders.created_at``…); the on-call page asks for them every few
seconds, so nothing here loads rows it does not need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from dispatcher.enums import DeadlineState, EventStatus, TaskStatus
from dispatcher.models import Event, Notification, ScheduleRun, SupervisionOrder, Task

#: The windows of the rates, in minutes (like a load average).
WINDOWS = (1, 5, 15)
#: Routing latency is measured over the events routed in the last 15 minutes, at most this many.
LATENCY_SAMPLE = 5_000
#: States a task waits in for a person to route it.
WAITING = (TaskStatus.triage.value, TaskStatus.returned.value)
LATE = (DeadlineState.overdue.value, DeadlineState.escalated.value)


@dataclass
class Figures:
    """What the database says about the flow of work at ``at``."""

    at: datetime
    #: Events accepted per minute over the last 1, 5 and 15 minutes.
    intake_per_minute: dict[int, float]
    #: Tasks made (dispatched or sent to triage) per minute over the same windows.
    dispatch_per_minute: dict[int, float]
    #: Seconds from acceptance to task, over the last 15 minutes: ``p50``, ``p95``, ``p99`` (None: none).
    routing_latency: dict[str, float | None]
    outbox_backlog: int
    outbox_oldest_seconds: float | None
    triage_backlog: int
    triage_oldest_seconds: float | None
    #: Per zone: ``{"overdue": n, "escalated": n}`` of open tasks.
    late_by_zone: dict[str, dict[str, int]]
    failed_webhooks: int
    #: Tasks that turned overdue within the alert policy's window.
    recently_overdue: int
    #: The last run of each monthly job: ``{job: {period, state, finished_at, error}}``.
    last_runs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _per_minute(session: Session, column: Any, now: datetime) -> dict[int, float]:
    counts: Any = session.exec(
        select(*[func.count(sa.case((column >= now - timedelta(minutes=m), 1))) for m in WINDOWS]).where(
            column >= now - timedelta(minutes=max(WINDOWS))
        )
    ).one()
    return {m: round(n / m, 2) for m, n in zip(WINDOWS, counts, strict=True)}


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return round(sorted_values[index], 3)


def _age(now: datetime, oldest: datetime | None) -> float | None:
    return None if oldest is None else round(max(0.0, (now - oldest).total_seconds()), 1)


def gather(session: Session, *, now: datetime, burst_minutes: int = 60) -> Figures:
    """Every database figure of the queue state (``GET /api/v1/queue``, the page, ``/metrics``)."""
    since = now - timedelta(minutes=max(WINDOWS))
    pairs = session.exec(
        select(Event.accepted_at, Event.routed_at)
        .where(col(Event.routed_at) >= since, col(Event.routed_at).is_not(None))
        .order_by(col(Event.routed_at).desc())
        .limit(LATENCY_SAMPLE)
    ).all()
    latencies = sorted((done - accepted).total_seconds() for accepted, done in pairs if done is not None)
    backlog, oldest = session.exec(
        select(func.count(), func.min(Event.accepted_at)).where(Event.status == EventStatus.accepted)
    ).one()
    waiting, waiting_since = session.exec(
        select(func.count(), func.min(Task.updated_at)).where(col(Task.status).in_(WAITING))
    ).one()
    late: dict[str, dict[str, int]] = {}
    for zone, name, n in session.exec(  # as the sweep marked them (it runs every minute)
        select(Task.zone_code, Task.deadline_state, func.count())
        .where(col(Task.deadline_state).in_(LATE), col(Task.status) != TaskStatus.closed.value)
        .group_by(col(Task.zone_code), col(Task.deadline_state))
    ).all():
        late.setdefault(zone or "", dict.fromkeys(LATE, 0))[name] += n
    failed = session.exec(select(func.count()).where(Notification.webhook_status == "failed")).one()
    turned = session.exec(
        select(func.count()).where(
            col(SupervisionOrder.created_at) >= now - timedelta(minutes=burst_minutes),
            col(SupervisionOrder.step).like("%.overdue"),
        )
    ).one()
    runs: dict[str, dict[str, Any]] = {}
    for run in session.exec(select(ScheduleRun).order_by(col(ScheduleRun.period), col(ScheduleRun.id))).all():
        runs[run.job] = {
            "period": run.period,
            "state": run.state,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "error": run.error,
        }
    return Figures(
        at=now,
        intake_per_minute=_per_minute(session, col(Event.accepted_at), now),
        dispatch_per_minute=_per_minute(session, col(Task.created_at), now),
        routing_latency={f"p{int(q * 100)}": _quantile(latencies, q) for q in (0.5, 0.95, 0.99)},
        outbox_backlog=int(backlog),
        outbox_oldest_seconds=_age(now, oldest),
        triage_backlog=int(waiting),
        triage_oldest_seconds=_age(now, waiting_since),
        late_by_zone=dict(sorted(late.items())),
        failed_webhooks=int(failed),
        recently_overdue=int(turned),
        last_runs=runs,
    )
