"""The actors: each parses its message and calls one use case on the process's runtime.

Actors are declared on a given broker by ``declare_actors`` (never at import time), so the
worker process, the tests' broker and the benchmarks each get their own. Their runtime is the
process's (``bootstrap.current_runtime``), whose queue sends follow-up messages (webhook
deliveries) on the same broker.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import dramatiq

from dispatcher.bootstrap import current_runtime
from dispatcher.db import is_connection_error
from dispatcher.monthly.periods import Job, Period
from dispatcher.monthly.service import run_job
from dispatcher.notify.service import deliver_webhook as deliver_webhook_now
from dispatcher.routing.service import dispatch_events
from dispatcher.supervision.service import supervise_task as supervise_now
from workers.names import (
    BENCH_QUEUE,
    DELIVER_WEBHOOK,
    MONTHLY_QUEUE,
    NOOP,
    NOTIFY_QUEUE,
    ROUTE_EVENTS,
    ROUTING_QUEUE,
    RUN_MONTHLY,
    SUPERVISE_TASK,
    SUPERVISION_QUEUE,
)

log = logging.getLogger(__name__)


class DatabaseUnavailable(dramatiq.Retry):
    """The database did not answer: retried with backoff, told in one log line, not a traceback
    (a 10 s outage used to write hundreds of full tracebacks into the worker log)."""


def quiet_outage(fn: Callable[..., None]) -> Callable[..., None]:
    """Run ``fn``; a database outage becomes one warning line and a retry (issue 12)."""

    @functools.wraps(fn)
    def run(*args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            reason = f"{type(exc).__name__}: {first[0] if first else ''}"
            log.warning("%s: the database does not answer, will retry (%s)", fn.__name__, reason)
            raise DatabaseUnavailable(reason) from None

    return run


def route_events(event_ids: list[str]) -> None:
    """Route events into tasks (one message per intake request, up to ``ROUTE_CHUNK`` ids)."""
    dispatch_events(current_runtime(), event_ids)


class WebhookFailed(dramatiq.Retry):
    """A delivery attempt failed; dramatiq retries it with backoff (logged as one warning, no traceback)."""


def deliver_webhook(notification_id: int) -> None:
    """Post one notification to its unit's webhook; after the last try it lands in the failed list."""
    error = deliver_webhook_now(current_runtime(), notification_id)
    if error is not None:
        raise WebhookFailed(f"notification {notification_id}: {error}")


def supervise_task(task_id: int) -> None:
    """督办: take the supervision steps of one task that are due (each exactly once)."""
    supervise_now(current_runtime(), task_id)


def run_monthly(job: str, period: str) -> None:
    """一月一报告 / 调度 / 培训: work one ``(job, period)`` run, once (one done or in hand is left alone)."""
    run_job(current_runtime(), Job.parse(job), Period.parse(period))


def noop() -> None:
    """Does nothing; the benchmark's baseline."""


def declare_actors(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Bind the actors to ``broker``; returns them by name.

    Every actor retries with backoff from 1 s to 1 min. Routing and supervision retry a
    database blip (past the retries the outbox relay and the sweep come back to them); a webhook
    counts its attempts in the database (``webhook_max_attempts``), dramatiq only paces them.
    """
    plan: list[tuple[str, str, Callable[..., None], int]] = [
        (ROUTE_EVENTS, ROUTING_QUEUE, route_events, 20),
        (DELIVER_WEBHOOK, NOTIFY_QUEUE, deliver_webhook, 50),
        (SUPERVISE_TASK, SUPERVISION_QUEUE, supervise_task, 20),
        (RUN_MONTHLY, MONTHLY_QUEUE, run_monthly, 2),
    ]
    actors: dict[str, dramatiq.Actor[Any, Any]] = {
        name: dramatiq.actor(
            broker=broker, actor_name=name, queue_name=queue, max_retries=retries, min_backoff=1_000,
            max_backoff=60_000,
        )(quiet_outage(fn))
        for name, queue, fn, retries in plan
    }  # fmt: skip
    actors[NOOP] = dramatiq.actor(broker=broker, actor_name=NOOP, queue_name=BENCH_QUEUE, max_retries=0)(noop)
    return actors
