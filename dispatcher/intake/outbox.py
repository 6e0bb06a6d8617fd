"""The outbox relay: re-enqueue events that were committed but not routed in time.

The API enqueues right after its commit; when that enqueue is lost (broker down, process
killed between commit and enqueue, message lost with a Redis that keeps nothing on disk),
the relay finds the event by ``relay_after`` and enqueues it again, backing off each time.
Routing is idempotent, so an extra delivery is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, select

from dispatcher.enums import EventStatus
from dispatcher.models import Event

log = logging.getLogger(__name__)


def backoff(attempts: int, *, base: float, cap: float) -> timedelta:
    """Wait before the next relay of an event relayed ``attempts`` times: base·2ⁿ, capped."""
    return timedelta(seconds=min(cap, base * (2 ** min(attempts, 20))))


def relay_due(
    session: Session,
    *,
    now: datetime,
    enqueue: Callable[[Sequence[str]], None],
    base: float,
    cap: float,
    limit: int = 500,
    backlog: Callable[[], int] | None = None,
) -> int:
    """Enqueue up to ``limit`` due events; returns how many were handed to the broker.

    ``enqueue`` raising (broker unreachable) leaves the events due, to be tried at the next run.
    Two relays racing are harmless: on PostgreSQL ``SKIP LOCKED`` splits the work, and a
    double enqueue only makes routing see the event twice.

    ``backlog`` (routing messages waiting to be fetched) holds back the events merely queued
    behind it: while the workers are behind, only events due for longer than ``base + cap`` are
    relayed, so an event whose message was lost is relayed within ``2·base + cap`` of its
    acceptance whatever the load (a busy queue never drains under sustained traffic), while the
    usual backlog is not doubled. The backlog counts ready messages only: a message fetched but
    never acknowledged (a worker's fetch timed out during a Redis stall while Redis moved it to
    that live worker's ack set) would otherwise hold the relay back for ever.
    """
    due_by = now
    if backlog is not None and backlog() > 0:
        due_by = now - timedelta(seconds=base + cap)
    query = (
        select(Event)
        .where(Event.status == EventStatus.accepted, Event.relay_after <= due_by)  # type: ignore[operator]
        .order_by(Event.relay_after)  # type: ignore[arg-type]
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    due = list(session.exec(query).all())
    if not due:
        return 0
    enqueue([e.id for e in due])
    for event in due:
        event.relay_after = now + backoff(event.relay_attempts, base=base, cap=cap)
        event.relay_attempts += 1
    log.info("relay: re-enqueued %d event(s)", len(due))
    return len(due)
