"""Several machines, simulated on one (issue 12): two API processes, three workers and two
schedulers on one PostgreSQL and one Redis. Events go through both APIs while one of each is
killed; every event is dispatched exactly once and every monthly job runs once. A source's rate
limit holds across the API replicas, and intake keeps answering while Redis is down."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import httpx
import pytest
import redis

from schedules.leader import current_leader
from tests import factories
from tests.faults.harness import (
    TEST_TIMEOUT,
    Load,
    backdate_org,
    bodies,
    monthly_done,
    size,
    tally,
    wait_routed,
)
from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(TEST_TIMEOUT)]


def test_two_apis_three_workers_two_schedulers_one_of_each_killed(install) -> None:
    inst, fleet = install()
    expected = backdate_org(inst.engine)  # the monthly runs of the last two months are due
    fleet.start_apis("api-1", "api-2")
    for name in ("worker-1", "worker-2", "worker-3"):
        fleet.worker(name, threads=2)
    load = Load(fleet.apis, inst.token, bodies(size(900, 10_000), uuid.uuid4().hex[:8])).start()
    fleet.scheduler("scheduler-a")
    fleet.scheduler("scheduler-b")
    wait_for(lambda: load.progress() > len(load.events) // 3, timeout=120, what="a third of the load")

    client = redis.Redis.from_url(inst.redis.url)
    leader = wait_for(lambda: current_leader(client, "dispatch"), timeout=30, what="a leader")
    pid = int(leader.split(":")[1])
    scheduler = next(n for n, p in fleet.procs.items() if p.popen is not None and p.popen.pid == pid)
    for name in ("api-1", "worker-2", scheduler):  # one of each, without a word
        fleet.kill(name)
    killed = time.monotonic()
    load.join(size(240, 900))
    took = wait_routed(inst.engine, load, since=killed, what="the kills")

    doubled_monthly = monthly_done(inst.engine, expected)
    assert set(doubled_monthly.values()) == {0}, doubled_monthly
    figures = tally(
        inst.engine,
        "2 APIs, 3 workers, 2 schedulers; one of each killed",
        load,
        deliveries=inst.deliveries,
        recover_seconds=took,
        notes=f"{len(expected)} monthly runs, each once",
    )
    figures.assert_promise()
    assert sorted(fleet.dead()) == [], fleet.dead()


def _hammer(urls: list[str], token: str, n: int, tag: str) -> Counter[int]:
    """``n`` events as fast as possible, alternating between the APIs: the answers by status."""
    answers: Counter[int] = Counter()
    clients = [
        httpx.Client(base_url=u, headers={"Authorization": f"Bearer {token}"}, timeout=10) for u in urls
    ]
    try:
        for i in range(n):
            r = clients[i % len(clients)].post("/api/v1/events", json=factories.complaint(f"{tag}-{i}"))
            answers[r.status_code] += 1
            if r.status_code == 429:
                assert float(r.headers["retry-after"]) > 0
    finally:
        for c in clients:
            c.close()
    return answers


def test_a_source_rate_limit_holds_across_api_replicas_and_intake_outlives_redis(install) -> None:
    inst, fleet = install()
    token = factories.source_token(inst.engine, rate=0.5, burst=10)  # 10 at once, then one every 2 s
    fleet.start_apis("api-1", "api-2")
    started = time.monotonic()
    answers = _hammer(fleet.apis(), token, 30, uuid.uuid4().hex[:8])
    refill = int((time.monotonic() - started) * 0.5) + 1
    assert 10 <= answers[202] <= 10 + refill, f"two replicas allowed {answers[202]}, not ~10: {answers}"
    assert answers[429] == 30 - answers[202], answers

    assert inst.redis.proc is not None
    inst.redis.proc.kill()  # Redis gone: each API falls back to counting on its own
    inst.redis.proc.wait(10)
    started = time.monotonic()
    down = _hammer(fleet.apis(), token, 40, uuid.uuid4().hex[:8])
    refill = 2 * (int((time.monotonic() - started) * 0.5) + 1)  # two local buckets refill
    assert set(down) <= {202, 429}, f"intake without Redis: {down}"
    assert down[202] >= 2, f"intake must keep accepting while Redis is down: {down}"
    assert down[202] <= 2 * 10 + refill, f"each replica still limits on its own share: {down}"
