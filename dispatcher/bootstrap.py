"""The one bootstrap: what every process needs, built once from the settings.

The API (``dispatcher.http.state``), the worker (``workers.main``), the scheduler
(``schedules.main``) and the CLI all call ``build_runtime``; the worker's actors find theirs with
``current_runtime``. This is the composition root: the only module of the core's side that
knows the dramatiq adapter (``workers.broker``).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from dispatcher import metrics
from dispatcher.db import get_engine
from dispatcher.errors import ConfigError
from dispatcher.runtime import Queue, Runtime
from dispatcher.settings import Settings, load_settings
from dispatcher.supervision.policy import TimePolicy, load_policy

log = logging.getLogger(__name__)


def policy_for(settings: Settings) -> TimePolicy:
    """The policy file (or the defaults) as this deployment runs it.

    The timezone is one: a policy file that names none takes ``DISPATCH_TIMEZONE``; one that names
    another is refused, so that ledger years, deadlines and monthly periods never disagree.
    ``DISPATCH_FEEDBACK_WINDOW_DAYS``, when set, replaces every kind's feedback clock.
    """
    policy = load_policy(settings.policy_file)
    if "timezone" not in policy.model_fields_set:
        policy = policy.model_copy(update={"timezone": settings.timezone})
    elif policy.timezone != settings.timezone:
        raise ConfigError(
            f"the policy file's timezone {policy.timezone!r} differs from DISPATCH_TIMEZONE "
            f"{settings.timezone!r}: set one of them, or both alike"
        )
    if settings.feedback_window_days is not None:
        policy = policy.with_feedback_window(timedelta(days=settings.feedback_window_days))
    return policy


def build_runtime(
    settings: Settings | None = None,
    *,
    queue: Queue | None = None,
    broker_timeout: float = 5.0,
    coalesce: float | None = None,
) -> Runtime:
    """Settings, engine, queue and policy for one process.

    ``queue`` defaults to an enqueuer on a new broker whose Redis calls time out after
    ``broker_timeout`` seconds (the API uses a short one: intake answers while Redis is down).
    ``coalesce`` (the API): routing ids are sent by a background thread, those of requests
    answered within that many seconds of each other in one message.
    """
    from workers.broker import CoalescingEnqueuer, Enqueuer, build_broker

    settings = settings or load_settings()
    policy = policy_for(settings)
    if queue is None:
        broker = build_broker(settings, timeout=broker_timeout)
        queue = (
            Enqueuer(broker)
            if coalesce is None
            else CoalescingEnqueuer(broker, linger=coalesce, on_failure=_enqueue_failed)
        )
    return Runtime(
        settings=settings, engine=get_engine(settings.resolved_database_url), queue=queue, policy=policy
    )


def _enqueue_failed(count: int, exc: Exception) -> None:
    metrics.ENQUEUE_FAILURES.inc(count)
    log.warning("enqueue failed for %d event(s), the relay will retry: %s", count, exc)


_current: Runtime | None = None
_lock = threading.Lock()


def current_runtime() -> Runtime:
    """This process's runtime, built on first use (the actors' way in)."""
    global _current
    with _lock:
        if _current is None:
            _current = build_runtime()
        return _current


def use_runtime(runtime: Runtime | None) -> None:
    """Make ``runtime`` this process's (the worker's entry module; tests point actors at theirs)."""
    global _current
    with _lock:
        _current = runtime
