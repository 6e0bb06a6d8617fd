"""The routing use case: turn accepted events into tasks (the ``route_events`` actor's work)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from dispatcher.db import with_retries
from dispatcher.enums import TaskKind
from dispatcher.errors import Unavailable
from dispatcher.models import Event, Notification
from dispatcher.org.store import org_in_force
from dispatcher.routing.dispatch import (
    Planned,
    Routed,
    dispatch_event,
    lock_events,
    plan_task,
    record_routed,
    repair,
    route_locked,
    township_loads,
)
from dispatcher.runtime import Runtime

log = logging.getLogger(__name__)


def dispatch_events(rt: Runtime, event_ids: Sequence[str]) -> int:
    """Route events into tasks in one transaction; returns how many were routed.

    At-least-once delivery: an event already routed is skipped. The message's events are read
    and locked with one statement, in id order, so two messages sharing events cannot deadlock
    on PostgreSQL, and a second delivery waits for the first and then finds its events routed.

    Set-based first: every task decided, then stored with one multi-row INSERT, then their
    history, stages and notifications together. An event the rules cannot handle (bad data, a
    bug) goes to triage instead of blocking the others; if storing fails for any other reason
    than the database itself, the message is routed again one event at a time, each in its own
    savepoint, so that one bad event cannot hold back the rest.
    """
    try:
        routed, webhooks = with_retries(rt.engine, functools.partial(_route_together, rt, event_ids))
    except (OperationalError, Unavailable):
        raise  # the database itself is in trouble: retry the whole message
    except Exception as exc:
        log.warning("routing %d event(s) together failed (%s): one at a time", len(event_ids), exc)
        routed, webhooks = with_retries(rt.engine, functools.partial(_route_one_by_one, rt, event_ids))
    log.debug("routed %d of %d event(s)", routed, len(event_ids))
    rt.hand_off_webhooks([n.id for n in webhooks if n.id is not None])
    return routed


def _route_together(
    rt: Runtime, event_ids: Sequence[str], session: Session
) -> tuple[int, list[Notification]]:
    secret_key = rt.settings.resolved_secret_key
    now = rt.now()
    org = org_in_force(session)
    locked = lock_events(session, set(event_ids))
    _warn_missing(event_ids, locked)
    planned: list[Planned] = []
    loads = None  # open tasks per township commission, read once if the message holds a clue
    for event, existing in locked:
        if repair(event, existing, now):
            continue
        if loads is None and org is not None and event.kind == TaskKind.clue:
            loads = township_loads(session, org)
        try:
            plan = plan_task(
                session, event, now=now, org=org, policy=rt.policy, secret_key=secret_key, counts=loads
            )
        except OperationalError:
            raise
        except Exception as exc:  # the rules could not decide: triage, with a reason naming no content
            log.exception("dispatch %s: routing failed, sending it to triage", event.id)
            plan = plan_task(session, event, now=now, org=org, failure=type(exc).__name__, policy=rt.policy)
        planned.append(plan)
    session.add_all([p.task for p in planned])
    session.flush()  # one INSERT … RETURNING for every task of the message
    routed = [record_routed(session, p, now=now, org=org) for p in planned]
    session.flush()
    return len(routed), [r.webhook for r in routed if r.webhook is not None]


def _route_one_by_one(
    rt: Runtime, event_ids: Sequence[str], session: Session
) -> tuple[int, list[Notification]]:
    secret_key = rt.settings.resolved_secret_key
    routed: list[Routed] = []
    org = org_in_force(session)
    locked = lock_events(session, set(event_ids))
    for event, existing in locked:
        event_id = event.id
        savepoint = session.begin_nested()
        try:
            done = route_locked(
                session, event, existing, now=rt.now(), org=org, policy=rt.policy, secret_key=secret_key
            )
            savepoint.commit()
        except OperationalError:
            raise
        except Exception as exc:  # a unique violation too: the row lock rules out a concurrent insert
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


def _warn_missing(event_ids: Sequence[str], locked: list[tuple[Event, str | None]]) -> None:
    for missing in set(event_ids) - {event.id for event, _ in locked}:
        log.warning("dispatch: no event %s", missing)
