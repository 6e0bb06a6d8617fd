"""The intake use cases: register events, tell a source its event's state, relay the outbox."""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from dispatcher import errors, metrics
from dispatcher.db import with_retries
from dispatcher.intake.outbox import relay_due
from dispatcher.intake.register import (
    Accepted,
    Envelope,
    IntakeContext,
    KeyTaken,
    Prepared,
    event_state,
    prepare_event,
    store_events,
)
from dispatcher.models import Source
from dispatcher.runtime import Runtime

log = logging.getLogger(__name__)

#: What one envelope became: stored (new or duplicate), or refused with the error to answer.
Outcome = Accepted | errors.DispatchError


def register_events(rt: Runtime, source: Source, envelopes: list[Envelope]) -> list[Outcome]:
    """One transaction for all, set-based: a ledger upsert per kind and year, one INSERT; enqueue
    after the commit.

    Envelopes the source may not send, or with an impossible ``received_at``, are refused one by
    one before anything is written. If a key is already taken the transaction runs again reading
    the stored keys first (duplicates and conflicts); a deadlock or serialization failure runs it
    again too. If the enqueue fails (broker down), the outbox relay sends the events later.
    """
    ctx = IntakeContext(
        now=rt.now(),
        secret_key=rt.settings.resolved_secret_key,
        tz=rt.policy.tz,
        relay_after=timedelta(seconds=rt.settings.relay_after_seconds),
    )
    checked: list[Prepared | errors.DispatchError] = []
    for envelope in envelopes:
        try:
            checked.append(prepare_event(source, envelope, ctx, rt.identity_box))
        except (errors.Forbidden, errors.ValidationFailed) as exc:
            checked.append(exc)
    valid = [c for c in checked if isinstance(c, Prepared)]

    def work(session: Session, look_up: bool) -> list[Accepted | errors.Conflict]:
        return store_events(session, source, valid, look_up=look_up)

    stored: list[Accepted | errors.Conflict] = []
    if valid:
        for attempt in range(KEY_ATTEMPTS):
            try:
                stored = with_retries(rt.engine, functools.partial(work, look_up=attempt > 0))
                break
            except KeyTaken as exc:
                if attempt + 1 == KEY_ATTEMPTS:
                    assert exc.__cause__ is not None
                    raise exc.__cause__ from None
    answers = iter(stored)
    results: list[Outcome] = [c if isinstance(c, errors.DispatchError) else next(answers) for c in checked]
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


#: Tries when keys are taken: the first reads nothing, the others read the stored keys first.
KEY_ATTEMPTS = 3


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
