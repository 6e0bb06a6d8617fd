"""Per-source rate limits shared by every API process, with intake kept alive while Redis is not.

One token bucket per source lives in Redis (a hash updated by one Lua script, on Redis's own
clock), so N API replicas allow the source's rate once, not N times. When Redis does not answer
within ``TIMEOUT``, or failed less than ``COOL_DOWN`` seconds ago, the process's own bucket
(``intake.ratelimit.TokenBuckets``) decides instead: intake keeps answering ``202`` during a
broker outage, each replica then enforcing the limit on its own share, as before issue 12.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from dispatcher.intake.ratelimit import TokenBuckets
from dispatcher.settings import Settings
from workers.names import rate_key

log = logging.getLogger(__name__)

#: Longest wait for Redis on a request's path (connect and answer).
TIMEOUT = 0.25
#: After Redis failed, this many seconds of local buckets before Redis is asked again.
COOL_DOWN = 5.0

# KEYS[1]: the bucket; ARGV: rate per second, burst, cost. Answers the seconds to wait ("0": taken),
# as a string (Lua numbers become integers in a Redis reply). The bucket expires once it would be
# full again, so idle sources cost nothing.
_TAKE = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'stamp', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return string.format('%.6f', wait)
"""


class RateLimiter(Protocol):
    def take(self, key: object, *, rate: float, burst: int, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; returns 0 when allowed, else the seconds to wait before retrying."""


class SharedBuckets:
    """``take`` as ``TokenBuckets.take``, counted in Redis across processes; local while Redis is out."""

    def __init__(
        self, client: redis.Redis, namespace: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._script = client.register_script(_TAKE)
        self._clock = clock
        self.local = TokenBuckets(clock=clock)
        self._lock = threading.Lock()
        self._probe = threading.Lock()  # held by the one request asking Redis again after a failure
        self._failed_at: float | None = None

    @property
    def shared(self) -> bool:
        """Whether the last decision was Redis's (False while cooling down after a failure)."""
        return self._failed_at is None

    def take(self, key: object, *, rate: float, burst: int, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; returns 0 when allowed, else the seconds to wait before retrying."""
        cost = min(cost, float(burst))
        route = self._route()
        if route != "local":
            try:
                answer = self._script(keys=[rate_key(self._namespace, key)], args=[rate, burst, cost])
            except redis.RedisError as exc:
                self._failed(exc)
            else:
                self._recovered()
                return float(answer)
            finally:
                if route == "probe":
                    self._probe.release()
        return self.local.take(key, rate=rate, burst=burst, cost=cost)

    def _route(self) -> str:
        """``shared`` while Redis answers; after a failure ``local`` until ``COOL_DOWN`` has passed,
        then ``probe`` for one request at a time (it asks Redis) and ``local`` for the others."""
        with self._lock:
            if self._failed_at is None:
                return "shared"
            if self._clock() - self._failed_at < COOL_DOWN:
                return "local"
        return "probe" if self._probe.acquire(blocking=False) else "local"

    def _failed(self, exc: redis.RedisError) -> None:
        with self._lock:
            first = self._failed_at is None
            self._failed_at = self._clock()
        if isinstance(exc, redis.ResponseError):
            # Redis answered, but no: a bug or a wrong key, not an outage
            log.error("rate limits: Redis refused the bucket script (%s); counting locally", exc)
        elif first:
            log.warning("rate limits: Redis unreachable (%s); each API process counts on its own", exc)

    def _recovered(self) -> None:
        with self._lock:
            was_down, self._failed_at = self._failed_at is not None, None
        if was_down:
            log.info("rate limits: Redis reachable again; counted across API processes")


def shared_buckets(settings: Settings) -> SharedBuckets:
    """The API's limiter on the configured Redis (one attempt per call, ``TIMEOUT`` at most)."""
    from workers.broker import redis_client

    return SharedBuckets(redis_client(settings, timeout=TIMEOUT, retry=False), settings.broker_namespace)
