"""The routing use case: turn accepted events into tasks (the ``route_events`` actor's work)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from dispatcher.db import with_retries
from dispatcher.models import Notification
from dispatcher.org.store import org_in_force
from dispatcher.routing.dispatch import Routed, dispatch_event, lock_events, route_locked
from dispatcher.runtime import Runtime

log = logging.getLogger(__name__)


def dispatch_events(rt: Runtime, event_ids: Sequence[str]) -> int:
    """Route events into tasks, in one transaction, each in its own savepoint; returns how many.

    At-least-once delivery: an event already routed is skipped. The message's events are read
    and locked with one statement, in id order, so two messages sharing events cannot deadlock
    on PostgreSQL and a second delivery waits for the first and then finds its events routed.
    The org is read once per message. An event the rules cannot handle (bad data, a bug) goes to
    triage instead of blocking the others.
    """
    secret_key = rt.settings.resolved_secret_key

    def work(session: Session) -> tuple[int, list[Notification]]:
        routed: list[Routed] = []
        org = org_in_force(session)
        locked = lock_events(session, set(event_ids))
        for missing in set(event_ids) - {event.id for event, _ in locked}:
            log.warning("dispatch: no event %s", missing)
        for event, existing in locked:
            event_id = event.id
            savepoint = session.begin_nested()
            try:
                done = route_locked(
                    session, event, existing, now=rt.now(), org=org, policy=rt.policy, secret_key=secret_key
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
                    session, event_id, now=rt.now(), failure=type(exc).__name__, policy=rt.policy, org=org
                )
                done = Routed(task, None) if task is not None else None
            if done is not None:
                routed.append(done)
        session.flush()
        return len(routed), [r.webhook for r in routed if r.webhook is not None]

    routed, webhooks = with_retries(rt.engine, work)
    log.debug("routed %d of %d event(s)", routed, len(event_ids))
    rt.hand_off_webhooks([n.id for n in webhooks if n.id is not None])
    return routed
