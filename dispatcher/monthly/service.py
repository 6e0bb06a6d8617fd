"""The monthly use cases (DESIGN §7): ask for the runs that are due, work one run, back-fill by
hand, read the runs; record a meeting's decisions and a training's attendance.

The scheduler only asks (``request_due``: a ``pending`` row per due ``(job, period)`` and a
message to the workers); a worker works it (``run_job``); the CLI back-fills (``run_now``, in its
own process, the same code). Every path goes through the ``(job, period)`` row, so each period's
work is done once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dispatcher.errors import ValidationFailed
from dispatcher.models import OrgVersion, Task, User
from dispatcher.monthly import runs
from dispatcher.monthly.meeting import hold_meetings, record_decision
from dispatcher.monthly.periods import Job, Period, due_periods
from dispatcher.monthly.runs import RunState, Trigger
from dispatcher.monthly.training import issue_trainings, mark_attendance
from dispatcher.notify.webhooks import pending_webhooks
from dispatcher.reports.service import generate_report
from dispatcher.runtime import Runtime
from dispatcher.tasks.access import Actor

log = logging.getLogger(__name__)


def _made_tasks(rt: Runtime, make: Callable[..., dict[str, Any]], period: Period) -> dict[str, Any]:
    """Run ``make`` (meetings, trainings) in one unit of work; hand the new tasks' webhooks on."""
    with rt.work() as session:
        result = make(session, rt.org(session), period, now=rt.now(), policy=rt.policy)
        session.flush()
        made = result.get("tasks") or []
        ids = list(session.exec(select(Task.id).where(col(Task.ledger_no).in_(made))).all()) if made else []
        deliveries = pending_webhooks(session, ids)
    rt.hand_off_webhooks(deliveries)
    return result


#: What each job does for a period (each idempotent: what it makes is unique per period).
WORK: dict[Job, Callable[[Runtime, Period], dict[str, Any]]] = {
    Job.report: generate_report,
    Job.dispatch: lambda rt, period: _made_tasks(rt, hold_meetings, period),
    Job.training: lambda rt, period: _made_tasks(rt, issue_trainings, period),
}


def in_service_since(session: Session) -> datetime | None:
    """When the system came into service (its first org): periods due before it were never missed."""
    return session.exec(select(sa.func.min(OrgVersion.loaded_at))).one()


def request_due(
    rt: Runtime, *, trigger: Trigger = Trigger.cron, by: str = "system:scheduler"
) -> list[tuple[str, str]]:
    """Ask for every ``(job, period)`` that fell due and has no run (catching up missed periods),
    and hand out again the runs whose message was lost or whose worker died."""
    now = rt.now()
    asked: list[tuple[str, str]] = []
    calendar = rt.policy.work_calendar()
    with rt.work() as session:
        since = in_service_since(session)
        if since is None:
            return []
        for job in Job:
            for period in due_periods(job, now, rt.policy.schedules, calendar, rt.policy.tz, since=since):
                if runs.request(session, job.value, str(period), trigger=trigger, by=by, now=now):
                    asked.append((job.value, str(period)))
        again = runs.to_retry(session, now=now)
        for job_name, period_text in again:
            runs.touch(session, job_name, period_text, now=now)
        # inside the transaction: if the broker is down nothing is asked, the next pass asks again
        for job_name, period_text in asked + again:
            rt.queue.run_monthly(job_name, period_text)
    for job_name, period_text in asked:
        log.info("monthly run asked for: %s %s (%s)", job_name, period_text, trigger.value)
    return asked + again


def run_job(rt: Runtime, job: Job, period: Period, *, force: bool = False) -> dict[str, Any]:
    """Work ``(job, period)`` if nobody else has it and it is not done; its row says how it went.

    An error marks the run failed (with the error) and is raised again, so the worker retries it.
    """
    with rt.work() as session:
        run = runs.claim(session, job.value, str(period), now=rt.now(), force=force)
        if run is None:
            current = runs.get(session, job.value, str(period))
            return runs.run_view(current) if current is not None else {"state": "missing"}
        run_id = run.id
    assert run_id is not None
    try:
        result = WORK[job](rt, period)
    except Exception as exc:
        with rt.work() as session:
            runs.fail(session, run_id, now=rt.now(), error=f"{type(exc).__name__}: {exc}")
        log.warning("monthly run %s %s failed: %s", job.value, period, exc)
        raise
    with rt.work() as session:
        runs.finish(session, run_id, now=rt.now(), result=result)
        done = runs.get(session, job.value, str(period))
        assert done is not None
        return runs.run_view(done)


def run_now(rt: Runtime, job: Job, period: Period, *, by: str) -> tuple[bool, dict[str, Any]]:
    """``dispatcher schedules run``: work ``(job, period)`` here and now, once. Returns ``(did_work,
    the run)``: a period already done is left as it is (running it again changes nothing)."""
    today = Period.of(rt.now().astimezone(rt.policy.tz).date())
    latest = today.shift(-1) if job is Job.report else today
    if period > latest:
        raise ValidationFailed(
            f"{job.value} of {period} is not due yet (the latest period it can run for is {latest})",
            details=[{"path": "period", "message": "in the future"}],
        )
    with rt.work() as session:
        runs.request(session, job.value, str(period), trigger=Trigger.manual, by=by, now=rt.now())
        current = runs.get(session, job.value, str(period))
        assert current is not None
        if current.state == RunState.succeeded:
            return False, runs.run_view(current)
    view = run_job(rt, job, period, force=True)
    return view.get("state") == RunState.succeeded, view


def list_runs(rt: Runtime, *, limit: int = 100, job: str | None = None) -> list[dict[str, Any]]:
    if job is not None:
        Job.parse(job)
    with rt.work(read_only=True) as session:
        return [runs.run_view(r) for r in runs.recent(session, limit=limit, job=job)]


def last_runs(rt: Runtime) -> dict[str, dict[str, Any] | None]:
    """The latest run of each job (the on-call console shows them)."""
    with rt.work(read_only=True) as session:
        out: dict[str, dict[str, Any] | None] = {}
        for job in Job:
            latest = runs.recent(session, limit=1, job=job.value)
            out[job.value] = runs.run_view(latest[0]) if latest else None
        return out


# -- the meeting's decisions and the training's attendance --------------------------------------


def decide(
    rt: Runtime, user: User | Actor, task_id: int, *, text: str, owner_unit: str, due: date | None,
    about_task_id: int | None,
) -> dict[str, Any]:  # fmt: skip
    """A decision of a dispatch meeting: a follow-up task with an owner and a deadline."""
    with rt.work() as session:
        org = rt.org(session)
        actor = user if isinstance(user, Actor) else Actor.of(user, org)
        deadline = None
        if due is not None:  # a date: the end of office hours that day
            close = rt.policy.office_hours.end
            deadline = datetime.combine(due, close, tzinfo=rt.policy.tz)
        result = record_decision(
            session, actor, task_id, text=text, owner_unit=owner_unit, due=deadline,
            about_task_id=about_task_id, org=org, now=rt.now(), policy=rt.policy,
        )  # fmt: skip
        deliveries = pending_webhooks(session, [result["task_id"]])
    rt.hand_off_webhooks(deliveries)
    return result


def attend(
    rt: Runtime, user: User | Actor, task_id: int, *, logins: list[str], present: bool
) -> dict[str, Any]:
    with rt.work() as session:
        actor = user if isinstance(user, Actor) else Actor.of(user, rt.org(session))
        return mark_attendance(session, actor, task_id, logins=logins, present=present, now=rt.now())
