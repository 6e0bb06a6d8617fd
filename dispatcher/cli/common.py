"""Helpers the commands share: settings, the runtime, a unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session

from dispatcher.db import get_engine, unit_of_work
from dispatcher.runtime import Runtime
from dispatcher.settings import Settings, load_settings


def settings() -> Settings:
    return load_settings()


def runtime(cfg: Settings | None = None) -> Runtime:
    """The process's runtime (settings, database, queue, policy), from the one bootstrap."""
    from dispatcher.bootstrap import build_runtime

    return build_runtime(cfg or settings())


@contextmanager
def session(cfg: Settings | None = None) -> Iterator[Session]:
    """A unit of work on the configured database (for commands that need no policy or broker)."""
    cfg = cfg or settings()
    with unit_of_work(get_engine(cfg.resolved_database_url)) as s:
        yield s
