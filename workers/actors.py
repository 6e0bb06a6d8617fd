"""The actors. Each is a thin edge: open a unit of work, call the core, commit.

Actors are declared on a given broker by ``declare_actors`` (never at import time), so the
worker process, the tests' stub broker and the benchmarks each get their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
import httpx
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from dispatcher.bootstrap import get_runtime
from dispatcher.clock import utcnow
from dispatcher.db import unit_of_work, with_retries
from dispatcher.notify import webhooks as notify
from dispatcher.notify.webhooks import pending_webhooks
from dispatcher.org.store import current_org
from dispatcher.routing.dispatch import route_event as route_event_core
from dispatcher.supervision.clocks import supervise
from workers.broker import Enqueuer
from workers.names import (
    BENCH_QUEUE,
    DELIVER_WEBHOOK,
    NOOP,
    NOTIFY_QUEUE,
    ROUTE_EVENTS,
    ROUTING_QUEUE,
    SUPERVISE_TASK,
    SUPERVISION_QUEUE,
)

log = logging.getLogger(__name__)


def route_events(event_ids: list[str]) -> None:
    """Route events into tasks, in one transaction, each in its own savepoint.

    At-least-once delivery: an event already routed is skipped; one that a concurrent delivery
    routes between our read and our insert fails its savepoint only. Ids are locked in sorted
    order, so two messages sharing events cannot deadlock on PostgreSQL.
    """
    runtime = get_runtime()

    def work(session: Session) -> tuple[int, list[int]]:
        routed, tasks = 0, []
        for event_id in sorted(set(event_ids)):
            savepoint = session.begin_nested()
            try:
                task = route_event_core(session, event_id, now=utcnow(), policy=runtime.policy)
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
                task = route_event_core(
                    session, event_id, now=utcnow(), failure=type(exc).__name__, policy=runtime.policy
                )
            if task is not None:
                routed += 1
                tasks.append(task.id)
        session.flush()
        return routed, pending_webhooks(session, tasks)

    routed, deliveries = with_retries(runtime.engine, work)
    log.debug("routed %d of %d event(s)", routed, len(event_ids))
    _send_webhooks(deliveries)


class WebhookFailed(dramatiq.Retry):
    """A delivery attempt failed; dramatiq retries it with backoff (logged as one warning, no traceback)."""


def deliver_webhook(notification_id: int) -> None:
    """Post one notification to its unit's webhook; after the last try it lands in the failed list."""
    runtime = get_runtime()
    with unit_of_work(runtime.engine, read_only=True) as session:
        loaded = current_org(session)
        delivery = notify.prepare(session, notification_id, loaded[1] if loaded else None)
    if delivery is None:
        return
    error: str | None
    if isinstance(delivery, str):
        error = delivery
    else:
        try:
            response = httpx.post(delivery.url, content=delivery.body, headers=delivery.headers, timeout=10)
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
    with unit_of_work(runtime.engine) as session:
        again = notify.record(
            session,
            notification_id,
            error=error,
            max_attempts=runtime.settings.webhook_max_attempts,
            now=utcnow(),
        )
    if error is not None:
        log.warning(
            "webhook delivery %s failed (%s)%s", notification_id, error, ", will retry" if again else ""
        )
    if again:
        raise WebhookFailed(f"notification {notification_id}: {error}")


def supervise_task(task_id: int) -> None:
    """督办: take the supervision steps of one task that are due (each exactly once)."""
    runtime = get_runtime()

    def work(session: Session) -> list[int]:
        loaded = current_org(session)
        supervise(session, task_id, now=utcnow(), policy=runtime.policy, org=loaded[1] if loaded else None)
        session.flush()
        return pending_webhooks(session, [task_id])

    _send_webhooks(with_retries(runtime.engine, work))


def _send_webhooks(notification_ids: list[int]) -> None:
    """Hand new webhook deliveries to the notify queue; if that fails the scheduler's relay sends them."""
    if not notification_ids or _enqueuer is None:
        return
    try:
        _enqueuer.deliver_webhooks(notification_ids)
    except Exception as exc:
        log.warning("could not enqueue %d webhook delivery(ies): %s", len(notification_ids), exc)


def noop() -> None:
    """Does nothing; the benchmark's baseline."""


#: Sends follow-up messages (webhook deliveries) on the broker the actors were declared on.
_enqueuer: Enqueuer | None = None


def declare_actors(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Bind the actors to ``broker``; returns them by name.

    Every actor retries with backoff from 1 s to 1 min. Routing and supervision retry a
    database blip (past the retries the outbox relay and the sweep come back to them); a webhook
    counts its attempts in the database (``webhook_max_attempts``), dramatiq only paces them.
    """
    global _enqueuer
    _enqueuer = Enqueuer(broker)
    plan: list[tuple[str, str, Callable[..., None], int]] = [
        (ROUTE_EVENTS, ROUTING_QUEUE, route_events, 20),
        (DELIVER_WEBHOOK, NOTIFY_QUEUE, deliver_webhook, 50),
        (SUPERVISE_TASK, SUPERVISION_QUEUE, supervise_task, 20),
    ]
    actors: dict[str, dramatiq.Actor[Any, Any]] = {
        name: dramatiq.actor(
            broker=broker, actor_name=name, queue_name=queue, max_retries=retries, min_backoff=1_000,
            max_backoff=60_000,
        )(fn)
        for name, queue, fn, retries in plan
    }  # fmt: skip
    actors[NOOP] = dramatiq.actor(broker=broker, actor_name=NOOP, queue_name=BENCH_QUEUE, max_retries=0)(noop)
    return actors
