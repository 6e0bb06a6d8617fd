"""The routing use case: turn accepted events into tasks (the ``route_events`` actor's work)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from dispatcher.db import with_retries
from dispatcher.notify.webhooks import pending_webhooks
from dispatcher.routing.dispatch import dispatch_event
from dispatcher.runtime import Runtime

log = logging.getLogger(__name__)


def dispatch_events(rt: Runtime, event_ids: Sequence[str]) -> int:
    """Route events into tasks, in one transaction, each in its own savepoint; returns how many.

    At-least-once delivery: an event already routed is skipped; one that a concurrent delivery
    routes between our read and our insert fails its savepoint only. Ids are locked in sorted
    order, so two messages sharing events cannot deadlock on PostgreSQL. An event the rules
    cannot handle (bad data, a bug) goes to triage instead of blocking the others.
    """

    def work(session: Session) -> tuple[int, list[int]]:
        routed, tasks = 0, []
        for event_id in sorted(set(event_ids)):
            savepoint = session.begin_nested()
            try:
                task = dispatch_event(
                    session,
                    event_id,
                    now=rt.now(),
                    policy=rt.policy,
                    secret_key=rt.settings.resolved_secret_key,
                )
                savepoint.commit()
            except IntegrityError:
                savepoint.rollback()
                log.info("dispatch %s: already routed by a concurrent delivery", event_id)
                continue
            except OperationalError:
                raise  # the database itself is in trouble: retry the whole message
            except Exception as exc:
                savepoint.rollback()
                log.exception("dispatch %s: routing failed, sending it to triage", event_id)
                task = dispatch_event(
                    session, event_id, now=rt.now(), failure=type(exc).__name__, policy=rt.policy
                )
            if task is not None:
                routed += 1
                tasks.append(task.id)
        session.flush()
        return routed, pending_webhooks(session, tasks)

    routed, deliveries = with_retries(rt.engine, work)
    log.debug("routed %d of %d event(s)", routed, len(event_ids))
    rt.hand_off_webhooks(deliveries)
    return routed
