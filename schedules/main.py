"""``dispatcher scheduler``: the periodic jobs and the monthly triggers, under one leader.

Every scheduler replica runs the same APScheduler; only the one holding the Redis lease
(``schedules.leader``) acts — a job fired on a standby does nothing. Jobs:

- every few seconds: the outbox relay (events committed but not routed), the deadline sweep
  (tasks whose next check has come → the supervision actor), the webhook relay (deliveries
  whose enqueue was lost), the feedback expiry (回访期满 → closed as "no response");
- on every replica, leading or not, every ``alerts.check_seconds``: the on-call alert check;
- the monthly triggers, cron expressions from the policy in its timezone (``schedules:``): the
  report on the 1st, the dispatch meeting and the training on the first working day. A trigger
  only asks (a ``(job, period)`` row and a message); the work runs on the workers, once;
- on becoming leader (at start, or when a standby takes over) and every ten minutes: catch up
  what fell due while no scheduler led, and hand out again runs whose message was lost.

Each pass is one use case; the scheduler only triggers it.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from dispatcher.bootstrap import build_runtime
from dispatcher.intake.service import relay
from dispatcher.monthly.periods import Job as MonthlyJob
from dispatcher.monthly.periods import schedule_of
from dispatcher.monthly.runs import Trigger
from dispatcher.monthly.service import request_due
from dispatcher.notify.service import relay_webhooks
from dispatcher.oncall.service import check_alerts
from dispatcher.runtime import Runtime
from dispatcher.settings import Settings
from dispatcher.supervision.policy import announce_calendar
from dispatcher.supervision.service import sweep
from dispatcher.tasks.service import expire_feedback
from dispatcher.wallclock import utcnow
from schedules.leader import Leadership
from workers.broker import redis_client

log = logging.getLogger(__name__)

#: How often the leader looks for missed monthly periods and lost runs besides its triggers.
MONTHLY_CHECK_SECONDS = 600.0


class Job:
    """One pass of a use case per call, on the leader only; an error is one log line, never
    fatal (the next pass retries)."""

    def __init__(
        self, name: str, runtime: Runtime, work: Callable[[Runtime], object], leadership: Leadership | None
    ) -> None:
        self.name = name
        self.runtime = runtime
        self.work = work
        self.leadership = leadership

    def __call__(self) -> object:
        if self.leadership is not None and not self.leadership.leads:
            return 0
        try:
            return self.work(self.runtime)
        except Exception as exc:
            log.warning("%s pass failed, will retry: %s", self.name, exc)
            return 0


def _monthly(trigger: Trigger) -> Callable[[Runtime], object]:
    return lambda rt: request_due(rt, trigger=trigger)


def build_scheduler(runtime: Runtime, leadership: Leadership | None = None) -> BlockingScheduler:
    """The jobs on one APScheduler; with ``leadership``, each acts only while it leads."""
    settings, policy = runtime.settings, runtime.policy
    scheduler = BlockingScheduler(timezone=policy.tz)
    every = [
        ("outbox-relay", relay, settings.relay_interval_seconds, True),
        ("feedback-expiry", expire_feedback, settings.feedback_sweep_seconds, True),
        ("deadline-sweep", sweep, policy.sweep_seconds, True),
        ("webhook-relay", relay_webhooks, 30.0, False),
        ("monthly-check", _monthly(Trigger.catch_up), MONTHLY_CHECK_SECONDS, False),
    ]
    for name, work, seconds, at_start in every:
        scheduler.add_job(
            Job(name, runtime, work, leadership), "interval", seconds=seconds, id=name, max_instances=1,
            coalesce=True, **({"next_run_time": utcnow()} if at_start else {}),
        )  # fmt: skip
    for job in MonthlyJob:
        cron = CronTrigger.from_crontab(schedule_of(policy.schedules, job).cron, timezone=policy.tz)
        scheduler.add_job(
            Job(job.value, runtime, _monthly(Trigger.cron), leadership), cron, id=job.value, max_instances=1,
            coalesce=True, misfire_grace_time=3600,
        )  # fmt: skip
    # Every replica checks the alerts, the standbys too: "no scheduler leads" is theirs to notice, and
    # the database's compare-and-set announces each start and end once however many check.
    scheduler.add_job(
        Job("alerts", runtime, check_alerts, None), "interval", seconds=policy.alerts.check_seconds,
        id="alerts", max_instances=1, coalesce=True,
    )  # fmt: skip
    if leadership is not None:
        catch_up = Job("monthly-catch-up", runtime, _monthly(Trigger.catch_up), None)

        def renew() -> None:
            if leadership.renew():  # we just became leader: what did we miss?
                catch_up()

        scheduler.add_job(
            renew, "interval", seconds=leadership.lease / 3, id="leadership", max_instances=1, coalesce=True,
            next_run_time=utcnow(),
        )  # fmt: skip
    return scheduler


def run(settings: Settings) -> None:
    runtime = build_runtime(settings, broker_timeout=2.0)
    announce_calendar(runtime.policy, runtime.now())
    lease = settings.scheduler_lease_seconds
    client = redis_client(settings, timeout=min(2.0, lease / 4), retry=False)  # a renewal fails fast
    leadership = Leadership(client, settings.broker_namespace, lease)
    scheduler = build_scheduler(runtime, leadership)

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("scheduler stopping (signal %d)", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("scheduler %s started (lease %.0fs); waiting to lead", leadership.name, leadership.lease)
    try:
        scheduler.start()
    finally:
        leadership.release()
