"""Two schedulers, one Redis, one database (DESIGN §3, §7): each monthly job runs once per period,
the periods missed while no scheduler ran are caught up on start, and when the leader is killed
with ``kill -9`` the standby leads within its lease and its triggers fire.

Real ``dispatcher scheduler`` and ``worker`` processes; the lease is 3 seconds here.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.db import unit_of_work
from dispatcher.models import Meeting, Report, ScheduleRun, SupervisionOrder, Training
from dispatcher.monthly.periods import Job, due_periods
from dispatcher.org.model import Org
from dispatcher.routing.dispatch import dispatch_event
from dispatcher.supervision.policy import DEFAULT_POLICY
from dispatcher.wallclock import utcnow
from schedules.leader import current_leader
from tests import factories
from tests.e2e.conftest import e2e_env, elapsed, run_cli
from tests.support import wait_for

pytestmark = pytest.mark.e2e

LEASE = 3.0


def runs(engine: sa.Engine) -> list[ScheduleRun]:
    with unit_of_work(engine) as s:
        return list(s.exec(select(ScheduleRun)).all())


def test_two_schedulers_run_each_job_once_catch_up_and_hand_over_after_kill_9(
    tmp_path: Path,
    database_url: str,
    engine: sa.Engine,
    loaded_org: Org,
    redis_url: str,
    broker_namespace: str,
    make_stack,
) -> None:
    # in service for 70 days, but no scheduler ran on the 1st of the month(s) since
    since = utcnow() - timedelta(days=70)
    with unit_of_work(engine) as s:
        s.execute(sa.text("UPDATE org_versions SET loaded_at = :t"), {"t": since.replace(tzinfo=None)})
    expected = {
        (job.value, str(period))
        for job in Job
        for period in due_periods(
            job, utcnow(), DEFAULT_POLICY.schedules, DEFAULT_POLICY.work_calendar(), DEFAULT_POLICY.tz,
            since=since,
        )
    }  # fmt: skip
    assert {job for job, _ in expected} == {j.value for j in Job}
    policy = tmp_path / "policy.yaml"
    policy.write_text("sweep_seconds: 1\n", encoding="utf-8")
    env = e2e_env(
        tmp_path / "data",
        DISPATCH_DATABASE_URL=database_url,
        DISPATCH_REDIS_URL=redis_url,
        DISPATCH_BROKER_NAMESPACE=broker_namespace,
        DISPATCH_POLICY_FILE=str(policy),
        DISPATCH_SCHEDULER_LEASE_SECONDS=str(LEASE),
    )
    t0 = time.monotonic()
    stack = make_stack(env)
    stack.worker("-p", "1", "-t", "2", name="worker")
    schedulers = {"a": stack.start("scheduler-a", "scheduler"), "b": stack.start("scheduler-b", "scheduler")}

    def all_done() -> bool:
        done = runs(engine)
        return len(done) == len(expected) and all(r.state == "succeeded" for r in done)

    wait_for(all_done, timeout=90, interval=0.5, what=f"the {len(expected)} monthly runs")
    done = runs(engine)
    assert {(r.job, r.period) for r in done} == expected
    assert {r.attempts for r in done} == {1} and {r.trigger for r in done} == {"catch_up"}
    with unit_of_work(engine) as s:
        meetings = Counter((m.zone_code, m.period) for m in s.exec(select(Meeting)).all())
        trainings = Counter((t.unit_code, t.period) for t in s.exec(select(Training)).all())
        reports = Counter(r.period for r in s.exec(select(Report)).all())
    dispatch_periods = {p for j, p in expected if j == Job.dispatch}
    assert set(meetings) == {(z.code, p) for z in loaded_org.zones for p in dispatch_periods}
    assert set(meetings.values()) == {1} and set(trainings.values()) == {1}
    assert set(reports) == {p for j, p in expected if j == Job.report} and set(reports.values()) == {1}

    # who leads? kill it without a word; the standby leads within the lease (plus a renewal period)
    client = redis.Redis.from_url(redis_url)
    leader = current_leader(client, broker_namespace)
    assert leader is not None
    pid = int(leader.split(":")[1])
    name = next(k for k, p in schedulers.items() if p.pid == pid)
    os.killpg(pid, signal.SIGKILL)
    schedulers[name].wait(10)
    killed = time.monotonic()
    wait_for(
        lambda: (current_leader(client, broker_namespace) or leader) != leader,
        timeout=LEASE * 2 + 2, interval=0.1, what="the standby to lead",
    )  # fmt: skip
    took = time.monotonic() - killed
    assert took <= LEASE + LEASE / 3 + 1.0, took
    survivor = next(p for k, p in schedulers.items() if k != name)
    assert str(survivor.pid) in (current_leader(client, broker_namespace) or "")

    # its triggers fire: a complaint imported 20 working days late is swept and supervised
    event_id = _publish_late(engine)
    with unit_of_work(engine) as s:
        task = dispatch_event(s, event_id, now=utcnow())
        assert task is not None
        task_id = task.id

    def supervised() -> bool:
        with unit_of_work(engine) as s:
            return bool(s.exec(select(SupervisionOrder).where(SupervisionOrder.task_id == task_id)).first())

    wait_for(supervised, timeout=30, interval=0.2, what="the new leader's sweep")
    assert len(runs(engine)) == len(expected)  # and nothing monthly doubled

    # by hand, twice: nothing changes
    report_period = max(p for j, p in expected if j == Job.report)
    for _ in range(2):
        out = run_cli("schedules", "run", "monthly-report", "--period", report_period, env=env)
        assert out.returncode == 0 and "already ran" in out.stdout, out.stdout + out.stderr
    assert len(runs(engine)) == len(expected)
    print(f"[{engine.dialect.name}] {len(expected)} runs once each; standby led {took:.1f}s after kill -9; "
          f"{elapsed(t0)}s")  # fmt: skip


def _publish_late(engine: sa.Engine) -> str:
    """A complaint received 40 days ago, stored as intake stores it (no API process needed here)."""
    from dispatcher.intake.register import IntakeContext, accept_event, parse_event
    from dispatcher.models import Source

    body = {**factories.complaint(), "received_at": (utcnow() - timedelta(days=40)).isoformat()}
    token = factories.source_token(engine)
    assert token
    with unit_of_work(engine) as s:
        source = s.exec(select(Source)).first()
        assert source is not None
        ctx = IntakeContext(
            now=utcnow(), secret_key="x" * 40, tz=DEFAULT_POLICY.tz, relay_after=timedelta(hours=1)
        )
        accepted = accept_event(s, source, parse_event(body), ctx)
        return accepted.event_id
