"""Unit tests of the per-source token buckets (with a fake clock) and the outbox relay backoff."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatcher.intake.outbox import backoff
from dispatcher.intake.ratelimit import TokenBuckets


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def buckets(clock: FakeClock) -> TokenBuckets:
    return TokenBuckets(clock=clock)


def test_a_new_source_may_spend_its_whole_burst_at_once(buckets: TokenBuckets) -> None:
    assert [buckets.take("s", rate=1.0, burst=5) for _ in range(5)] == [0.0] * 5
    assert buckets.take("s", rate=1.0, burst=5) > 0


@pytest.mark.parametrize(("rate", "wait"), [(1.0, 1.0), (2.0, 0.5), (10.0, 0.1), (0.5, 2.0)])
def test_an_empty_bucket_answers_the_seconds_until_one_token_refills(
    buckets: TokenBuckets, rate: float, wait: float
) -> None:
    buckets.take("s", rate=rate, burst=1)

    assert buckets.take("s", rate=rate, burst=1) == pytest.approx(wait)


def test_the_retry_after_shrinks_as_time_passes(buckets: TokenBuckets, clock: FakeClock) -> None:
    buckets.take("s", rate=2.0, burst=1)

    clock.advance(0.2)

    assert buckets.take("s", rate=2.0, burst=1) == pytest.approx(0.3)


def test_a_refused_take_spends_nothing(buckets: TokenBuckets, clock: FakeClock) -> None:
    buckets.take("s", rate=1.0, burst=1)
    for _ in range(10):
        assert buckets.take("s", rate=1.0, burst=1) > 0

    clock.advance(1.0)

    assert buckets.take("s", rate=1.0, burst=1) == 0.0


def test_tokens_refill_at_the_rate(buckets: TokenBuckets, clock: FakeClock) -> None:
    for _ in range(3):
        buckets.take("s", rate=2.0, burst=3)

    clock.advance(1.0)  # two tokens back

    assert [buckets.take("s", rate=2.0, burst=3) for _ in range(3)] == [0.0, 0.0, pytest.approx(0.5)]


def test_an_idle_bucket_refills_no_further_than_its_burst(buckets: TokenBuckets, clock: FakeClock) -> None:
    buckets.take("s", rate=1.0, burst=3)

    clock.advance(3600)

    assert [buckets.take("s", rate=1.0, burst=3) for _ in range(4)][-1] == pytest.approx(1.0)


def test_sources_have_separate_buckets(buckets: TokenBuckets) -> None:
    buckets.take("a", rate=1.0, burst=1)

    assert buckets.take("a", rate=1.0, burst=1) > 0
    assert buckets.take("b", rate=1.0, burst=1) == 0.0
    assert buckets.take(("a", "batch"), rate=1.0, burst=1) == 0.0


def test_a_cost_spends_several_tokens_at_once(buckets: TokenBuckets) -> None:
    assert buckets.take("s", rate=1.0, burst=10, cost=7) == 0.0
    assert buckets.take("s", rate=1.0, burst=10, cost=7) == pytest.approx(4.0)
    assert buckets.take("s", rate=1.0, burst=10, cost=3) == 0.0


def test_a_cost_above_the_burst_is_capped_so_it_can_eventually_pass(
    buckets: TokenBuckets, clock: FakeClock
) -> None:
    assert buckets.take("s", rate=1.0, burst=5, cost=500) == 0.0
    assert buckets.take("s", rate=1.0, burst=5, cost=500) == pytest.approx(5.0)

    clock.advance(5.0)

    assert buckets.take("s", rate=1.0, burst=5, cost=500) == 0.0


def test_the_default_clock_is_monotonic_time() -> None:
    assert TokenBuckets().take("s", rate=1.0, burst=1) == 0.0


# -- outbox relay backoff -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "base", "cap", "seconds"),
    [
        (0, 1.0, 60.0, 1.0),
        (1, 1.0, 60.0, 2.0),
        (2, 1.0, 60.0, 4.0),
        (5, 1.0, 60.0, 32.0),
        (6, 1.0, 60.0, 60.0),  # 64 capped
        (0, 0.5, 300.0, 0.5),
        (3, 0.5, 300.0, 4.0),
        (3, 5.0, 30.0, 30.0),
        (20, 1.0, 10_000_000.0, 2.0**20),
        (21, 1.0, 10_000_000.0, 2.0**20),  # the exponent stops growing at 20
        (10_000, 1.0, 3600.0, 3600.0),  # no overflow for huge attempt counts
    ],
)
def test_backoff_doubles_from_base_up_to_the_cap(
    attempts: int, base: float, cap: float, seconds: float
) -> None:
    assert backoff(attempts, base=base, cap=cap) == timedelta(seconds=seconds)


def test_backoff_never_decreases_with_more_attempts() -> None:
    waits = [backoff(n, base=0.25, cap=120.0) for n in range(40)]

    assert waits == sorted(waits)
    assert waits[-1] == timedelta(seconds=120)
