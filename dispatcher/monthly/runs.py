"""The record of each monthly run: ``(job, period)`` is unique, so a job runs once per period
however many schedulers fire it, workers receive it, or people back-fill it (DESIGN §3, §7).

A run is asked for (``pending``), claimed by whoever works it (``running``; a claim is a single
``UPDATE … WHERE state IN (…)``, so two workers never both work one run), and ends
``succeeded`` or ``failed`` with its error. A run that stays ``pending`` or ``running`` past
``STALE`` (a lost message, a killed worker) may be claimed again: the work itself is idempotent
(every thing it makes is unique per period), so a second attempt finishes what the first began.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from dispatcher.models import ScheduleRun

#: A pending or running run untouched this long is deemed lost and may be asked for again.
STALE = timedelta(minutes=10)
#: A failed run is retried by the scheduler this many times in all, then left for a person.
MAX_ATTEMPTS = 3


class RunState(StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class Trigger(StrEnum):
    cron = "cron"  #: its trigger fired
    catch_up = "catch_up"  #: found missed when a scheduler started or became leader
    manual = "manual"  #: ``dispatcher schedules run``


_T = ScheduleRun.__table__  # type: ignore[attr-defined]


def request(session: Session, job: str, period: str, *, trigger: Trigger, by: str, now: datetime) -> bool:
    """Ask for ``(job, period)``; True if this call created the run (the caller then enqueues it)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    made = session.execute(
        insert(_T)
        .values(
            job=job, period=period, state=RunState.pending, trigger=trigger, requested_by=by,
            requested_at=now, attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["job", "period"])
        .returning(_T.c.id)
    ).scalar_one_or_none()  # fmt: skip
    return made is not None


def claim(
    session: Session, job: str, period: str, *, now: datetime, force: bool = False
) -> ScheduleRun | None:
    """Take the run to work it: pending, failed with attempts left, or stale; None when someone
    has it or it is done. ``force`` (a person running it by hand) takes a failed run whatever its
    attempts."""
    failed = _T.c.state == RunState.failed
    if not force:
        failed = sa.and_(failed, _T.c.attempts < MAX_ATTEMPTS)
    claimable = sa.or_(
        _T.c.state == RunState.pending,
        failed,
        sa.and_(_T.c.state == RunState.running, _T.c.started_at < now - STALE),
    )
    done = session.execute(
        sa.update(_T)
        .where(_T.c.job == job, _T.c.period == period, claimable)
        .values(state=RunState.running, started_at=now, finished_at=None, attempts=_T.c.attempts + 1)
        .returning(_T.c.id)
    ).scalar_one_or_none()
    if done is None:
        return None
    run = session.get(ScheduleRun, done)
    if run is not None:
        session.refresh(run)
    return run


def finish(session: Session, run_id: int, *, now: datetime, result: dict[str, Any]) -> None:
    session.execute(
        sa.update(_T)
        .where(_T.c.id == run_id)
        .values(state=RunState.succeeded, finished_at=now, result=result, error=None)
    )


def fail(session: Session, run_id: int, *, now: datetime, error: str) -> None:
    session.execute(
        sa.update(_T)
        .where(_T.c.id == run_id)
        .values(state=RunState.failed, finished_at=now, error=error[:4000])
    )


def get(session: Session, job: str, period: str) -> ScheduleRun | None:
    return session.exec(
        select(ScheduleRun).where(ScheduleRun.job == job, ScheduleRun.period == period)
    ).first()


def to_retry(session: Session, *, now: datetime) -> list[tuple[str, str]]:
    """Runs to hand to the workers again: pending or running but stale (a lost message, a killed
    worker), or failed with attempts left (after a pause of ``STALE``)."""
    rows = session.exec(
        select(ScheduleRun.job, ScheduleRun.period).where(
            sa.or_(
                sa.and_(
                    col(ScheduleRun.state) == RunState.pending, col(ScheduleRun.requested_at) < now - STALE
                ),
                sa.and_(
                    col(ScheduleRun.state) == RunState.running, col(ScheduleRun.started_at) < now - STALE
                ),
                sa.and_(
                    col(ScheduleRun.state) == RunState.failed,
                    col(ScheduleRun.attempts) < MAX_ATTEMPTS,
                    col(ScheduleRun.finished_at) < now - STALE,
                ),
            )
        )
    ).all()
    return [(job, period) for job, period in rows]


def touch(session: Session, job: str, period: str, *, now: datetime) -> None:
    """A pending run handed out again counts its wait from now."""
    session.execute(
        sa.update(_T)
        .where(_T.c.job == job, _T.c.period == period, _T.c.state == RunState.pending)
        .values(requested_at=now)
    )


def recent(session: Session, *, limit: int = 100, job: str | None = None) -> list[ScheduleRun]:
    query = select(ScheduleRun).order_by(col(ScheduleRun.period).desc(), col(ScheduleRun.job)).limit(limit)
    if job is not None:
        query = query.where(ScheduleRun.job == job)
    return list(session.exec(query).all())


def run_view(run: ScheduleRun) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    took = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
    return {
        "id": run.id, "job": run.job, "period": run.period, "state": run.state, "trigger": run.trigger,
        "requested_by": run.requested_by, "requested_at": iso(run.requested_at),
        "started_at": iso(run.started_at), "finished_at": iso(run.finished_at),
        "seconds": round(took, 3) if took is not None else None,
        "attempts": run.attempts, "error": run.error, "result": run.result,
    }  # fmt: skip
