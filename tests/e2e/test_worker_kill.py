"""``kill -9`` of the whole worker process group mid-flow loses nothing and duplicates nothing.

Runs on SQLite and (when configured) PostgreSQL, on the run's Redis with a namespace of its own.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dispatcher.org.model import Org
from tests import factories
from tests.e2e.conftest import count_tasks, descendants, e2e_env, elapsed, routing_state
from tests.support import wait_for

pytestmark = pytest.mark.e2e

TOTAL = 1000
BATCH = 100


def test_kill_9_of_the_workers_mid_flow_loses_and_duplicates_nothing(
    tmp_path: Path,
    database_url: str,
    engine: sa.Engine,
    loaded_org: Org,
    redis_url: str,
    broker_namespace: str,
    make_stack,
) -> None:
    env = e2e_env(
        tmp_path / "data",
        DISPATCH_DATABASE_URL=database_url,
        DISPATCH_REDIS_URL=redis_url,
        DISPATCH_BROKER_NAMESPACE=broker_namespace,
    )
    stack = make_stack(env)
    stack.api()
    stack.start("scheduler", "scheduler")
    first = stack.worker("-p", "2", "-t", "4", name="worker-1")
    group = descendants(first.pid)
    assert len(group) >= 2, group  # dramatiq's forked worker processes, in the same process group
    assert all(os.getpgid(pid) == first.pid for pid in group)

    token = factories.source_token(engine, rate=100_000.0, burst=100_000)
    tag = uuid.uuid4().hex[:8]
    makers = (factories.complaint, factories.clue, factories.enterprise_request)
    bodies = [makers[i % 3](f"{tag}-{i}") for i in range(TOTAL)]
    ids: list[str] = []
    failures: list[str] = []

    def publish() -> None:
        try:
            with httpx.Client(
                base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as client:
                for i in range(0, TOTAL, BATCH):
                    r = client.post("/api/v1/events:batch", json={"events": bodies[i : i + BATCH]})
                    assert r.status_code == 200, r.text
                    answer = r.json()
                    assert answer["accepted"] == BATCH, answer
                    ids.extend(item["event_id"] for item in answer["results"])
        except BaseException as exc:
            failures.append(repr(exc))

    t_start = time.monotonic()
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    wait_for(lambda: count_tasks(engine) > 100 or failures, timeout=60, interval=0.05, what="100 tasks")
    assert not failures, failures
    routed_before_kill = count_tasks(engine)
    os.killpg(first.pid, signal.SIGKILL)  # dramatiq's main process and every forked worker
    first.wait(5)
    t_kill = time.monotonic()
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in group), timeout=5, what="the group to die")

    stack.worker("-p", "2", "-t", "4", name="worker-2")
    publisher.join(120)
    assert not publisher.is_alive() and not failures, failures
    assert len(ids) == TOTAL
    published_at = elapsed(t_start)

    wait_for(
        lambda: count_tasks(engine) >= TOTAL,
        timeout=120,
        interval=0.5,
        what=f"a task for each of {TOTAL} events (now {count_tasks(engine)})",
    )
    recovery = elapsed(t_kill)
    time.sleep(2)  # let any redelivery that is still in flight land before counting
    state = routing_state(engine, ids)
    with engine.connect() as conn:
        doubled = conn.execute(
            sa.text("SELECT event_id FROM tasks GROUP BY event_id HAVING count(*) > 1")
        ).all()
    print(
        f"[{engine.dialect.name}] {TOTAL} events published in {published_at}s; {routed_before_kill} tasks "
        f"before kill -9; all {TOTAL} routed {recovery}s after the kill"
    )
    assert doubled == []
    assert state["with_task"] == TOTAL and not state["duplicates"], state
    assert count_tasks(engine) == TOTAL
    assert state["routed"] == TOTAL, state
