"""``dispatcher scheduler``: runs the periodic jobs with APScheduler.

For now its one job is the outbox relay. Two schedulers running at once are harmless (the
relay is idempotent); the leader lock arrives with the monthly jobs.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from dispatcher.clock import utcnow
from dispatcher.db import get_engine, unit_of_work
from dispatcher.outbox import relay_due
from dispatcher.settings import Settings
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


def build_scheduler(settings: Settings) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone=settings.tz)
    scheduler.add_job(
        Relay(settings),
        "interval",
        seconds=settings.relay_interval_seconds,
        id="outbox-relay",
        max_instances=1,
        coalesce=True,
        next_run_time=utcnow(),
    )
    return scheduler


def run(settings: Settings) -> None:
    scheduler = build_scheduler(settings)

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("scheduler stopping (signal %d)", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("scheduler started: outbox relay every %.1fs", settings.relay_interval_seconds)
    scheduler.start()
