"""The alert part of the policy file (``alerts:``): when on-call staff are told, and where.

Where the issue and DESIGN are silent: a dead letter, a failed webhook delivery, a missing
calendar or a scheduler without a leader alert at once; the outbox alerts when its oldest event
has waited 2 minutes (the relay retries after 30 s, so by then several retries failed); no live
worker for 60 s (four heartbeat timeouts); triage over 20 items or one waiting over 4 hours; 10
tasks turning overdue within an hour. Checks run every 15 s. ``0`` disables a numeric rule.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from dispatcher.org.model import Webhook


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OverdueBurst(_Strict):
    #: This many tasks turned overdue (a ``*.overdue`` supervision order) …
    tasks: Annotated[int, Field(ge=0, le=100_000)] = 10
    #: … within this many minutes.
    minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 60


class AlertPolicy(_Strict):
    """Thresholds of the alert rules (``dispatcher.oncall.alerts.RULES``) and the on-call webhook."""

    #: Seconds between two checks (each scheduler replica and API server checks; they agree through
    #: the database, so an alert starts and ends once).
    check_seconds: Annotated[float, Field(gt=0, le=3600)] = 15.0
    dead_letters: bool = True
    outbox_age_seconds: Annotated[int, Field(ge=0)] = 120
    no_worker_seconds: Annotated[int, Field(ge=0)] = 60
    triage_backlog: Annotated[int, Field(ge=0)] = 20
    triage_age_hours: Annotated[float, Field(ge=0)] = 4.0
    overdue_burst: OverdueBurst = OverdueBurst()
    failed_webhooks: bool = True
    missing_calendar: bool = True
    scheduler_without_leader: bool = True
    #: Where each start and end is posted (JSON, signed like the units' webhooks); none: shown only.
    webhook: Webhook | None = None
    #: Attempts to deliver one start or end before it is marked failed (shown on the page).
    webhook_max_attempts: Annotated[int, Field(ge=1, le=100)] = 10
