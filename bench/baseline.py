"""The baseline: a bare dramatiq no-op actor on the same broker, with the same processes and threads.

The product's ``noop`` actor takes no arguments, so it cannot tell how long a message took.
``bench_noop`` is as bare, plus one ``RPUSH`` of ``"<sent> <done>"`` to a Redis list, which is
what lets the benchmark read each message's latency and the time the last one finished.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
import redis

from bench.harness import wait_for
from workers.names import BENCH_QUEUE

#: The timing no-op's actor name (the product's own ``noop`` is left alone).
BENCH_NOOP = "bench_noop"


def done_key(namespace: str) -> str:
    """The Redis list the timing no-op appends ``"<sent> <done>"`` to (inside the run's namespace)."""
    return f"{namespace}:bench:noop-done"


def declare_bench_noop(broker: dramatiq.Broker, client: redis.Redis, key: str) -> dramatiq.Actor[Any, Any]:
    def bench_noop(sent: float) -> None:
        client.rpush(key, f"{sent!r} {time.time()!r}")

    return dramatiq.actor(broker=broker, actor_name=BENCH_NOOP, queue_name=BENCH_QUEUE, max_retries=0)(
        bench_noop
    )


def enqueue_all(broker: dramatiq.Broker, count: int, clients: int) -> None:
    """Enqueue ``count`` timing no-ops from ``clients`` threads, each message stamped when sent."""
    broker.declare_queue(BENCH_QUEUE)
    errors: list[BaseException] = []

    def send(share: int) -> None:
        try:
            for _ in range(share):
                broker.enqueue(
                    dramatiq.Message(
                        queue_name=BENCH_QUEUE,
                        actor_name=BENCH_NOOP,
                        args=(time.time(),),
                        kwargs={},
                        options={},
                    )
                )
        except BaseException as exc:
            errors.append(exc)

    shares = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]
    threads = [threading.Thread(target=send, args=(share,), daemon=True) for share in shares if share]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def collect(client: redis.Redis, key: str, count: int, *, timeout: float) -> list[tuple[float, float]]:
    """Wait for ``count`` entries in ``key``; returns ``(sent, done)`` pairs."""
    wait_for(lambda: client.llen(key) >= count, timeout=timeout, what=f"{count} no-ops", interval=0.05)
    pairs = []
    for raw in client.lrange(key, 0, -1):
        sent, done = raw.split()
        pairs.append((float(sent), float(done)))
    return pairs
