"""Helpers the commands share: settings, engine, unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session

from dispatcher.db import get_engine, unit_of_work
from dispatcher.settings import Settings, load_settings


def settings() -> Settings:
    return load_settings()


@contextmanager
def session(cfg: Settings | None = None) -> Iterator[Session]:
    cfg = cfg or settings()
    with unit_of_work(get_engine(cfg.resolved_database_url)) as s:
        yield s
