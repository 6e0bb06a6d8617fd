"""Fixtures and helpers of the end-to-end tests: real ``python -m dispatcher`` processes.

Every child gets its own ``DISPATCH_DATA_DIR`` under ``tmp_path``, the test's database and broker
namespace, a fixed secret key and fast relay/heartbeat settings (see ``e2e_env``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col, func, select

from dispatcher.db import unit_of_work
from dispatcher.enums import EventStatus
from dispatcher.models import Event, Task
from tests.support import ROOT, child_env, dispatcher_cmd, free_port, process, wait_for

TEST_SECRET = "e2e-secret-key-that-is-long-enough-0123456789abcdef"

#: Settings every child process gets (DESIGN §9 names; fast relay and heartbeat for tests).
FAST = {
    "DISPATCH_SECRET_KEY": TEST_SECRET,
    "DISPATCH_WORKER_METRICS_PORT": "0",
    "DISPATCH_RELAY_AFTER_SECONDS": "1",
    "DISPATCH_RELAY_INTERVAL_SECONDS": "0.5",
    "DISPATCH_RELAY_MAX_BACKOFF_SECONDS": "2",
    "DISPATCH_HEARTBEAT_TIMEOUT_MS": "5000",
}


def e2e_env(data_dir: Path, **values: str) -> dict[str, str]:
    """A child's environment: nothing ``DISPATCH_*`` inherited, only what the test says."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return child_env(**{"DISPATCH_DATA_DIR": str(data_dir), **FAST, **values})


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m dispatcher ARGS`` to completion, from the repository root."""
    return subprocess.run(
        dispatcher_cmd(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


# --- processes --------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) of a process from /proc, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parens
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root``: pid → start time (to tell a reused pid from ours)."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _stat(int(entry))
        if st is not None and st[0] != "Z":
            children.setdefault(st[1], []).append((int(entry), st[2]))
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if pid not in found:
                found[pid] = start
                todo.append(pid)
    return found


def alive(pids: dict[int, int]) -> dict[int, str]:
    """Those of ``pids`` still running (zombies count as gone): pid → command line."""
    out = {}
    for pid, start in pids.items():
        st = _stat(pid)
        if st is not None and st[0] != "Z" and st[2] == start:
            try:
                out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                out[pid] = "?"
    return out


def kill_all(pids: dict[int, int]) -> None:
    """Clean-up: SIGKILL whichever of the processes we started (and recorded) is still there."""
    for pid in alive(pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Stack:
    """``dispatcher api``, ``worker`` and ``scheduler`` as processes; each can be killed and restarted."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._stack = contextlib.ExitStack()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started: dict[int, int] = {}  # every pid we ever saw under our processes

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        proc = self._stack.enter_context(process(dispatcher_cmd(*args), self.env, self.logs / f"{name}.log"))
        self.procs[name] = proc
        return proc

    def api(self) -> subprocess.Popen[bytes]:
        proc = self.start("api", "api", "--port", str(self.port))
        wait_for(lambda: ready(self.url) or proc.poll() is not None, timeout=30, what="the API to be ready")
        assert proc.poll() is None, self.log("api")
        return proc

    def worker(self, *args: str, name: str = "worker") -> subprocess.Popen[bytes]:
        proc = self.start(name, "worker", *args)
        wait_for(lambda: "ready for action" in self.log(name), timeout=30, what=f"{name} to boot")
        self.remember()
        return proc

    def remember(self) -> None:
        for proc in self.procs.values():
            st = _stat(proc.pid)
            if st is not None and proc.poll() is None:
                self.started[proc.pid] = st[2]
                self.started.update(descendants(proc.pid))

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self.remember()
        self._stack.close()
        kill_all(self.started)


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Any]:
    stacks: list[Stack] = []

    def make(env: dict[str, str]) -> Stack:
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        stack = Stack(env, logs)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


# --- database checks --------------------------------------------------------------------------


def routing_state(engine: sa.Engine, event_ids: list[str]) -> dict[str, Any]:
    """How the given events stand: statuses, tasks per event, events without a task."""
    with unit_of_work(engine) as s:
        statuses = dict(
            s.exec(
                select(Event.status, func.count()).where(col(Event.id).in_(event_ids)).group_by(Event.status)
            ).all()
        )
        per_event = dict(
            s.exec(
                select(Task.event_id, func.count())
                .where(col(Task.event_id).in_(event_ids))
                .group_by(Task.event_id)
            ).all()
        )
    return {
        "statuses": statuses,
        "with_task": len(per_event),
        "duplicates": {e: n for e, n in per_event.items() if n > 1},
        "routed": sum(n for st, n in statuses.items() if st in (EventStatus.dispatched, EventStatus.triage)),
    }


def count_tasks(engine: sa.Engine) -> int:
    with unit_of_work(engine) as s:
        return int(s.exec(select(func.count()).select_from(Task)).one())


def elapsed(start: float) -> float:
    return round(time.monotonic() - start, 2)
