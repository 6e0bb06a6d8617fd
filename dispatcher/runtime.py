"""What every use case runs on: settings, the database, the queue, the policy, the org, the time.

``dispatcher.bootstrap`` builds one ``Runtime`` per process (API, worker, scheduler, CLI); the
use cases (``*/service.py``) take it as their first argument. The queue is a port (``Queue``):
the core says what it wants sent, the dramatiq adapter in ``workers.broker`` sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from dispatcher.db import unit_of_work
from dispatcher.oncall.broker import Broker
from dispatcher.org.model import Org
from dispatcher.org.store import org_in_force
from dispatcher.security import IdentityBox
from dispatcher.settings import Settings
from dispatcher.supervision.policy import TimePolicy, calendar_warning
from dispatcher.wallclock import Now, utcnow

log = logging.getLogger(__name__)


class Queue(Broker, Protocol):
    """The messages the core hands to the workers, and what on-call staff read of the broker
    (implemented by ``workers.broker.Enqueuer``)."""

    def route_events(self, event_ids: Sequence[str]) -> None:
        """Ask the workers to route these events into tasks."""

    def deliver_webhooks(self, notification_ids: Sequence[int]) -> None:
        """Ask the workers to post these notifications to their units' webhooks."""

    def supervise(self, task_ids: Sequence[int]) -> None:
        """Ask the workers to take the due supervision steps of these tasks."""

    def run_monthly(self, job: str, period: str) -> None:
        """Ask the workers to work one monthly run (``monthly-report``, ``2026-10``)."""

    def routing_backlog(self) -> int:
        """Routing messages waiting to be fetched by a worker."""

    def ping(self) -> bool:
        """Whether the broker answers."""

    def close(self) -> None:
        """Release the broker's connections."""


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    queue: Queue
    #: The time-limit policy in force (``POLICY_FILE`` or the defaults, reconciled with the settings).
    policy: TimePolicy
    now: Now = utcnow
    _box: IdentityBox | None = field(default=None, init=False, repr=False)

    @contextmanager
    def work(self, *, read_only: bool = False) -> Iterator[Session]:
        """A unit of work on this process's database (commits at the end, rolls back on error)."""
        with unit_of_work(self.engine, read_only=read_only) as session:
            yield session

    def org(self, session: Session) -> Org | None:
        """The org directory in force (the newest loaded; parsed once per process per version)."""
        return org_in_force(session)

    @property
    def identity_box(self) -> IdentityBox:
        """Encrypts and opens reporters' and complainants' identity with this process's key."""
        if self._box is None:
            self._box = IdentityBox(self.settings.resolved_secret_key)
        return self._box

    def calendar_warning(self) -> str | None:
        """The sentence to show while deadlines may reach a year with no working-day calendar."""
        return calendar_warning(self.policy, self.now().astimezone(self.policy.tz).date())

    def hand_off_webhooks(self, notification_ids: Sequence[int]) -> None:
        """Give new webhook deliveries to the workers; if the broker is down the webhook relay sends them."""
        if not notification_ids:
            return
        try:
            self.queue.deliver_webhooks(notification_ids)
        except Exception as exc:
            log.warning(
                "could not enqueue %d webhook delivery(ies), the relay will: %s", len(notification_ids), exc
            )
