"""The fault suite's parts: a deployment of real processes, a load that publishes as an upstream
system would, and the tally that says what became of every event.

A deployment is ``dispatcher api`` (several, each on its port), ``worker`` and ``scheduler``
processes, each in its own process group so that ``kill -9`` takes a worker's forked children too,
on the test's own PostgreSQL cluster and Redis server (``tests.support``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from dispatcher.wallclock import utcnow
from events.client import DispatchClient, PublishError
from tests import factories
from tests.e2e.conftest import ready as api_ready
from tests.support import ROOT, dispatcher_cmd, free_port, wait_for

#: ``DISPATCH_FAULTS=long``: the issue's sizes (10,000 events); otherwise the short CI variant.
LONG = os.environ.get("DISPATCH_FAULTS", "short") == "long"
#: Where every scenario appends its figures (one JSON object per line; docs/RELIABILITY.md's table).
RESULTS = ROOT / "test-artifacts" / "faults" / ("long.jsonl" if LONG else "short.jsonl")


def size(short: int, long: int) -> int:
    return long if LONG else short


#: pytest-timeout for one scenario (the suite's default, 300 s, is shorter than a long run's waits).
TEST_TIMEOUT = size(600, 3600)


# --- processes --------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    args: tuple[str, ...]
    popen: subprocess.Popen[bytes] | None = None
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class Deployment:
    """The processes of one simulated installation; each can be killed (``kill -9`` of its group)
    and started again with the same arguments (an API on the same port)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, Proc] = {}

    # starting
    def _spawn(self, proc: Proc) -> Proc:
        with open(self.logs / f"{proc.name}.log", "ab") as out:
            proc.popen = subprocess.Popen(
                dispatcher_cmd(*proc.args),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
            )
        self.procs[proc.name] = proc
        return proc

    def api(self, name: str = "api", *, wait: bool = True) -> Proc:
        port = free_port()
        proc = self._spawn(Proc(name, ("api", "--port", str(port)), port=port))
        if wait:
            self.wait_api(proc)
        return proc

    def start_apis(self, *names: str) -> None:
        """Several APIs, started together, each on its port (as on several machines)."""
        for name in names:
            self.api(name, wait=False)
        for name in names:
            self.wait_api(self.procs[name])

    def two_of_each(self) -> Deployment:
        """Two APIs, two workers (one process, four threads each) and a scheduler."""
        self.start_apis("api-1", "api-2")
        self.worker("worker-1")
        self.worker("worker-2")
        self.scheduler()
        return self

    def wait_api(self, proc: Proc, timeout: float = 60) -> None:
        wait_for(lambda: api_ready(proc.url) or not proc.running, timeout=timeout, what=f"{proc.name} ready")
        assert proc.running, self.log(proc.name)

    def worker(self, name: str = "worker", *, processes: int = 1, threads: int = 4) -> Proc:
        proc = self._spawn(Proc(name, ("worker", "-p", str(processes), "-t", str(threads))))
        self.wait_log(name, "ready for action")
        return proc

    def scheduler(self, name: str = "scheduler") -> Proc:
        return self._spawn(Proc(name, ("scheduler",)))

    def wait_log(self, name: str, text: str, timeout: float = 60) -> None:
        wait_for(
            lambda: text in self.log(name) or not self.procs[name].running,
            timeout=timeout,
            what=f"{name}: {text!r}",
        )
        assert self.procs[name].running, self.log(name)

    # faults
    def kill(self, name: str) -> None:
        """``kill -9`` of the process and its children (its whole group), reaped."""
        proc = self.procs[name]
        if proc.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(20)

    def restart(self, name: str, *, wait: bool = True) -> Proc:
        proc = self.procs[name]
        self.kill(name)
        self._spawn(proc)
        if wait and proc.port is not None:
            self.wait_api(proc)
        elif wait and proc.args[0] == "worker":
            before = self.log(name).count("ready for action")
            wait_for(
                lambda: self.log(name).count("ready for action") > before or not proc.running,
                timeout=60,
                what=f"{name} to boot again",
            )
        return proc

    def kill_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.popen is not None and proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
        for name, proc in self.procs.items():
            if proc.popen is not None:
                try:
                    proc.popen.wait(15)
                except subprocess.TimeoutExpired:
                    self.kill(name)

    # reading
    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def apis(self) -> list[str]:
        return [p.url for p in self.procs.values() if p.port is not None]

    def dead(self) -> list[str]:
        """Processes that exited although nobody killed them (a crash is a finding)."""
        return [n for n, p in self.procs.items() if p.popen is not None and p.popen.poll() not in (None, -9)]


