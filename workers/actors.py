"""The actors. Each is a thin edge: open a unit of work, call the core, commit.

Actors are declared on a given broker by ``declare_actors`` (never at import time), so the
worker process, the tests' stub broker and the benchmarks each get their own.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from sqlalchemy.exc import IntegrityError

from dispatcher.clock import utcnow
from dispatcher.db import unit_of_work
from dispatcher.dispatch import route_event as route_event_core
from workers.names import BENCH_QUEUE, NOOP, ROUTE_EVENT, ROUTING_QUEUE
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


def route_event(event_id: str) -> None:
    """Route one event into a task. At-least-once delivery: a repeat finds the task and stops."""
    runtime = get_runtime()
    try:
        with unit_of_work(runtime.engine) as session:
            task = route_event_core(session, event_id, now=utcnow())
    except IntegrityError:
        # Another delivery of the same message created the task between our read and insert.
        log.info("route_event %s: already routed by a concurrent delivery", event_id)
        return
    if task is not None:
        log.info("event %s → task %s (%s, %s)", event_id, task.id, task.status, task.handler_unit)


def noop() -> None:
    """Does nothing; the benchmark's baseline."""


def declare_actors(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Bind the actors to ``broker``; returns them by name."""
    return {
        ROUTE_EVENT: dramatiq.actor(
            broker=broker, actor_name=ROUTE_EVENT, queue_name=ROUTING_QUEUE, max_retries=20
        )(route_event),
        NOOP: dramatiq.actor(broker=broker, actor_name=NOOP, queue_name=BENCH_QUEUE, max_retries=0)(noop),
    }
