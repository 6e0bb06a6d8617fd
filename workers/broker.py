"""Build the dramatiq Redis broker from the settings. Nothing is created at import time."""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware
from redis.backoff import NoBackoff
from redis.retry import Retry

from dispatcher.oncall.broker import DeadLetter, QueueDepth, WorkerBeat
from dispatcher.settings import Settings
from workers.names import (
    ALL_QUEUES,
    DELIVER_WEBHOOK,
    MONTHLY_QUEUE,
    NOTIFY_QUEUE,
    ROUTE_CHUNK,
    ROUTE_EVENTS,
    ROUTING_QUEUE,
    RUN_MONTHLY,
    SUPERVISE_TASK,
    SUPERVISION_QUEUE,
    leader_key,
)


def redis_client(settings: Settings, *, timeout: float = 5.0, retry: bool = True) -> redis.Redis:
    """A client for the configured Redis (a server, or the embedded one's unix socket).

    ``retry=False``: one attempt per call (redis-py otherwise retries with backoff), for callers
    that must know quickly, such as the scheduler renewing its lease.
    """
    extra = {} if retry else {"retry": Retry(NoBackoff(), 0)}
    return redis.Redis.from_url(
        settings.resolved_redis_url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
        **extra,
    )


def build_broker(settings: Settings, *, prometheus: bool = False, timeout: float = 5.0) -> RedisBroker:
    """The broker every process shares.

    Heartbeat and maintenance are tuned so the unacknowledged messages of a worker killed
    with ``kill -9`` are requeued by a live worker within ``heartbeat_timeout`` plus a few
    seconds (dramatiq's defaults: 60 s and a 0.1% chance per command). ``timeout`` bounds
    every Redis call: the API uses a short one so intake answers fast while Redis is down.
    """
    broker = RedisBroker(
        client=redis_client(settings, timeout=timeout),
        namespace=settings.broker_namespace,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=settings.maintenance_chance,
    )
    if prometheus and settings.worker_metrics_port:
        broker.add_middleware(_prometheus())
    for queue in ALL_QUEUES:
        broker.declare_queue(queue)
    return broker


def _prometheus() -> Middleware:
    from dramatiq.middleware.prometheus import Prometheus

    return Prometheus()


def prometheus_env(settings: Settings) -> dict[str, str]:
    """Environment for a worker process so dramatiq's Prometheus exposition server lands where we want."""
    db = (settings.data_dir / "prometheus").resolve()
    db.mkdir(parents=True, exist_ok=True)
    return {
        "dramatiq_prom_host": settings.worker_metrics_host,
        "dramatiq_prom_port": str(settings.worker_metrics_port),
        "dramatiq_prom_db": str(db),
        "PROMETHEUS_MULTIPROC_DIR": str(db),
    }