# --- the load ---------------------------------------------------------------------------------


def bodies(n: int, tag: str, *, late_every: int = 5) -> list[dict[str, Any]]:
    """``n`` events of the three kinds; one in ``late_every`` imported late (received 30–40 days
    ago), so their clocks have run out and supervision works while the faults happen."""
    makers = (factories.complaint, factories.clue, factories.enterprise_request)
    out = []
    for i in range(n):
        body = makers[i % 3](f"{tag}-{i:06d}")
        if late_every and i % late_every == 0:
            body["received_at"] = (utcnow() - timedelta(days=30 + i % 10)).isoformat()
        out.append(body)
    return out


class Counting(httpx.HTTPTransport):
    """Counts every answer by status (and ``Retry-After`` on 503s) and every connection failure."""

    def __init__(self, tally: Counter[str], lock: threading.Lock) -> None:
        super().__init__()
        self.tally, self.lock = tally, lock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = super().handle_request(request)
        except httpx.TransportError as exc:
            with self.lock:
                self.tally[f"network:{type(exc).__name__}"] += 1
            raise
        with self.lock:
            self.tally[str(response.status_code)] += 1
            if response.status_code == 503 and "retry-after" in response.headers:
                self.tally["503 with Retry-After"] += 1
        return response


class Load:
    """Publishes ``bodies`` through the deployment's APIs as an upstream system does: the Python
    client, which retries 429/5xx/network errors with backoff; when it gives up on one API the
    item goes to the next API, with the same ``external_id`` (a retry is safe), until ``patience``
    runs out. Items are single events or batches (every ``batch_every``-th item)."""

    def __init__(
        self,
        urls: Callable[[], list[str]],
        token: str,
        events: list[dict[str, Any]],
        *,
        threads: int = 4,
        batch: int = 20,
        batch_every: int = 4,
        patience: float = 300.0,
    ) -> None:
        self.urls, self.token, self.events = urls, token, events
        self.patience = patience
        self.answers: dict[str, str] = {}  # external_id → event_id (2xx)
        self.refused: list[tuple[str, Any]] = []  # a 4xx other than 429: the load's own bug
        self.abandoned: list[str] = []  # never answered within patience
        self.http: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._items: queue.Queue[list[dict[str, Any]]] = queue.Queue()
        step = itertools.count()
        i = 0
        while i < len(events):
            width = batch if next(step) % batch_every == batch_every - 1 else 1
            self._items.put(events[i : i + width])
            i += width
        self._threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(threads)]

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "the load did not finish in time"

    @property
    def done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    def progress(self) -> int:
        with self._lock:
            return len(self.answers)

    def _run(self, k: int) -> None:
        clients: dict[str, DispatchClient] = {}
        turn = k
        try:
            while True:
                try:
                    item = self._items.get_nowait()
                except queue.Empty:
                    break
                deadline = time.monotonic() + self.patience
                while True:
                    urls = self.urls()
                    url = urls[turn % len(urls)]
                    turn += 1
                    if url not in clients:
                        clients[url] = DispatchClient(
                            url,
                            self.token,
                            timeout=10,
                            max_attempts=4,
                            backoff=0.2,
                            max_backoff=2,
                            transport=Counting(self.http, self._lock),
                        )
                    try:
                        if self._send(clients[url], item) or time.monotonic() > deadline:
                            break
                    except Exception as exc:
                        with self._lock:
                            self.refused += [(e["external_id"], repr(exc)) for e in item]
                        break
                if time.monotonic() > deadline:
                    with self._lock:
                        self.abandoned += [
                            e["external_id"] for e in item if e["external_id"] not in self.answers
                        ]
        finally:
            for c in clients.values():
                c.close()

    def _send(self, client: DispatchClient, item: list[dict[str, Any]]) -> bool:
        """One try through one API (with the client's own retries); True once answered."""
        try:
            results = [client.publish(item[0])] if len(item) == 1 else client.publish_batch(item)
        except PublishError as exc:
            if exc.status is None or exc.status in (429, 500, 502, 503, 504):
                return False  # gave up on this API for now: the next one, same external ids
            with self._lock:
                self.refused += [(e["external_id"], exc.body) for e in item]
            return True
        with self._lock:
            for body, result in zip(item, results, strict=True):
                if result.ok and result.event_id:
                    self.answers[body["external_id"]] = result.event_id
                else:
                    self.refused.append((body["external_id"], result.error))
        return True


# --- the tally --------------------------------------------------------------------------------


