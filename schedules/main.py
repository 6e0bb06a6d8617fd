"""``dispatcher scheduler``: runs the periodic jobs with APScheduler, on one runtime.

Jobs: the outbox relay (events committed but not routed), the deadline sweep (tasks whose
next check has come → the supervision actor), the webhook relay (deliveries whose enqueue was
lost) and the feedback expiry (回访期满 → closed as "no response"). Each is one use case; the
scheduler only triggers it. Two schedulers running at once are harmless (every job is
idempotent); a leader lock for the monthly jobs is the next step (issue 8).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from dispatcher.bootstrap import build_runtime
from dispatcher.intake.service import relay
from dispatcher.notify.service import relay_webhooks
from dispatcher.runtime import Runtime
from dispatcher.settings import Settings
from dispatcher.supervision.policy import announce_calendar
from dispatcher.supervision.service import sweep
from dispatcher.tasks.service import expire_feedback
from dispatcher.wallclock import utcnow

log = logging.getLogger(__name__)


class Job:
    """One pass of a use case per call; an error is one log line, never fatal (the next pass retries)."""

    def __init__(self, name: str, runtime: Runtime, work: Callable[[Runtime], int]) -> None:
        self.name = name
        self.runtime = runtime
        self.work = work

    def __call__(self) -> int:
        try:
            return self.work(self.runtime)
        except Exception as exc:
            log.warning("%s pass failed, will retry: %s", self.name, exc)
            return 0


def build_scheduler(runtime: Runtime) -> BlockingScheduler:
    settings = runtime.settings
    scheduler = BlockingScheduler(timezone=runtime.policy.tz)
    every = [
        ("outbox-relay", relay, settings.relay_interval_seconds, True),
        ("feedback-expiry", expire_feedback, settings.feedback_sweep_seconds, True),
        ("deadline-sweep", sweep, runtime.policy.sweep_seconds, True),
        ("webhook-relay", relay_webhooks, 30.0, False),
    ]
    for name, work, seconds, at_start in every:
        scheduler.add_job(
            Job(name, runtime, work), "interval", seconds=seconds, id=name, max_instances=1, coalesce=True,
            **({"next_run_time": utcnow()} if at_start else {}),
        )  # fmt: skip
    return scheduler


def run(settings: Settings) -> None:
    runtime = build_runtime(settings, broker_timeout=2.0)
    announce_calendar(runtime.policy, runtime.now())
    scheduler = build_scheduler(runtime)

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("scheduler stopping (signal %d)", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("scheduler started: outbox relay every %.1fs", settings.relay_interval_seconds)
    scheduler.start()