class Enqueuer:
    """The core's ``runtime.Queue`` on dramatiq: sends messages without importing the actors."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def route_events(self, event_ids: Sequence[str]) -> None:
        """Ask the workers to route these events: one message per ``ROUTE_CHUNK`` ids."""
        ids = list(event_ids)
        for start in range(0, len(ids), ROUTE_CHUNK):
            self.broker.enqueue(
                dramatiq.Message(
                    queue_name=ROUTING_QUEUE,
                    actor_name=ROUTE_EVENTS,
                    args=(ids[start : start + ROUTE_CHUNK],),
                    kwargs={},
                    options={},
                )
            )

    def deliver_webhooks(self, notification_ids: Sequence[int]) -> None:
        """Ask the workers to post these notifications to their units' webhooks."""
        for notification_id in notification_ids:
            self.broker.enqueue(
                dramatiq.Message(
                    queue_name=NOTIFY_QUEUE, actor_name=DELIVER_WEBHOOK, args=(notification_id,), kwargs={},
                    options={},
                )
            )  # fmt: skip

    def supervise(self, task_ids: Sequence[int]) -> None:
        """Ask the workers to take the due supervision steps of these tasks."""
        for task_id in task_ids:
            self.broker.enqueue(
                dramatiq.Message(
                    queue_name=SUPERVISION_QUEUE,
                    actor_name=SUPERVISE_TASK,
                    args=(task_id,),
                    kwargs={},
                    options={},
                )
            )

    def run_monthly(self, job: str, period: str) -> None:
        """Ask the workers to work one monthly run."""
        self.broker.enqueue(
            dramatiq.Message(
                queue_name=MONTHLY_QUEUE, actor_name=RUN_MONTHLY, args=(job, period), kwargs={}, options={}
            )
        )

    def routing_backlog(self) -> int:
        """Routing messages waiting to be fetched (dramatiq's ``qsize`` would also count fetched,
        unacknowledged ones — an orphan of a Redis stall among them, for ever)."""
        return int(self._redis.llen(self._key(ROUTING_QUEUE)))

    # -- what on-call staff see (``dispatcher.oncall.broker.Broker``) --------------------------------
    # The keys are dramatiq's Redis layout (``dramatiq/brokers/redis/dispatch.lua``): per queue a list
    # of ready ids and a hash of their messages (which also holds the fetched, unacknowledged ones), the
    # same pair for the delay queue ``<queue>.DQ``, and a sorted set plus hash of dead letters
    # ``<queue>.XQ``; a sorted set of worker heartbeats.

    def _key(self, name: str) -> str:
        return f"{self.broker.namespace}:{name}"  # type: ignore[attr-defined]

    @property
    def _redis(self) -> Any:  # redis-py's answers are typed loosely (bytes | str | int …)
        return self.broker.client  # type: ignore[attr-defined]

    def depths(self) -> list[QueueDepth]:
        pipe = self._redis.pipeline(transaction=False)
        for queue in ALL_QUEUES:
            pipe.llen(self._key(queue))
            pipe.hlen(self._key(f"{queue}.msgs"))
            pipe.hlen(self._key(f"{queue}.DQ.msgs"))
            pipe.zcard(self._key(f"{queue}.XQ"))
        counts = pipe.execute()
        depths = []
        for i, queue in enumerate(ALL_QUEUES):
            ready, held, delayed, dead = (int(n) for n in counts[4 * i : 4 * i + 4])
            depths.append(QueueDepth(queue, ready, delayed, max(0, held - ready), dead))
        return depths

    def workers(self) -> list[WorkerBeat]:
        # dramatiq records a heartbeat for every broker command, an API's enqueue or the relay's queue
        # size included: only the ids a worker process named at start (``name_worker``) are workers.
        beats = self._redis.zrange(self._key("__heartbeats__"), 0, -1, desc=True, withscores=True)
        names = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in
                 self._redis.hgetall(self._key(WORKER_NAMES)).items()}  # fmt: skip
        timeout = self.broker.heartbeat_timeout  # type: ignore[attr-defined]
        now_ms = datetime.now(UTC).timestamp() * 1000
        found = []
        for raw, score in beats:
            worker = raw.decode() if isinstance(raw, bytes) else str(raw)
            name = names.pop(worker, None)
            if name is None:
                continue
            seen = datetime.fromtimestamp(score / 1000, UTC)
            label = (name.decode() if isinstance(name, bytes) else str(name)).split("@")[0]
            found.append(WorkerBeat(worker, label, seen, now_ms - score < timeout))
        # A name with no heartbeat is a worker still booting (its first fetch comes later: keep it)
        # or one whose heartbeats dramatiq's maintenance removed; forget the latter after a day.
        stale = [w for w, v in names.items() if now_ms - _named_at(v) > NAME_KEPT_MS]
        if stale:
            with contextlib.suppress(redis.RedisError):
                self._redis.hdel(self._key(WORKER_NAMES), *stale)
        return found

    def leader(self) -> str | None:
        value = self._redis.get(leader_key(self.broker.namespace))  # type: ignore[attr-defined]
        return value.decode() if isinstance(value, bytes) else None

    def dead_letters(self, limit: int = 200) -> list[DeadLetter]:
        letters = []
        for queue in ALL_QUEUES:
            ids = self._redis.zrange(self._key(f"{queue}.XQ"), 0, limit - 1, desc=True, withscores=True)
            if not ids:
                continue
            bodies = self._redis.hmget(self._key(f"{queue}.XQ.msgs"), [i for i, _ in ids])
            for (raw_id, score), body in zip(ids, bodies, strict=True):
                if body is None:
                    continue
                letters.append(_dead_letter(queue, raw_id.decode(), body, score))
        letters.sort(key=lambda d: d.dead_since, reverse=True)
        return letters[:limit]

    def _find_dead(self, message_id: str) -> tuple[str, bytes] | None:
        for queue in ALL_QUEUES:
            body = self._redis.hget(self._key(f"{queue}.XQ.msgs"), message_id)
            if body is not None:
                return queue, body
        return None

    def retry_dead(self, message_id: str | None = None) -> int:
        if message_id is None:
            return sum(self.retry_dead(d.id) for d in self.dead_letters(limit=10_000))
        found = self._find_dead(message_id)
        if found is None:
            return 0
        queue, body = found
        message = dramatiq.Message.decode(body)
        options = {k: v for k, v in message.options.items() if k not in RETRY_STATE}
        # Enqueued first, removed from the dead letters second: a crash in between leaves a
        # duplicate (harmless, every actor is idempotent), never a loss.
        self.broker.enqueue(message.copy(options=options))
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._key(f"{queue}.XQ"), message_id)
        pipe.hdel(self._key(f"{queue}.XQ.msgs"), message_id)
        pipe.execute()
        return 1

    def purge_dead(self, message_id: str) -> bool:
        found = self._find_dead(message_id)
        if found is None:
            return False
        queue = found[0]
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._key(f"{queue}.XQ"), message_id)
        pipe.hdel(self._key(f"{queue}.XQ.msgs"), message_id)
        removed = pipe.execute()
        return bool(removed[0])

    def name_worker(self) -> None:
        """Tell on-call staff who this worker process is (its heartbeats carry only a random id)."""
        with contextlib.suppress(redis.RedisError):
            self._redis.hset(
                self._key(WORKER_NAMES), self.broker.broker_id,  # type: ignore[attr-defined]
                f"{socket.gethostname()}:{os.getpid()}@{int(datetime.now(UTC).timestamp() * 1000)}",
            )  # fmt: skip

    def ping(self) -> bool:
        """Whether Redis answers (``/readyz``)."""
        return bool(self.broker.client.ping())  # type: ignore[attr-defined]

    def close(self) -> None:
        self.broker.close()


