"""The whole system for a benchmark: Redis, a database, the webhook sink, one API and the workers.

Used by the open-loop, bulk-import and memory benchmarks (``bench.intake`` also times a bare
dramatiq baseline between setup and start, so it keeps its own sequence of the same parts).
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench import pipeline
from bench.harness import (
    DRAMATIQ_READY,
    BenchError,
    bench_org,
    child,
    child_env,
    dispatcher_cmd,
    free_port,
    redis_broker,
    redis_pid,
    run_cli,
    throwaway_database,
    wait_for,
    wait_for_log,
    webhook_sink,
)


@dataclass
class System:
    base_url: str
    token: str
    env: dict[str, str]
    backend: str
    database_url: str
    engine: sa.Engine
    work: Path
    api: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    processes: int
    threads: int

    def pids(self) -> dict[str, int]:
        """The processes whose CPU and memory are measured, by role."""
        found = {"api": self.api.pid, "worker": self.worker.pid}
        redis = redis_pid(self.env["DISPATCH_REDIS_URL"])
        if redis is not None:
            found["redis"] = redis
        return found


def prepare(env: dict[str, str], org: Path) -> str:
    """Migrate, load the org, add a source that is never rate limited; its token."""
    run_cli(["db", "upgrade"], env)
    run_cli(["org", "load", str(org)], env)
    out = run_cli(["source", "add", "bench", "--kinds", "clue,complaint,enterprise_request",
                   "--rate", "100000", "--burst", "100000"], env)  # fmt: skip
    return out.strip().splitlines()[-1]


def api_up(base_url: str, api: subprocess.Popen[bytes]) -> bool:
    if api.poll() is not None:
        raise BenchError("the API process exited; see api.log")
    try:
        return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def running_system(
    *,
    database_url: str | None,
    redis_url: str | None,
    processes: int,
    threads: int,
    worker_nice: int = 0,
    logs: Path | None = None,
) -> Iterator[System]:
    """Everything started on 127.0.0.1, ready for events; all of it stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="zd-bench-") as tmp:
        work = Path(tmp)
        try:
            with (
                redis_broker(redis_url, work) as broker,
                throwaway_database(database_url, work) as (url, backend),
                webhook_sink() as sink,
            ):
                org, secrets_env = bench_org(work, sink)
                env = child_env(
                    DISPATCH_DATA_DIR=str(work), DISPATCH_DATABASE_URL=url, DISPATCH_REDIS_URL=broker.url,
                    DISPATCH_BROKER_NAMESPACE=broker.namespace, DISPATCH_SECRET_KEY=secrets.token_urlsafe(48),
                    DISPATCH_WORKER_METRICS_PORT="0", DISPATCH_LOG_LEVEL="WARNING", **secrets_env,
                )  # fmt: skip
                print(f"backend {backend}, broker {broker.url} (namespace {broker.namespace})", flush=True)
                token = prepare(env, org)
                port = free_port()
                base_url = f"http://127.0.0.1:{port}"
                engine = pipeline.reader(url)
                worker_argv = dispatcher_cmd(
                    "worker", "-p", str(processes), "-t", str(threads), "--nice", str(worker_nice)
                )
                try:
                    with (
                        child(dispatcher_cmd("api", "--host", "127.0.0.1", "--port", str(port)), env,
                              work / "api.log") as api,
                        child(worker_argv, env, work / "worker.log", stop_timeout=20) as worker,
                    ):  # fmt: skip
                        wait_for(lambda: api_up(base_url, api), timeout=60, what="the API")
                        wait_for_log(work / "worker.log", DRAMATIQ_READY, processes, worker, timeout=60)
                        yield System(
                            base_url=base_url, token=token, env=env, backend=backend, database_url=url,
                            engine=engine, work=work, api=api, worker=worker, processes=processes,
                            threads=threads,
                        )  # fmt: skip
                finally:
                    engine.dispose()
        finally:
            if logs is not None:
                logs.mkdir(parents=True, exist_ok=True)
                for log in work.glob("*.log"):
                    (logs / log.name).write_bytes(log.read_bytes())
