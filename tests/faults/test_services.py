"""The services under the processes fail while events flow (issue 12): Redis stalls (SIGSTOP 10 s)
with a backlog, Redis restarts empty (no persistence: every queued message lost), PostgreSQL
restarts (the API answers ``503`` with ``Retry-After``; the client retries; nothing half-written).

Each test has its own PostgreSQL cluster and Redis server (``tests.faults.conftest``).
"""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from tests.faults.harness import TEST_TIMEOUT, Load, bodies, size, tally, wait_routed
from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(TEST_TIMEOUT)]


def _fleet(install):  # type: ignore[no-untyped-def]
    inst, fleet = install()
    return inst, fleet.two_of_each()


def test_a_redis_stall_with_a_backlog(install) -> None:
    inst, fleet = _fleet(install)
    load = Load(fleet.apis, inst.token, bodies(size(1_200, 10_000), uuid.uuid4().hex[:8]), batch=50).start()
    wait_for(lambda: load.progress() > len(load.events) // 4, timeout=120, what="a quarter of the load")
    proc = inst.redis.proc
    assert proc is not None
    proc.send_signal(signal.SIGSTOP)
    time.sleep(10)
    proc.send_signal(signal.SIGCONT)
    resumed = time.monotonic()
    load.join(size(240, 900))
    took = wait_routed(inst.engine, load, since=resumed, what="Redis resumed")
    figures = tally(
        inst.engine,
        "Redis stalled 10 s (SIGSTOP) with a backlog",
        load,
        deliveries=inst.deliveries,
        recover_seconds=took,
        notes="recovery counted from SIGCONT",
    )
    figures.assert_promise()
    assert fleet.dead() == [], fleet.dead()


def test_a_redis_restart_without_persistence(install) -> None:
    inst, fleet = _fleet(install)
    load = Load(fleet.apis, inst.token, bodies(size(1_200, 10_000), uuid.uuid4().hex[:8]), batch=50).start()
    wait_for(lambda: load.progress() > len(load.events) // 4, timeout=120, what="a quarter of the load")
    proc = inst.redis.proc
    assert proc is not None
    proc.kill()  # its queues, in flight and ready, are gone with it
    proc.wait(10)
    time.sleep(3)
    inst.redis.start()
    back = time.monotonic()
    load.join(size(240, 900))
    took = wait_routed(inst.engine, load, since=back, what="Redis came back empty")
    figures = tally(
        inst.engine,
        "Redis killed, restarted empty after 3 s",
        load,
        deliveries=inst.deliveries,
        recover_seconds=took,
        notes="recovery counted from the restart; the outbox relay re-sent what was lost",
    )
    figures.assert_promise()
    assert fleet.dead() == [], fleet.dead()


def test_a_postgresql_restart_answers_503_with_retry_after_and_half_writes_nothing(install, cluster) -> None:
    inst, fleet = _fleet(install)
    load = Load(
        fleet.apis, inst.token, bodies(size(1_200, 10_000), uuid.uuid4().hex[:8]), batch=50, patience=600
    ).start()
    wait_for(lambda: load.progress() > len(load.events) // 4, timeout=120, what="a quarter of the load")
    cluster.stop("fast")  # every connection closed under the processes' feet
    time.sleep(5)
    cluster.start()
    back = time.monotonic()
    load.join(size(300, 900))
    took = wait_routed(inst.engine, load, since=back, what="PostgreSQL came back")
    figures = tally(
        inst.engine,
        "PostgreSQL stopped 5 s, restarted",
        load,
        deliveries=inst.deliveries,
        recover_seconds=took,
        notes=f"503 answers: {load.http.get('503', 0)}, all with Retry-After",
    )
    assert load.http.get("503", 0) > 0, f"no request met the outage: {load.http}"
    assert load.http.get("503", 0) == load.http.get("503 with Retry-After", 0), load.http
    assert not [k for k in load.http if k.startswith("5") and k not in ("503", "503 with Retry-After")], (
        load.http
    )
    figures.assert_promise()
    assert fleet.dead() == [], fleet.dead()
