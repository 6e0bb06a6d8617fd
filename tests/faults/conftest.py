"""Fixtures of the fault suite: a PostgreSQL cluster and a Redis server of the test's own (so it
may stop, kill and restart them), an installed database, and a deployment of real processes."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher.db import dispose_engines, get_engine
from tests import factories
from tests.conftest import EXAMPLE_ORG, REQUIRE
from tests.e2e.conftest import e2e_env, run_cli
from tests.faults.harness import Deployment
from tests.support import ROOT, PostgresCluster, RedisServer

#: Every test cluster's folder starts so (in the system's temp folder).
CLUSTER_PREFIX = "zd-pg-"
#: The scheduler's lease here (production: 15 s): a standby leads within it after a ``kill -9``.
LEASE = "3"


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    if not PostgresCluster.available():
        if REQUIRE:
            raise RuntimeError("the fault suite needs PostgreSQL's initdb and pg_ctl (Debian: postgresql)")
        pytest.skip("PostgreSQL server tools (initdb, pg_ctl) not installed")
    _sweep_stale_clusters()
    # outside tmp_path: the server runs as ``postgres``, which may not enter root's temp folders
    pg = PostgresCluster(Path(tempfile.mkdtemp(prefix=CLUSTER_PREFIX)))
    try:
        pg.init().start()
        yield pg
    finally:
        dispose_engines()
        pg.destroy()


def _sweep_stale_clusters() -> None:
    """Remove the clusters of earlier runs that were killed before they could clean up: a
    ``zd-pg-*`` folder whose postmaster is gone (a live one may be another run's)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{CLUSTER_PREFIX}*"):
        pid_file = folder / "data" / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            if time.time() - folder.stat().st_mtime > 600:  # not one being made right now
                shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    if server.proc is not None:
        import signal

        server.proc.send_signal(signal.SIGCONT)  # a test may leave it stopped
    server.stop()


class _Sink(BaseHTTPRequestHandler):
    """The units' webhook receivers: every delivery is taken (204) and counted by its
    ``X-Dispatch-Delivery`` (the notification id)."""

    server: _SinkServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.server.lock:
            self.server.deliveries[self.headers.get("X-Dispatch-Delivery", "?")] += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Sink)
        self.lock = threading.Lock()
        self.deliveries: Counter[str] = Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def webhook_sink() -> Iterator[_SinkServer]:
    server = _SinkServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Installed:
    """A migrated database with the example org (its webhooks pointed at ``webhook_sink``, their
    secrets set) and a source, and the environment of its processes."""

    def __init__(
        self, cluster: PostgresCluster, redis: RedisServer, tmp_path: Path, sink: _SinkServer, **settings: str
    ) -> None:
        self.database_url = cluster.create_database(f"zd_faults_{uuid.uuid4().hex[:10]}")
        self.redis = redis
        #: webhook deliveries received, by notification id (at-least-once: a repeat is allowed)
        self.deliveries = sink.deliveries
        policy = tmp_path / "policy.yaml"
        policy.write_text("sweep_seconds: 1\n", encoding="utf-8")
        org = tmp_path / "org.yaml"
        org.write_text(
            EXAMPLE_ORG.read_text(encoding="utf-8").replace("http://127.0.0.1:9", sink.url), "utf-8"
        )
        hooks = {f"WEBHOOK_SECRET_{unit}": uuid.uuid4().hex for unit in ("SHI1", "DXZ", "SCJG")}
        self.env = e2e_env(
            tmp_path / "data",
            DISPATCH_DATABASE_URL=self.database_url,
            DISPATCH_REDIS_URL=redis.url,
            DISPATCH_BROKER_NAMESPACE="dispatch",
            DISPATCH_POLICY_FILE=str(policy),
            DISPATCH_SCHEDULER_LEASE_SECONDS=LEASE,
            **hooks,
            **settings,
        )
        for args in (("db", "upgrade"), ("org", "load", str(org))):
            done = run_cli(*args, env=self.env)
            assert done.returncode == 0, done.stdout + done.stderr
        self.engine: sa.Engine = get_engine(self.database_url)
        self.token = factories.source_token(self.engine, rate=100_000.0, burst=100_000)


@pytest.fixture
def install(
    cluster: PostgresCluster,
    own_redis: RedisServer,
    webhook_sink: _SinkServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Any]:
    made: list[Deployment] = []
    failed_before = request.session.testsfailed

    def make(**settings: str) -> tuple[Installed, Deployment]:
        inst = Installed(cluster, own_redis, tmp_path, webhook_sink, **settings)
        deployment = Deployment(inst.env, tmp_path / "logs")
        made.append(deployment)
        return inst, deployment

    yield make
    for deployment in made:
        deployment.close()
    logs = tmp_path / "logs"
    if request.session.testsfailed > failed_before and logs.exists():  # the processes' logs of a failure
        shutil.copytree(logs, ROOT / "test-artifacts" / "faults" / "logs" / tmp_path.name, dirs_exist_ok=True)
