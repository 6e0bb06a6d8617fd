"""``dispatcher up``: the whole system on one machine with embedded SQLite and Redis.

SQLite only by design: ``up`` with no ``DISPATCH_DATABASE_URL`` is the embedded-defaults path.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dispatcher.db import get_engine
from tests.e2e.conftest import alive, descendants, e2e_env, elapsed, kill_all, ready, run_cli
from tests.support import dispatcher_cmd, free_port, process, wait_for

pytestmark = pytest.mark.e2e


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    data: Path
    log_path: Path
    url: str
    #: Every process ``up`` started (children and grandchildren): pid → start time.
    started: dict[int, int] = field(default_factory=dict)

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    """``dispatcher up`` from the repository root (so examples/org.yaml is loaded), fully embedded."""
    data = tmp_path / "d"
    env = e2e_env(data, DISPATCH_BROKER_NAMESPACE=f"zdup-{os.getpid()}-{tmp_path.name}")
    assert "DISPATCH_REDIS_URL" not in env and "DISPATCH_DATABASE_URL" not in env
    assert len(str(data / "redis.sock")) < 100, "unix socket path too long"
    port = free_port()
    log = tmp_path / "up.log"
    seen: dict[int, int] = {}
    with process(dispatcher_cmd("up", "--port", str(port)), env, log) as proc:
        handle = Up(proc, data, log, f"http://127.0.0.1:{port}")
        wait_for(
            lambda: proc.poll() is not None or (ready(handle.url) and "stop:" in handle.output),
            timeout=60,
            what="`dispatcher up` to be ready",
        )
        assert proc.poll() is None, handle.output
        handle.started = descendants(proc.pid)
        seen.update(handle.started)
        try:
            yield handle
        finally:
            if proc.poll() is None:
                seen.update(descendants(proc.pid))
    kill_all(seen)  # never leave anything behind, whatever the test found


def _commands(pids: dict[int, int]) -> list[str]:
    return sorted(alive(pids).values())


def test_up_serves_routes_the_demo_and_stops_cleanly_on_sigterm(up: Up) -> None:
    out = up.output
    assert f"API docs:   {up.url}/docs" in out, out
    login = re.search(r"first login: user (\S+), password (\S+) \(shown once\)", out)
    assert login and login.group(1) == "admin", out
    token = re.search(r"admin API token: (\S+)", out)
    assert token, out
    # The printed admin token works (metrics need oncall or admin).
    r = httpx.get(f"{up.url}/metrics", headers={"Authorization": f"Bearer {token.group(1)}"}, timeout=5)
    assert r.status_code == 200, r.text

    # Everything it started: embedded redis, api, dramatiq main + its forked worker, scheduler.
    started = up.started
    commands = _commands(started)
    assert any("redis-server" in c and "redis.sock" in c for c in commands), commands
    assert any("dispatcher api" in c for c in commands), commands
    assert any("dispatcher scheduler" in c for c in commands), commands
    assert sum("dramatiq workers.main" in c for c in commands) >= 2, commands  # main + forked worker

    env = e2e_env(up.data)
    t0 = time.monotonic()
    demo = run_cli("demo", "--events", "60", "--url", up.url, "--wait", "60", env=env, timeout=120)
    print(f"demo of 60 events took {elapsed(t0)}s")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "accepted 60 event(s), refused 0" in demo.stdout, demo.stdout

    engine = get_engine(f"sqlite:///{(up.data / 'dispatch.sqlite3').resolve()}")
    try:
        with engine.connect() as conn:
            statuses = dict(
                conn.execute(sa.text("SELECT status, count(*) FROM events GROUP BY status")).all()
            )
            tasks = conn.execute(sa.text("SELECT count(*), count(DISTINCT event_id) FROM tasks")).one()
    finally:
        engine.dispose()
    assert sum(statuses.values()) == 60 and set(statuses) <= {"dispatched", "triage"}, statuses
    assert tuple(tasks) == (60, 60)

    listing = run_cli("tasks", "--limit", "100", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "60 task(s)" in listing.stdout

    # Graceful stop: SIGTERM to `up` alone; it stops every child (and grandchild) and exits 0.
    started.update(descendants(up.proc.pid))
    t0 = time.monotonic()
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(timeout=30) == 0, up.output
    took = elapsed(t0)
    print(f"`up` stopped {len(started)} processes in {took}s on SIGTERM")
    wait_for(lambda: not alive(started), timeout=3, what=f"no survivors, still: {_commands(started)}")
    with socket.socket(socket.AF_UNIX) as s, pytest.raises(OSError):
        s.connect(str(up.data / "redis.sock"))  # the embedded Redis is gone (socket removed or refused)
    assert "Traceback" not in up.output, up.output


def test_sigkill_of_up_takes_its_children_down(up: Up) -> None:
    started = dict(up.started)
    started.update(descendants(up.proc.pid))
    names = alive(started)
    assert len(names) >= 5, _commands(started)
    t0 = time.monotonic()
    up.proc.send_signal(signal.SIGKILL)
    up.proc.wait(5)
    # PR_SET_PDEATHSIG sends SIGTERM to each child; dramatiq's forked workers are grandchildren
    # and depend on dramatiq's main process forwarding it.
    gone_after: dict[str, float] = {}

    def all_gone() -> bool:
        living = alive(started)
        for pid in started:
            if pid not in living:
                gone_after.setdefault(f"{pid} {names.get(pid, '?')[-45:]}", elapsed(t0))
        return not living

    try:
        wait_for(all_gone, timeout=15, interval=0.05, what="the children to die")
    finally:
        survivors = _commands(started)
    print(f"after SIGKILL of `up`, each process was gone after (s): {gone_after}; survivors: {survivors}")
    assert not survivors
    with socket.socket(socket.AF_UNIX) as s, pytest.raises(OSError):
        s.connect(str(up.data / "redis.sock"))
