"""The intake use cases: register events, tell a source its event's state, relay the outbox."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from dispatcher import errors, metrics
from dispatcher.db import with_retries
from dispatcher.intake.outbox import relay_due
from dispatcher.intake.register import Accepted, Envelope, IntakeContext, accept_event, event_state
from dispatcher.models import Source
from dispatcher.runtime import Runtime

log = logging.getLogger(__name__)

#: What one envelope became: stored (new or duplicate), or refused with the error to answer.
Outcome = Accepted | errors.DispatchError


def register_events(rt: Runtime, source: Source, envelopes: list[Envelope]) -> list[Outcome]:
    """One transaction for all; each event in its own savepoint; enqueue after the commit.

    Events are stored grouped by kind so that concurrent batches lock the ledger counters in
    the same order (no deadlocks); a deadlock or serialization failure runs the whole
    transaction again. If the enqueue fails (broker down), the outbox relay sends them later.
    """
    ctx = IntakeContext(
        now=rt.now(),
        secret_key=rt.settings.resolved_secret_key,
        tz=rt.policy.tz,
        relay_after=timedelta(seconds=rt.settings.relay_after_seconds),
    )
    order = sorted(range(len(envelopes)), key=lambda i: envelopes[i].kind.value)

    def work(session: Session) -> list[Outcome]:
        stored: dict[int, Outcome] = {}
        for i in order:
            try:
                stored[i] = accept_event(session, source, envelopes[i], ctx)
            except (errors.Conflict, errors.Forbidden, errors.ValidationFailed) as exc:
                stored[i] = exc
        return [stored[i] for i in range(len(envelopes))]

    results = with_retries(rt.engine, work)
    fresh = [r.event_id for r in results if isinstance(r, Accepted) and not r.duplicate]
    if fresh:
        try:
            rt.queue.route_events(fresh)
        except Exception as exc:  # the outbox relay delivers them later
            metrics.ENQUEUE_FAILURES.inc(len(fresh))
            log.warning("enqueue failed for %d event(s), the relay will retry: %s", len(fresh), exc)
    for envelope, result in zip(envelopes, results, strict=True):
        if isinstance(result, Accepted):
            (metrics.EVENTS_DUPLICATE if result.duplicate else metrics.EVENTS_ACCEPTED).labels(
                envelope.kind.value
            ).inc()
    return results


def state_of(rt: Runtime, source: Source, event_id: str) -> dict[str, Any]:
    """What a source may know of its own event (``GET /events/{id}``)."""
    with rt.work(read_only=True) as session:
        return event_state(session, source, event_id)


def relay(rt: Runtime) -> int:
    """One outbox relay pass: re-enqueue events committed but not routed in time; returns how many."""
    with rt.work() as session:
        return relay_due(
            session,
            now=rt.now(),
            enqueue=rt.queue.route_events,
            base=rt.settings.relay_after_seconds,
            cap=rt.settings.relay_max_backoff_seconds,
            backlog=rt.queue.routing_backlog,
        )
