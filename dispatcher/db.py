"""Engines and the unit of work. SQLite (WAL) by default, PostgreSQL through ``DATABASE_URL``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from dispatcher.errors import Unavailable

T = TypeVar("T")

_engines: dict[str, Engine] = {}
#: Execution option marking a read-only unit of work (SQLite then begins without a write lock).
READ_ONLY = "dispatch_read_only"
_lock = threading.Lock()


def normalize_url(url: str) -> str:
    """Let users write ``postgresql://``; we drive it with psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 5},
    )


def _configure_sqlite(engine: Engine) -> None:
    """WAL for concurrent readers; ``BEGIN IMMEDIATE`` so writers queue instead of deadlocking."""

    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers take no lock up front (WAL lets them run beside a writer); writers queue.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def get_engine(url: str) -> Engine:
    """One engine per URL per process, created on first use (never at import time)."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


#: PostgreSQL SQLSTATEs worth running the transaction again for (deadlock, serialization failure).
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
#: SQLSTATEs meaning the server went away (class 08: connection exceptions; 57P0x: shutdown).
_GONE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the same transaction may well succeed if run again."""
    return _sqlstate(exc) in RETRYABLE_SQLSTATES


def is_connection_error(exc: BaseException) -> bool:
    """True when the database could not be reached (as opposed to a constraint or SQL error)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    if state:
        return state.startswith(_GONE_SQLSTATES)
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        # psycopg's connection failures carry no SQLSTATE; SQLite reports a busy database as "locked".
        return any(
            phrase in text
            for phrase in (
                "connection",
                "could not connect",
                "server closed",
                "database is locked",
                "unable to open",
            )
        )
    return False


def with_retries(engine: Engine, work: Callable[[Session], T], *, attempts: int = 4) -> T:
    """Run ``work`` in a unit of work, again from the start after a deadlock or serialization failure."""
    for attempt in range(attempts):
        try:
            with unit_of_work(engine) as session:
                return work(session)
        except DBAPIError as exc:
            if not is_retryable(exc) or attempt + 1 == attempts:
                raise
            time.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")


@contextmanager
def unit_of_work(engine: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises.

    A database that cannot be reached becomes ``Unavailable`` so the edges can answer 503.
    ``read_only`` lets SQLite readers run beside a writer instead of queueing behind it.
    """
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    session = Session(bind, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except OperationalError as exc:
        session.rollback()
        if is_connection_error(exc) and not is_retryable(exc):
            raise Unavailable("database unavailable") from exc
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
