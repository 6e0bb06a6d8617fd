"""``dispatcher scheduler``: runs the periodic jobs with APScheduler.

Jobs: the outbox relay (events committed but not routed), the deadline sweep (tasks whose
next check has come → the supervision actor), the webhook relay (deliveries whose enqueue was
lost) and the feedback expiry (回访期满 → closed as "no response"). Two
schedulers running at once are harmless: every job is idempotent; the leader lock arrives
with the monthly jobs.
"""

from __future__ import annotations

import logging
import signal
from datetime import timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from dispatcher.clock import utcnow
from dispatcher.db import get_engine, unit_of_work
from dispatcher.intake.outbox import relay_due
from dispatcher.notify.webhooks import claim_stale
from dispatcher.org.store import current_org
from dispatcher.settings import Settings
from dispatcher.supervision.clocks import claim_due
from dispatcher.supervision.policy import announce_calendar, load_policy
from dispatcher.tasks.moves import Policy, expire_feedback
from workers.broker import Enqueuer, build_broker

log = logging.getLogger(__name__)


class Relay:
    """One relay pass per call; exceptions are logged, never fatal (the next pass retries)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = get_engine(settings.resolved_database_url)
        self.enqueuer = Enqueuer(build_broker(settings, timeout=2.0))

    def __call__(self) -> int:
        try:
            with unit_of_work(self.engine) as session:
                return relay_due(
                    session,
                    now=utcnow(),
                    enqueue=self.enqueuer.route_events,
                    base=self.settings.relay_after_seconds,
                    cap=self.settings.relay_max_backoff_seconds,
                    backlog=self.enqueuer.routing_backlog,
                )
        except Exception as exc:
            log.warning("relay pass failed, will retry: %s", exc)
            return 0


class FeedbackExpiry:
    """Closes tasks whose requester did not answer within the feedback window (回访期满)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policy = load_policy(settings.policy_file)
        self.engine = get_engine(settings.resolved_database_url)

    def __call__(self) -> int:
        try:
            with unit_of_work(self.engine) as session:
                loaded = current_org(session)
                return expire_feedback(
                    session,
                    now=utcnow(),
                    org=loaded[1] if loaded else None,
                    policy=Policy(
                        time=self.policy,
                        tz=self.settings.tz,
                        feedback_window=(
                            timedelta(days=self.settings.feedback_window_days)
                            if self.settings.feedback_window_days
                            else None
                        ),
                    ),
                )
        except Exception as exc:
            log.warning("feedback expiry pass failed, will retry: %s", exc)
            return 0


class WebhookRelay:
    """Enqueues webhook deliveries whose first enqueue was lost (broker down at the time)."""

    def __init__(self, settings: Settings, enqueuer: Enqueuer) -> None:
        self.engine = get_engine(settings.resolved_database_url)
        self.enqueuer = enqueuer

    def __call__(self) -> int:
        try:
            with unit_of_work(self.engine) as session:
                ids = claim_stale(session, now=utcnow())
                if ids:  # inside the transaction: if the broker is down, nothing is marked as relayed
                    self.enqueuer.deliver_webhooks(ids)
            return len(ids)
        except Exception as exc:
            log.warning("webhook relay pass failed, will retry: %s", exc)
            return 0


class DeadlineSweep:
    """督办扫描: enqueue a supervision message for every task whose next check has come."""

    #: A claimed task is not claimed again for this long (its message may still be queued).
    HOLD = timedelta(minutes=5)

    def __init__(self, settings: Settings, enqueuer: Enqueuer) -> None:
        self.engine = get_engine(settings.resolved_database_url)
        self.enqueuer = enqueuer

    def __call__(self) -> int:
        try:
            with unit_of_work(self.engine) as session:
                ids = claim_due(session, now=utcnow(), hold=self.HOLD)
                if ids:  # inside the transaction: if the broker is down, nothing is claimed
                    self.enqueuer.supervise(ids)
            if ids:
                log.info("deadline sweep: %d task(s) due", len(ids))
            return len(ids)
        except Exception as exc:
            log.warning("deadline sweep failed, will retry: %s", exc)
            return 0


def build_scheduler(settings: Settings) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone=settings.tz)
    relay = Relay(settings)
    scheduler.add_job(
        relay,
        "interval",
        seconds=settings.relay_interval_seconds,
        id="outbox-relay",
        max_instances=1,
        coalesce=True,
        next_run_time=utcnow(),
    )
    scheduler.add_job(
        FeedbackExpiry(settings), "interval", seconds=settings.feedback_sweep_seconds, id="feedback-expiry",
        max_instances=1, coalesce=True, next_run_time=utcnow(),
    )  # fmt: skip
    policy = load_policy(settings.policy_file)
    scheduler.add_job(
        DeadlineSweep(settings, relay.enqueuer), "interval", seconds=policy.sweep_seconds,
        id="deadline-sweep", max_instances=1, coalesce=True, next_run_time=utcnow(),
    )  # fmt: skip
    scheduler.add_job(
        WebhookRelay(settings, relay.enqueuer), "interval", seconds=30, id="webhook-relay", max_instances=1,
        coalesce=True,
    )  # fmt: skip
    return scheduler


def run(settings: Settings) -> None:
    announce_calendar(load_policy(settings.policy_file), utcnow())
    scheduler = build_scheduler(settings)

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("scheduler stopping (signal %d)", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("scheduler started: outbox relay every %.1fs", settings.relay_interval_seconds)
    scheduler.start()
