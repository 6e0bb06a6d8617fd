"""Supervision survives ``kill -9`` of everything: no step twice, none lost.

Real ``dispatcher api``, ``worker`` and ``scheduler`` processes (the deadline sweep every second,
from the policy file). Complaints are imported with a ``received_at`` 20 working days ago and
routed by the worker: clocks count from ``received_at`` (DESIGN §6), so both the accept and the
resolve clock of each dispatched task are long past every rung of the ladder, and their warnings
are moot (never issued after the deadline). Mid-flow every process group is SIGKILLed; more late
items are imported while the workers and the scheduler are down; everything starts again and must
take every remaining step, each once.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from dispatcher.db import unit_of_work
from dispatcher.models import Notification, SupervisionOrder, Task
from dispatcher.org.model import Org
from dispatcher.supervision.calendar import WorkCalendar
from dispatcher.wallclock import utcnow
from tests import factories
from tests.e2e.conftest import e2e_env, elapsed
from tests.support import wait_for

pytestmark = pytest.mark.e2e

TZ = ZoneInfo("Asia/Shanghai")
LADDER = {
    f"{clock}.{step}" for clock in ("accept", "resolve") for step in ("overdue", "escalated.1", "escalated.2")
}
FIRST, SECOND = 12, 8  # items imported before the kill, and while the workers and scheduler are down


def workdays_before(today: date, workdays: int) -> datetime:
    cal, day = WorkCalendar(), today
    while cal.workdays_after(day, today) < workdays:
        day -= timedelta(days=1)
    return datetime.combine(day, dtime(12), tzinfo=TZ)


def task_ids(engine: sa.Engine, ledger_tag: list[str]) -> list[int]:
    with unit_of_work(engine) as s:
        return sorted(
            t
            for t in s.exec(select(Task.id).where(col(Task.event_id).in_(ledger_tag))).all()
            if t is not None
        )


def orders(engine: sa.Engine) -> list[tuple[int, str]]:
    with unit_of_work(engine) as s:
        return [(o.task_id, o.step) for o in s.exec(select(SupervisionOrder)).all()]


def notes(engine: sa.Engine) -> list[tuple[int, str]]:
    with unit_of_work(engine) as s:
        rows = s.exec(select(Notification).where(col(Notification.kind).startswith("supervision."))).all()
        return [(n.task_id, n.kind) for n in rows]


def test_supervision_after_kill_9_of_everything_takes_no_step_twice_and_none_lost(
    tmp_path: Path,
    database_url: str,
    engine: sa.Engine,
    loaded_org: Org,
    redis_url: str,
    broker_namespace: str,
    make_stack,
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("sweep_seconds: 1\n", encoding="utf-8")
    env = e2e_env(
        tmp_path / "data",
        DISPATCH_DATABASE_URL=database_url,
        DISPATCH_REDIS_URL=redis_url,
        DISPATCH_BROKER_NAMESPACE=broker_namespace,
        DISPATCH_POLICY_FILE=str(policy),
    )
    t0 = time.monotonic()
    stack = make_stack(env)
    stack.api()
    stack.start("scheduler", "scheduler")
    stack.worker("-p", "1", "-t", "4", name="worker")

    # events received 20 working days ago, imported now; the worker routes them, the sweep (every
    # second) takes their steps
    received = workdays_before(utcnow().astimezone(TZ).date(), 20)
    token = factories.source_token(engine)
    tag = uuid.uuid4().hex[:8]

    def publish(first: int, count: int) -> list[str]:
        bodies = [
            {**factories.complaint(f"{tag}-{i}"), "received_at": received.isoformat()}
            for i in range(first, first + count)
        ]
        r = httpx.post(
            f"{stack.url}/api/v1/events:batch", json={"events": bodies},
            headers={"Authorization": f"Bearer {token}"}, timeout=30,
        )  # fmt: skip
        assert r.status_code == 200 and r.json()["accepted"] == count, r.text
        return [item["event_id"] for item in r.json()["results"]]

    first = publish(0, FIRST)
    wait_for(lambda: len(task_ids(engine, first)) == FIRST, timeout=30, what="routing")
    wait_for(lambda: len(orders(engine)) >= 4, timeout=30, interval=0.05, what="the first supervision steps")

    # kill -9 of every process group, mid-flow
    for proc in list(stack.procs.values()):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for proc in stack.procs.values():
        proc.wait(10)
    stack.remember()
    taken_before = len(orders(engine))
    assert taken_before <= len(LADDER) * FIRST

    # while the workers and the scheduler are down, more late items are imported
    stack.api()
    second = publish(FIRST, SECOND)
    time.sleep(1.0)
    assert len(orders(engine)) == taken_before

    # the rest again
    stack.start("scheduler-2", "scheduler")
    stack.worker("-p", "1", "-t", "4", name="worker-2")
    wait_for(lambda: len(task_ids(engine, first + second)) == FIRST + SECOND, timeout=30, what="routing")
    ids = task_ids(engine, first + second)
    total = len(LADDER) * len(ids)
    wait_for(
        lambda: len(orders(engine)) >= total, timeout=60, interval=0.25,
        what=f"all {total} steps after the restart (now {len(orders(engine))})",
    )  # fmt: skip
    time.sleep(2)  # redelivered messages of the killed worker land, the sweep runs twice more
    taken = orders(engine)
    counted = Counter(taken)
    assert max(counted.values()) == 1, [k for k, n in counted.items() if n > 1]
    assert len(taken) == total
    for task_id in ids:
        assert {step for t, step in taken if t == task_id} == LADDER, task_id
    told = notes(engine)
    assert len(told) == total  # one notification per step
    assert Counter(task for task, _ in told) == dict.fromkeys(ids, len(LADDER))
    with unit_of_work(engine) as s:
        rows = s.exec(select(Task).where(col(Task.id).in_(ids))).all()
        assert {(t.deadline_state, t.escalation_level, t.next_check_at) for t in rows} == {
            ("escalated", 2, None)
        }
    print(
        f"[{engine.dialect.name}] {taken_before} of {len(LADDER) * FIRST} steps before kill -9; "
        f"all {total} after restart; {elapsed(t0)}s"
    )