@dataclass
class Figures:
    """What became of the events of one scenario (the table in docs/RELIABILITY.md)."""

    scenario: str
    database: str = "postgresql"
    sent: int = 0
    accepted: int = 0
    tasks: int = 0
    lost: int = 0
    doubled: int = 0
    ledger_gaps: int = 0
    supervision_doubled: int = 0
    supervision_steps: int = 0
    #: webhook deliveries received, and notifications delivered more than once (allowed: webhooks
    #: are at-least-once; the receiver deduplicates on X-Dispatch-Delivery)
    webhooks: int = 0
    webhooks_repeated: int = 0
    recover_seconds: float = 0.0
    http: dict[str, int] = field(default_factory=dict)
    notes: str = ""

    def record(self) -> None:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        line = {**asdict(self), "long": LONG, "at": utcnow().isoformat(timespec="seconds")}
        with open(RESULTS, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
        print(f"\n[faults] {json.dumps(line, ensure_ascii=False)}")

    def assert_promise(self) -> None:
        assert self.accepted == self.sent, f"{self.sent - self.accepted} events never accepted: {self}"
        assert (self.lost, self.doubled, self.ledger_gaps, self.supervision_doubled) == (0, 0, 0, 0), self


def _rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


def routed(engine: sa.Engine) -> int:
    """How many events have their task (dispatched to a unit, or waiting in triage): each scenario
    has a database of its own, so every event in it is the load's."""
    (n,) = _rows(engine, "SELECT count(*) FROM events e JOIN tasks t ON t.event_id = e.id")[0]
    return int(n)


def supervised(engine: sa.Engine) -> int:
    """How many tasks have had a supervision step (a warning, overdue, escalation…)."""
    (n,) = _rows(engine, "SELECT count(DISTINCT task_id) FROM supervision_orders")[0]
    return int(n)


#: Longest wait for every accepted event to have its task after a fault (the long variant's
#: backlog of 10,000 events takes minutes to drain on two cores).
ROUTED_WITHIN = size(120, 600)


def wait_routed(engine: sa.Engine, load: Load, *, since: float, what: str) -> float:
    """Wait until every accepted event has its task; the seconds it took from ``since``. Then until
    every late-imported one has been supervised (its clocks ran out before it arrived), so that the
    tally counts supervision steps that were taken, not ones still to come."""
    expected = len(load.answers)
    wait_for(
        lambda: routed(engine) >= expected,
        timeout=ROUTED_WITHIN,
        interval=0.5,
        what=f"{expected} events routed after {what} (routed: {routed(engine)})",
    )
    took = round(time.monotonic() - since, 1)
    late = sum(1 for e in load.events if "received_at" in e and e["external_id"] in load.answers)
    wait_for(
        lambda: supervised(engine) >= late,
        timeout=ROUTED_WITHIN,
        interval=0.5,
        what=f"the {late} late-imported tasks supervised (now {supervised(engine)})",
    )
    return took


def tally(
    engine: sa.Engine,
    scenario: str,
    load: Load,
    *,
    recover_seconds: float,
    notes: str = "",
    deliveries: Counter[str] | None = None,
) -> Figures:
    """Count everything the promise is about, from the database, against what the load was told
    (one snapshot: supervision goes on while we read, and orders must match their notifications)."""
    unanswered = {"refused": len(load.refused), "abandoned": len(load.abandoned)}
    if any(unanswered.values()):  # why some were never accepted, for the failure's message
        notes += f"; {unanswered}, first refusals: {load.refused[:3]}"
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        figures = _tally(
            lambda sql, **params: list(conn.execute(sa.text(sql), params).all()),
            engine.dialect.name,
            scenario,
            load,
            recover_seconds=recover_seconds,
            notes=notes,
        )
    if deliveries is not None:
        figures.webhooks = sum(deliveries.values())
        figures.webhooks_repeated = sum(1 for n in deliveries.values() if n > 1)
    figures.record()
    return figures


def _tally(
    q: Callable[..., list[Any]],
    database: str,
    scenario: str,
    load: Load,
    *,
    recover_seconds: float,
    notes: str,
) -> Figures:
    rows = q("SELECT external_id, id, status FROM events")
    stored = {ext: (eid, status) for ext, eid, status in rows}
    tasks_per_event = Counter(eid for (eid,) in q("SELECT event_id FROM tasks WHERE event_id IS NOT NULL"))
    dispatch_entries = Counter(
        tid for (tid,) in q("SELECT task_id FROM task_history WHERE move = 'dispatch'")
    )
    lost = 0
    for ext, eid in load.answers.items():
        row = stored.get(ext)
        if row is None or row[0] != eid or tasks_per_event[eid] == 0:
            lost += 1
    doubled = sum(n - 1 for n in tasks_per_event.values() if n > 1)
    doubled += sum(n - 1 for n in dispatch_entries.values() if n > 1)
    doubled += len(rows) - len(stored)  # an external id stored twice (the events' unique key forbids it)
    # effects no unique key guards: a unit told twice that a task was dispatched to it
    told_dispatched = Counter(
        map(tuple, q("SELECT task_id, unit_code FROM notifications WHERE kind = 'dispatched'"))
    )
    doubled += sum(n - 1 for n in told_dispatched.values() if n > 1)
    gaps = 0
    numbers: dict[str, list[int]] = {}
    for (ledger_no,) in q("SELECT ledger_no FROM events"):
        prefix, _, number = ledger_no.rpartition("-")
        numbers.setdefault(prefix, []).append(int(number))
    for nums in numbers.values():
        gaps += max(nums) - len(set(nums)) + (len(nums) - len(set(nums)))  # holes, and numbers used twice
    steps = Counter((t, s) for t, s in q("SELECT task_id, step FROM supervision_orders"))
    # each step tells one unit at most: more supervision notifications of a task than steps is a double
    orders = Counter(t for t, _ in steps.elements())
    told = Counter(t for (t,) in q("SELECT task_id FROM notifications WHERE kind LIKE 'supervision.%'"))
    told_twice = sum(max(0, n - orders[t]) for t, n in told.items())
    if told_twice:  # the evidence, for the failure's message
        worst = max(told, key=lambda t: told[t] - orders[t])
        steps_of = q("SELECT step FROM supervision_orders WHERE task_id = :t", t=worst)
        told_of = q("SELECT kind, unit_code, message FROM notifications WHERE task_id = :t", t=worst)
        notes += f"; task {worst}: orders {steps_of}, notifications {told_of}"
    return Figures(
        scenario=scenario,
        database=database,
        sent=len(load.events),
        accepted=len(load.answers),
        tasks=sum(tasks_per_event.values()),
        lost=lost,
        doubled=doubled,
        ledger_gaps=gaps,
        supervision_doubled=sum(n - 1 for n in steps.values() if n > 1) + told_twice,
        supervision_steps=sum(steps.values()),
        recover_seconds=recover_seconds,
        http=dict(load.http),
        notes=notes,
    )


@contextlib.contextmanager
def every(seconds: float, action: Callable[[int], None]) -> Iterator[list[BaseException]]:
    """Run ``action(n)`` every ``seconds`` in a thread while the block runs; its errors are yielded."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        n = 0
        while not stop.wait(seconds):
            try:
                action(n)
            except BaseException as exc:
                errors.append(exc)
                return
            n += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        stop.set()
        thread.join(60)


# --- the monthly jobs -------------------------------------------------------------------------


def backdate_org(engine: sa.Engine, days: int = 70) -> set[tuple[str, str]]:
    """Say the org has been in service for ``days``: the monthly runs due since, which a scheduler
    catches up on start, as ``(job, period)``."""
    from dispatcher.monthly.periods import Job, due_periods
    from dispatcher.supervision.policy import DEFAULT_POLICY

    since = utcnow() - timedelta(days=days)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE org_versions SET loaded_at = :t"), {"t": since.replace(tzinfo=None)})
    policy = DEFAULT_POLICY
    return {
        (job.value, str(period))
        for job in Job
        for period in due_periods(
            job, utcnow(), policy.schedules, policy.work_calendar(), policy.tz, since=since
        )
    }


def monthly_done(engine: sa.Engine, expected: set[tuple[str, str]]) -> dict[str, int]:
    """Wait for the expected monthly runs; then what they made, doubled: runs, meetings (per zone
    and period), trainings (per unit and period), reports (per period) — all must be 0."""

    def runs() -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT job, period, state FROM schedule_runs")).all())

    wait_for(
        lambda: len(runs()) >= len(expected) and all(r[2] == "succeeded" for r in runs()),
        timeout=120,
        interval=0.5,
        what=f"the {len(expected)} monthly runs",
    )
    done = Counter((job, period) for job, period, _ in runs())
    assert set(done) == expected, (set(done), expected)
    with engine.connect() as conn:
        made = {
            "runs": done,
            "meetings": Counter(conn.execute(sa.text("SELECT zone_code, period FROM meetings")).all()),
            "trainings": Counter(conn.execute(sa.text("SELECT unit_code, period FROM trainings")).all()),
            "reports": Counter(conn.execute(sa.text("SELECT period FROM reports")).all()),
        }
    assert all(made.values()), f"a monthly job made nothing: {made}"
    return {name: sum(n - 1 for n in c.values() if n > 1) for name, c in made.items()}
