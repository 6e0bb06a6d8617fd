"""Per-source rate limits across API processes (issue 12): one bucket in Redis for every replica,
the process's own bucket while Redis does not answer, and back to Redis once it does."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dispatcher.http.ratelimit import COOL_DOWN, SharedBuckets, shared_buckets
from dispatcher.settings import Settings
from tests.support import RedisServer, free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _replica(url: str, namespace: str, clock: FakeClock | None = None) -> SharedBuckets:
    client = redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)
    return SharedBuckets(client, namespace, clock=clock or time.monotonic)


def test_two_replicas_spend_one_bucket(redis_url: str, broker_namespace: str) -> None:
    a, b = _replica(redis_url, broker_namespace), _replica(redis_url, broker_namespace)
    answers = [(a if i % 2 else b).take("src-1", rate=0.5, burst=6) for i in range(8)]
    assert answers[:6] == [0.0] * 6, "the burst is shared, not doubled"
    assert all(1.0 < wait <= 2.0 for wait in answers[6:]), answers  # one token every 2 s
    assert a.take("src-2", rate=0.5, burst=6) == 0.0, "another source has its own bucket"
    assert a.shared and b.shared


def test_a_refused_take_spends_nothing_and_tokens_come_back_at_the_rate(
    redis_url: str, broker_namespace: str
) -> None:
    a, b = _replica(redis_url, broker_namespace), _replica(redis_url, broker_namespace)
    assert a.take("s", rate=20.0, burst=2) == 0.0
    assert b.take("s", rate=20.0, burst=2) == 0.0
    wait = a.take("s", rate=20.0, burst=2)
    assert 0 < wait <= 0.05
    time.sleep(wait + 0.02)
    assert b.take("s", rate=20.0, burst=2) == 0.0, "refusals spent nothing; one token came back"


def test_the_bucket_expires_once_it_would_be_full(redis_url: str, broker_namespace: str) -> None:
    a = _replica(redis_url, broker_namespace)
    a.take("idle", rate=100.0, burst=10)
    ttl = redis.Redis.from_url(redis_url).pttl(f"{broker_namespace}:rate:idle")
    assert 0 < ttl <= 1100  # 10 tokens at 100/s refill in 100 ms, plus a second


def test_without_redis_each_process_counts_on_its_own_then_redis_again(tmp_path: Path) -> None:
    """Intake keeps answering while Redis is down: the local bucket decides, Redis is not asked
    again before ``COOL_DOWN``, and once it answers the shared bucket counts again."""
    server = RedisServer(tmp_path / "redis", port=free_port())
    clock = FakeClock()
    limiter = _replica(server.url, "ns", clock)  # nothing listens yet
    assert [limiter.take("s", rate=1.0, burst=3) for _ in range(3)] == [0.0] * 3
    assert limiter.take("s", rate=1.0, burst=3) > 0, "the local bucket still limits"
    assert not limiter.shared
    server.start()
    try:
        clock.now += COOL_DOWN / 2
        limiter.take("s", rate=1.0, burst=3)
        assert not limiter.shared, "Redis is not asked again before the cool-down has passed"
        clock.now += COOL_DOWN
        assert limiter.take("s", rate=1.0, burst=3) == 0.0, "a fresh shared bucket"
        assert limiter.shared
        assert redis.Redis.from_url(server.url).exists("ns:rate:s") == 1
    finally:
        server.stop()


@pytest.fixture
def stalled_redis(tmp_path: Path) -> Iterator[RedisServer]:
    import signal

    server = RedisServer(tmp_path / "stalled").start()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    try:
        yield server
    finally:
        server.proc.send_signal(signal.SIGCONT)
        server.stop()


def test_a_stalled_redis_costs_one_timeout_then_none(stalled_redis: RedisServer) -> None:
    """A Redis that accepts but never answers (SIGSTOP) times out once; the next requests, within
    the cool-down, do not wait for it at all."""
    limiter = _replica(stalled_redis.url, "ns")
    assert limiter.take("s", rate=1.0, burst=5) == 0.0
    assert not limiter.shared
    asked = []
    script = limiter._script
    limiter._script = lambda **kw: asked.append(kw) or script(**kw)  # type: ignore[assignment,func-returns-value]
    for _ in range(3):
        assert limiter.take("s", rate=1.0, burst=5) == 0.0
    assert asked == [], "no request waits for a Redis known to be down"


def test_after_the_cool_down_one_request_asks_redis_while_the_others_count_locally(
    stalled_redis: RedisServer,
) -> None:
    clock = FakeClock()
    limiter = _replica(stalled_redis.url, "ns", clock)
    limiter.take("s", rate=1.0, burst=50)  # times out: Redis is stalled
    clock.now += COOL_DOWN + 1
    asked: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def slow_script(**kw: object) -> str:  # the probe, held inside Redis's answer
        asked.append("probe")
        inside.set()
        release.wait(5)
        raise redis.TimeoutError("still stalled")

    limiter._script = slow_script  # type: ignore[assignment]
    probe = threading.Thread(target=limiter.take, args=("s",), kwargs={"rate": 1.0, "burst": 50})
    probe.start()
    assert inside.wait(5)
    others = [limiter.take("s", rate=1.0, burst=50) for _ in range(5)]
    release.set()
    probe.join(5)
    assert asked == ["probe"], "the others did not wait for Redis"
    assert others == [0.0] * 5


def test_a_refusing_redis_is_logged_as_an_error_and_intake_goes_on(
    redis_url: str, broker_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    redis.Redis.from_url(redis_url).set(f"{broker_namespace}:rate:s", "not a hash")  # WRONGTYPE
    limiter = _replica(redis_url, broker_namespace)
    with caplog.at_level(logging.ERROR, logger="dispatcher.http.ratelimit"):
        assert limiter.take("s", rate=1.0, burst=2) == 0.0
    assert not limiter.shared
    assert "refused the bucket script" in caplog.text


def test_the_api_limiter_from_the_settings_shares_its_buckets(settings: Settings) -> None:
    """``shared_buckets(settings)``: the production client (one attempt, a quarter second)."""
    a, b = shared_buckets(settings), shared_buckets(settings)
    assert [a.take("src", rate=0.1, burst=2), b.take("src", rate=0.1, burst=2)] == [0.0, 0.0]
    assert b.take("src", rate=0.1, burst=2) > 0
    assert a.shared and b.shared
