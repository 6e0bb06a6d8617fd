"""A Redis outage delays routing but loses nothing: the outbox relay delivers once Redis is back.

Runs on SQLite and (when configured) PostgreSQL. Redis is a private server this test stops.
"""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dispatcher.enums import EventStatus
from dispatcher.org.model import Org
from tests import factories
from tests.e2e.conftest import e2e_env, elapsed, ready, routing_state
from tests.support import RedisServer, wait_for

pytestmark = pytest.mark.e2e


def _events(n: int, tag: str) -> list[dict]:
    makers = (factories.complaint, factories.clue, factories.enterprise_request)
    return [makers[i % 3](f"{tag}-{i}") for i in range(n)]


def test_events_posted_while_redis_is_down_are_routed_when_it_returns(
    tmp_path: Path, database_url: str, engine: sa.Engine, loaded_org: Org, make_stack
) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    try:
        env = e2e_env(
            tmp_path / "data",
            DISPATCH_DATABASE_URL=database_url,
            DISPATCH_REDIS_URL=redis.url,
            DISPATCH_BROKER_NAMESPACE=f"zdout-{uuid.uuid4().hex[:10]}",
        )
        stack = make_stack(env)
        stack.api()
        stack.worker("-p", "1", "-t", "2")
        stack.start("scheduler", "scheduler")
        token = factories.source_token(engine)
        headers = {"Authorization": f"Bearer {token}"}
        tag = uuid.uuid4().hex[:8]
        ids: list[str] = []
        with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as client:
            for body in _events(20, f"{tag}-before"):
                r = client.post("/api/v1/events", json=body)
                assert r.status_code == 202, r.text
                ids.append(r.json()["event_id"])

            redis.stop()
            assert not ready(stack.url)  # readiness reports the broker down
            slowest = 0.0
            for body in _events(30, f"{tag}-during"):
                t0 = time.monotonic()
                r = client.post("/api/v1/events", json=body)
                slowest = max(slowest, elapsed(t0))
                assert r.status_code == 202, r.text
                ids.append(r.json()["event_id"])
            print(f"intake with Redis down: slowest answer {slowest}s")

        outage_ids = ids[20:]
        state = routing_state(engine, outage_ids)
        assert state["statuses"].get(EventStatus.accepted) == 30, state  # nothing could be routed

        t0 = time.monotonic()
        redis.start()  # same port, empty: the messages enqueued before the outage may be lost too
        assert_routed_once(engine, ids, stack, since=t0, timeout=60, after="Redis came back")
    finally:
        redis.stop()


def for_all_processes_alive(stack) -> bool:
    return all(p.poll() is None for p in stack.procs.values())


def assert_routed_once(
    engine: sa.Engine, ids: list[str], stack, *, since: float, timeout: float, after: str
) -> None:
    """Every event routed within ``timeout`` of ``since``, each to exactly one task, no process dead."""
    n = len(ids)
    wait_for(
        lambda: routing_state(engine, ids)["routed"] == n, timeout=timeout, interval=0.5,
        what=f"all {n} events routed after {after}; now {routing_state(engine, ids)}",
    )  # fmt: skip
    print(f"all {n} events routed {elapsed(since)}s after {after}")
    state = routing_state(engine, ids)
    assert state["with_task"] == n and not state["duplicates"], state
    assert for_all_processes_alive(stack), f"a process died before {after}"


def test_a_redis_stall_with_a_backlog_strands_nothing(
    tmp_path: Path, database_url: str, engine: sa.Engine, loaded_org: Org, make_stack
) -> None:
    """Issue 12: ``kill -STOP`` of Redis for 10 s with a routing backlog, then ``kill -CONT``. A worker's
    fetch may time out while Redis still moves the message into that live worker's ack set (an orphan,
    never requeued); the relay must not wait for it, and every event is routed within seconds."""
    redis = RedisServer(tmp_path / "redis").start()
    try:
        env = e2e_env(
            tmp_path / "data", DISPATCH_DATABASE_URL=database_url, DISPATCH_REDIS_URL=redis.url,
            DISPATCH_BROKER_NAMESPACE=f"zdstall-{uuid.uuid4().hex[:10]}",
        )  # fmt: skip
        stack = make_stack(env)
        stack.api()
        stack.worker("-p", "1", "-t", "2")
        stack.start("scheduler", "scheduler")
        token = factories.source_token(engine, rate=100_000.0, burst=100_000)
        tag = uuid.uuid4().hex[:8]
        ids: list[str] = []
        with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            for start in range(0, 300, 100):  # a backlog: three batches at once
                r = c.post("/api/v1/events:batch", json={"events": _events(100, f"{tag}-{start}")})
                assert r.status_code == 200, r.text
                ids += [x["event_id"] for x in r.json()["results"]]
        assert redis.proc is not None
        redis.proc.send_signal(signal.SIGSTOP)
        time.sleep(10)
        redis.proc.send_signal(signal.SIGCONT)
        t0 = time.monotonic()
        assert_routed_once(engine, ids, stack, since=t0, timeout=90, after="Redis resumed")
    finally:
        redis.stop()
