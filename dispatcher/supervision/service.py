"""The supervision use cases: the scheduler's deadline sweep and the actor's work on one task."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import Session

from dispatcher.db import with_retries
from dispatcher.notify.webhooks import pending_webhooks
from dispatcher.runtime import Runtime
from dispatcher.supervision.orders import claim_due, supervise

log = logging.getLogger(__name__)

#: A claimed task is not claimed again for this long (its message may still be queued).
HOLD = timedelta(minutes=5)


def sweep(rt: Runtime) -> int:
    """督办扫描: enqueue a supervision message for every task whose next check has come."""
    with rt.work() as session:
        ids = claim_due(session, now=rt.now(), hold=HOLD)
        if ids:  # inside the transaction: if the broker is down, nothing is claimed
            rt.queue.supervise(ids)
    if ids:
        log.info("deadline sweep: %d task(s) due", len(ids))
    return len(ids)


def supervise_task(rt: Runtime, task_id: int) -> int:
    """督办: take the due supervision steps of one task, each exactly once; returns how many."""

    def work(session: Session) -> tuple[int, list[int]]:
        taken = supervise(session, task_id, now=rt.now(), policy=rt.policy, org=rt.org(session))
        session.flush()
        return len(taken), pending_webhooks(session, [task_id])

    count, deliveries = with_retries(rt.engine, work)
    rt.hand_off_webhooks(deliveries)
    return count
