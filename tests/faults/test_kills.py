"""Processes killed with ``kill -9`` while events flow (issue 12): workers every few seconds, the
APIs mid-request, the scheduler leader, and everything at once. For each: every accepted event
ends as exactly one task, no ledger number is skipped or reused, no supervision step is taken twice.

Short sizes in CI; ``DISPATCH_FAULTS=long`` runs the issue's (``make faults``). Figures are
appended to ``test-artifacts/faults/*.jsonl`` and summed up in docs/RELIABILITY.md.
"""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from schedules.leader import current_leader
from tests.faults.conftest import LEASE
from tests.faults.harness import (
    TEST_TIMEOUT,
    Load,
    api_ready,
    backdate_org,
    bodies,
    every,
    monthly_done,
    routed,
    size,
    tally,
    wait_routed,
)
from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(TEST_TIMEOUT)]


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def test_workers_killed_every_few_seconds(install) -> None:
    inst, fleet = install()
    fleet.two_of_each()
    load = Load(fleet.apis, inst.token, bodies(size(600, 10_000), _tag())).start()
    kills: list[str] = []
    boots = {"worker-1": 0, "worker-2": 0}

    def kill(n: int) -> None:
        name = f"worker-{n % 2 + 1}"
        if fleet.log(name).count("ready for action") > boots[name]:  # booted since its last kill
            boots[name] = fleet.log(name).count("ready for action")
            fleet.restart(name, wait=False)  # kill -9 of its group, started again at once
            kills.append(name)

    def busy() -> bool:  # kills go on until the load is in and nine tenths of it routed
        return not load.done or routed(inst.engine) < 0.9 * len(load.answers) or len(kills) < 3

    with every(3.0, kill) as errors:
        wait_for(
            lambda: not busy(),
            timeout=size(240, 900),
            interval=0.5,
            what="the load, nine tenths routed, with at least three kills",
        )
    assert not errors, errors
    load.join(10)
    took = wait_routed(inst.engine, load, since=time.monotonic(), what="the last kill")
    figures = tally(
        inst.engine,
        "kill -9 of a worker every 3 s",
        load,
        deliveries=inst.deliveries,
        recover_seconds=took,
        notes=f"{len(kills)} kills",
    )
    figures.assert_promise()
    assert figures.supervision_steps > 0, "the late-imported events were supervised"
    assert fleet.dead() == [], fleet.dead()


def test_apis_killed_mid_request(install) -> None:
    """Requests in flight die with their API; the client retries them (same ``external_id``) on the
    other API: whatever the dead one had committed answers as a duplicate, nothing is created twice."""
    inst, fleet = install()
    fleet.start_apis("api-1", "api-2")
    fleet.worker("worker-1", threads=4)
    fleet.scheduler()
    # single events (many requests in flight), an API killed every 2 s from the start
    load = Load(fleet.apis, inst.token, bodies(size(800, 10_000), _tag()), threads=6, batch_every=10**9)
    kills: list[str] = []

    def kill(n: int) -> None:
        name, other = f"api-{n % 2 + 1}", f"api-{(n + 1) % 2 + 1}"
        if api_ready(fleet.procs[other].url):  # one of the two answers: the load goes on
            fleet.restart(name, wait=False)
            kills.append(name)

    with every(2.0, kill) as errors:
        load.start()
        wait_for(
            lambda: load.done and len(kills) >= 3,
            timeout=size(240, 900),
            interval=0.5,
            what="the load, with at least three API kills",
        )
    assert not errors, errors
    load.join(10)
    for name in ("api-1", "api-2"):
        fleet.wait_api(fleet.procs[name])
    took = wait_routed(inst.engine, load, since=time.monotonic(), what="the last API kill")
    figures = tally(
        inst.engine,
        "kill -9 of an API every 2 s",
        load,
        deliveries=inst.deliveries,
        recover_seconds=took,
        notes=f"{len(kills)} kills; network errors retried: "
        f"{sum(v for k, v in load.http.items() if k.startswith('network'))}",
    )
    figures.assert_promise()
    assert any(k.startswith("network") for k in load.http), "no request was cut: the kills came too late"
    assert not load.refused, load.refused[:3]


def test_the_scheduler_leader_killed_hands_over_and_no_monthly_job_doubles(install) -> None:
    inst, fleet = install()
    expected = backdate_org(inst.engine)
    fleet.api("api-1")
    fleet.worker("worker-1", threads=4)
    load = Load(fleet.apis, inst.token, bodies(size(300, 3_000), _tag())).start()
    fleet.scheduler("scheduler-a")
    fleet.scheduler("scheduler-b")
    client = redis.Redis.from_url(inst.redis.url)
    leader = wait_for(lambda: current_leader(client, "dispatch"), timeout=30, what="a leader")
    pid = int(leader.split(":")[1])
    name = next(n for n, p in fleet.procs.items() if p.popen is not None and p.popen.pid == pid)
    fleet.kill(name)  # mid catch-up, mid load
    killed = time.monotonic()
    wait_for(
        lambda: (current_leader(client, "dispatch") or leader) != leader,
        timeout=float(LEASE) * 3,
        interval=0.1,
        what="the standby to lead",
    )
    handover = round(time.monotonic() - killed, 1)
    # within the lease and a renewal period; 2 s more for a busy two-core machine
    assert handover <= float(LEASE) * 4 / 3 + 3.0, handover
    load.join(size(240, 900))
    doubled_monthly = monthly_done(inst.engine, expected)
    wait_routed(inst.engine, load, since=time.monotonic(), what="the load")
    figures = tally(
        inst.engine,
        "kill -9 of the scheduler leader",
        load,
        deliveries=inst.deliveries,
        recover_seconds=handover,
        notes=f"standby led {handover} s after the kill (lease {LEASE} s); {len(expected)} monthly runs, "
        f"{sum(doubled_monthly.values())} doubled (runs, meetings, trainings, reports)",
    )
    figures.assert_promise()
    assert set(doubled_monthly.values()) == {0}, doubled_monthly


def test_everything_killed_at_once_and_restarted(install, cluster) -> None:
    """API, workers, scheduler, Redis (no persistence: its queue is gone) and PostgreSQL (immediate
    stop: a crash) all killed mid-flow; started again, the outbox relay routes what was accepted."""
    inst, fleet = install()
    fleet.api("api-1")
    fleet.worker("worker-1")
    fleet.scheduler()
    load = Load(fleet.apis, inst.token, bodies(size(600, 10_000), _tag()), patience=600).start()
    wait_for(lambda: load.progress() > len(load.events) // 3, timeout=120, what="a third of the load")
    fleet.kill_all()
    assert inst.redis.proc is not None
    inst.redis.proc.kill()
    inst.redis.proc.wait(10)
    cluster.stop("immediate")
    down = time.monotonic()
    time.sleep(3)
    cluster.start()
    inst.redis.start()
    for name in ("api-1", "worker-1", "scheduler"):
        fleet.restart(name)
    restarted = round(time.monotonic() - down, 1)
    load.join(size(300, 900))
    took = wait_routed(inst.engine, load, since=down, what="the restart")
    figures = tally(
        inst.engine,
        "everything killed at once, restarted",
        load,
        deliveries=inst.deliveries,
        recover_seconds=took,
        notes=f"down {restarted}s (PostgreSQL immediate stop, Redis emptied)",
    )
    figures.assert_promise()
