"""One scheduler leads (DESIGN §3): the Redis lease, on a real Redis."""

from __future__ import annotations

import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from schedules.leader import Leadership, current_leader

pytestmark = pytest.mark.redis


def test_one_leads_the_other_waits_and_takes_over_when_the_lease_runs_out(
    redis_url: str, broker_namespace: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    first = Leadership(client, broker_namespace, lease_seconds=1.0)
    second = Leadership(client, broker_namespace, lease_seconds=1.0)
    assert first.renew() and first.leads
    assert not second.renew() and not second.leads
    assert current_leader(client, broker_namespace) == first.name
    for _ in range(4):  # renewing keeps the lead well past one lease
        time.sleep(0.3)
        first.renew()
        assert not second.renew()
    assert first.leads
    # the leader dies without a word (kill -9): nobody renews; the standby leads within the lease
    died = time.monotonic()
    while not second.renew():
        assert time.monotonic() - died < 1.0 + 0.5, "the standby did not take over within the lease"
        time.sleep(0.05)
    assert second.leads and current_leader(client, broker_namespace) == second.name
    assert not first.leads  # its own lease ran out by its clock: it no longer acts
    assert not first.renew() and not first.leads  # and coming back, it finds another leading


def test_a_clean_stop_hands_over_at_once(redis_url: str, broker_namespace: str) -> None:
    client = redis.Redis.from_url(redis_url)
    first = Leadership(client, broker_namespace, lease_seconds=30.0)
    second = Leadership(client, broker_namespace, lease_seconds=30.0)
    assert first.renew()
    first.release()
    assert second.renew() and current_leader(client, broker_namespace) == second.name


def test_a_leader_that_cannot_reach_redis_stops_acting_when_its_lease_may_have_run_out() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    lonely = Leadership(client, "x", lease_seconds=1.0)
    assert not lonely.renew() and not lonely.leads
    assert current_leader(client, "x") is None
