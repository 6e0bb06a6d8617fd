"""Build the dramatiq Redis broker from the settings. Nothing is created at import time."""

from __future__ import annotations

from collections.abc import Sequence

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware
from redis.backoff import NoBackoff
from redis.retry import Retry

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
        "dramatiq_prom_host": "127.0.0.1",
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
        """Messages waiting in the routing queue (not counting those being worked on)."""
        return int(self.broker.do_qsize(ROUTING_QUEUE))  # type: ignore[attr-defined]

    def ping(self) -> bool:
        """Whether Redis answers (``/readyz``)."""
        return bool(self.broker.client.ping())  # type: ignore[attr-defined]

    def close(self) -> None:
        self.broker.close()
