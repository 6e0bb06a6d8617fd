"""The one bootstrap: what every process needs, built once from the settings.

The API (``dispatcher.http.state``), the worker (``workers.main``), the scheduler
(``schedules.main``) and the CLI all call ``build_runtime``; the worker's actors find theirs with
``current_runtime``. This is the composition root: the only module of the core's side that
knows the dramatiq adapter (``workers.broker``).
"""

from __future__ import annotations

import threading
from datetime import timedelta

from dispatcher.db import get_engine
from dispatcher.errors import ConfigError
from dispatcher.runtime import Queue, Runtime
from dispatcher.settings import Settings, load_settings
from dispatcher.supervision.policy import TimePolicy, load_policy


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
    settings: Settings | None = None, *, queue: Queue | None = None, broker_timeout: float = 5.0
) -> Runtime:
    """Settings, engine, queue and policy for one process.

    ``queue`` defaults to an enqueuer on a new broker whose Redis calls time out after
    ``broker_timeout`` seconds (the API uses a short one: intake answers while Redis is down).
    """
    from workers.broker import Enqueuer, build_broker

    settings = settings or load_settings()
    policy = policy_for(settings)
    return Runtime(
        settings=settings,
        engine=get_engine(settings.resolved_database_url),
        queue=queue if queue is not None else Enqueuer(build_broker(settings, timeout=broker_timeout)),
        policy=policy,
    )


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
