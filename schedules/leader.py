"""One scheduler leads (DESIGN §3): a lock in Redis with a lease, renewed while the leader lives.

redis-py's ``Lock`` does the atomic parts (``SET NX PX`` to take it, a Lua script to renew only
one's own token); its token is the leader's name (host, pid and a random tail), so anyone can
read who leads. The leader renews every third of the lease; a standby tries as often, so when a
leader dies (``kill -9``: no release) a standby leads within the lease plus a third of it, and a
leader that cannot reach Redis stops acting once its lease may have run out — two never act at
once for longer than the clock drift between them. The embedded Redis works the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid

import redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from workers.names import leader_key

log = logging.getLogger(__name__)


def current_leader(client: redis.Redis, namespace: str) -> str | None:
    """Who leads now (``host:pid:tail``), or None (nobody, or Redis unreachable)."""
    try:
        value = client.get(leader_key(namespace))
    except RedisError:
        return None
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class Leadership:
    """This scheduler's claim to lead: ``renew()`` every third of the lease, ``leads`` before acting."""

    def __init__(self, client: redis.Redis, namespace: str, lease_seconds: float) -> None:
        self.lease = lease_seconds
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._lock = Lock(client, leader_key(namespace), timeout=lease_seconds, thread_local=False)
        self._held = False
        self._until = 0.0  #: monotonic time until which our lease surely holds
        self._warned = False

    @property
    def leads(self) -> bool:
        return self._held and time.monotonic() < self._until

    def renew(self) -> bool:
        """Take or keep the lead; returns True when this call made us leader (we were not before)."""
        started = time.monotonic()
        was = self.leads
        try:
            if self._held:
                try:
                    self._lock.reacquire()
                except LockError:  # our lease ran out and another took it
                    self._held = False
                    log.warning("scheduler %s lost the lead", self.name)
            if not self._held:
                self._held = bool(self._lock.acquire(blocking=False, token=self.name))
            if self._held:
                self._until = started + self.lease * 0.9  # a margin for the round trip
            self._warned = False
        except RedisError as exc:
            if not self._warned:
                log.warning("scheduler %s cannot reach Redis to renew its lead: %s", self.name, exc)
                self._warned = True
        if self.leads and not was:
            log.info("scheduler %s leads (lease %.0fs)", self.name, self.lease)
        return self.leads and not was

    def release(self) -> None:
        if not self._held:
            return
        with contextlib.suppress(LockError, RedisError):  # it runs out by itself anyway
            self._lock.release()
        self._held = False
