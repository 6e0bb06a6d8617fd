"""What an actor needs at run time (settings, engine), built lazily once per process."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from dispatcher.db import get_engine
from dispatcher.settings import Settings, load_settings
from dispatcher.supervision.policy import DEFAULT_POLICY, TimePolicy, load_policy


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    policy: TimePolicy = DEFAULT_POLICY


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            settings = load_settings()
            _runtime = Runtime(
                settings=settings,
                engine=get_engine(settings.resolved_database_url),
                policy=load_policy(settings.policy_file),
            )
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Tests point actors at their own database."""
    global _runtime
    with _lock:
        _runtime = runtime
