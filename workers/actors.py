"""The actors. Each is a thin edge: open a unit of work, call the core, commit.

Actors are declared on a given broker by ``declare_actors`` (never at import time), so the
worker process, the tests' stub broker and the benchmarks each get their own.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from dispatcher.clock import utcnow
from dispatcher.db import with_retries
from dispatcher.dispatch import route_event as route_event_core
from workers.names import BENCH_QUEUE, NOOP, ROUTE_EVENTS, ROUTING_QUEUE
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


def route_events(event_ids: list[str]) -> None:
    """Route events into tasks, in one transaction, each in its own savepoint.

    At-least-once delivery: an event already routed is skipped; one that a concurrent delivery
    routes between our read and our insert fails its savepoint only. Ids are locked in sorted
    order, so two messages sharing events cannot deadlock on PostgreSQL.
    """
    runtime = get_runtime()

    def work(session: Session) -> int:
        routed = 0
        for event_id in sorted(set(event_ids)):
            savepoint = session.begin_nested()
            try:
                task = route_event_core(session, event_id, now=utcnow())
                savepoint.commit()
            except IntegrityError:
                savepoint.rollback()
                log.info("route_events %s: already routed by a concurrent delivery", event_id)
                continue
            except OperationalError:
                raise  # the database itself is in trouble: retry the whole message
            except Exception as exc:
                # This event cannot be routed automatically (bad data, a bug): triage it rather than
                # let it block the others in the message or come back forever.
                savepoint.rollback()
                log.exception("route_events %s: routing failed, sending it to triage", event_id)
                task = route_event_core(session, event_id, now=utcnow(), failure=type(exc).__name__)
            routed += task is not None
        return routed

    routed = with_retries(runtime.engine, work)
    log.debug("routed %d of %d event(s)", routed, len(event_ids))


def noop() -> None:
    """Does nothing; the benchmark's baseline."""


def declare_actors(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Bind the actors to ``broker``; returns them by name."""
    return {
        # Retries cover a database blip; past them the outbox relay still delivers the events.
        ROUTE_EVENTS: dramatiq.actor(
            broker=broker,
            actor_name=ROUTE_EVENTS,
            queue_name=ROUTING_QUEUE,
            max_retries=20,
            min_backoff=1_000,
            max_backoff=60_000,
        )(route_events),
        NOOP: dramatiq.actor(broker=broker, actor_name=NOOP, queue_name=BENCH_QUEUE, max_retries=0)(noop),
    }