#: Hash of worker id → ``host:pid``, written by each worker process at start.
WORKER_NAMES = "__worker_names__"
#: How long the name of a worker with no heartbeat is kept (a booting worker has none yet).
NAME_KEPT_MS = 24 * 3600 * 1000


def _named_at(value: bytes | str) -> float:
    """When a worker named itself (``host:pid@<ms>``); 0 for a name without a time."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    try:
        return float(text.rsplit("@", 1)[1])
    except (IndexError, ValueError):
        return 0.0


#: What the Retries middleware adds to a message as it fails; a dead letter retried starts afresh.
RETRY_STATE = frozenset({"retries", "traceback", "requeue_timestamp"})


def _dead_letter(queue: str, message_id: str, body: bytes, score: float) -> DeadLetter:
    try:
        message = dramatiq.Message.decode(body)
    except Exception as exc:  # an unreadable message is still shown, so it can be purged
        return DeadLetter(message_id, queue, "?", [], 0, f"unreadable message: {exc}", "",
                          datetime.fromtimestamp(score / 1000, UTC))  # fmt: skip
    trace = str(message.options.get("traceback") or "")
    last = next((line for line in reversed(trace.strip().splitlines()) if line.strip()), "")
    return DeadLetter(
        id=message_id,
        queue=queue,
        actor=message.actor_name,
        args=list(message.args),
        retries=int(message.options.get("retries", 0)),
        error=last[:500],
        traceback=trace[-4000:],
        dead_since=datetime.fromtimestamp(score / 1000, UTC),
    )


class CoalescingEnqueuer(Enqueuer):
    """The API's queue: the routing ids of requests answered close together share a message.

    ``route_events`` only hands the ids to a sender thread and returns: a request no longer waits
    for Redis, and under load one message (one Redis round trip, one routing transaction)
    carries the events of several requests. The sender waits ``linger`` seconds after the first
    id of a message for others to join (up to ``ROUTE_CHUNK`` per message).

    Nothing is lost by this: the events are committed before their ids get here, with their
    outbox state; if the process dies before sending, or Redis refuses, the outbox relay sends
    them after ``relay_after`` (``on_failure`` is told how many, for the log and the metric).
    Ids still waiting are sent when the process exits normally.
    """

    def __init__(
        self, broker: dramatiq.Broker, *, linger: float, on_failure: Callable[[int, Exception], None]
    ) -> None:
        super().__init__(broker)
        self.linger = linger
        self.on_failure = on_failure
        self._pending: list[str] = []
        self._ready = threading.Condition()
        self._sender: threading.Thread | None = None
        self._closed = False
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        """In a forked child: the parent sends what it had; the child starts afresh."""
        self._pending = []
        self._ready = threading.Condition()
        self._sender = None

    def route_events(self, event_ids: Sequence[str]) -> None:
        with self._ready:
            if self._closed:
                raise RuntimeError("the enqueuer is closed")
            self._pending.extend(event_ids)
            if self._sender is None or not self._sender.is_alive():  # first use (or after a fork)
                self._sender = threading.Thread(target=self._send_forever, name="route-sender", daemon=True)
                self._sender.start()
                atexit.register(self.flush)
            self._ready.notify()

    def _send_forever(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closed:
                    self._ready.wait()
                if not self._pending:
                    return
            time.sleep(self.linger)  # let the requests answered meanwhile join this message
            self.flush()

    def flush(self) -> None:
        """Send every id waiting now (the sender's step; also at exit)."""
        with self._ready:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            super().route_events(batch)
        except Exception as exc:
            self.on_failure(len(batch), exc)

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._sender is not None:
            self._sender.join(timeout=5)
        self.flush()
        super().close()
