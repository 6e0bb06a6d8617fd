"""Helpers the commands share: settings, the runtime, a unit of work, URLs shown without passwords."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session

from dispatcher.db import get_engine, unit_of_work
from dispatcher.runtime import Runtime
from dispatcher.settings import Settings, load_settings


def masked_url(url: str) -> str:
    """``url`` with its password shown as ``***``, parsed as SQLAlchemy parses it (a ``/`` or ``#``
    in the password, a ``password=`` query parameter, an IPv6 host); an unparsable URL is not shown."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(not a URL; not shown)"
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": "MASKED"})
    return parsed.render_as_string(hide_password=True).replace("password=MASKED", "password=***")


def broker_shown(cfg: Settings) -> str:
    """Where the broker is, for a person: the embedded server's socket, or the URL masked."""
    return (
        f"embedded Redis at {cfg.redis_socket}" if cfg.embedded_redis else masked_url(cfg.resolved_redis_url)
    )


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
