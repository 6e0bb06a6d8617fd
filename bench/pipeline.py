"""The pipeline under test: HTTP intake (``POST /api/v1/events``) → routing worker → task.

Each event's send time is the client's wall clock just before its request; its end is the
task's ``created_at`` (= ``dispatched_at`` for a dispatched task; a triage task has no
``dispatched_at`` but is routed all the same). All processes share this machine's clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bench.harness import ROOT, BenchError, wait_for
from dispatcher.db import normalize_url
from dispatcher.enums import TaskStatus
from dispatcher.models import Event, Task

EXAMPLE_ORG = ROOT / "examples" / "org.yaml"


@dataclass(frozen=True, slots=True)
class Sent:
    """One accepted event as the client saw it (wall-clock seconds)."""

    event_id: str
    sent: float
    answered: float


@dataclass(frozen=True, slots=True)
class Routed:
    """One event as the database saw it."""

    event_id: str
    accepted_at: float
    routed_at: float
    dispatched: bool


def make_bodies(count: int, run: str) -> list[dict[str, Any]]:
    """Realistic events of the three kinds from the example org (the same generator as ``demo``)."""
    from dispatcher.intake.samples import make_events
    from dispatcher.org.loader import load_org_file
    from dispatcher.wallclock import utcnow

    return make_events(load_org_file(EXAMPLE_ORG), count, now=utcnow(), seed=7, run=run)


def _requests(bodies: list[dict[str, Any]], mode: str, batch_size: int) -> list[list[dict[str, Any]]]:
    size = 1 if mode == "single" else batch_size
    return [bodies[i : i + size] for i in range(0, len(bodies), size)]


def publish(
    base_url: str, token: str, bodies: list[dict[str, Any]], *, clients: int, mode: str, batch_size: int
) -> tuple[list[Sent], list[str]]:
    """Send every body from ``clients`` threads (each with its own connection); accepted events and errors."""
    work: Iterator[list[dict[str, Any]]] = iter(_requests(bodies, mode, batch_size))
    lock = threading.Lock()
    sent: list[Sent] = []
    errors: list[str] = []

    def next_request() -> list[dict[str, Any]] | None:
        with lock:
            return next(work, None)

    def client() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
            while (chunk := next_request()) is not None:
                mine, problems = _send(http, chunk, mode)
                with lock:
                    sent.extend(mine)
                    errors.extend(problems)

    threads = [threading.Thread(target=client, name=f"client-{i}", daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent, errors


def _send(http: httpx.Client, chunk: list[dict[str, Any]], mode: str) -> tuple[list[Sent], list[str]]:
    started = time.time()
    try:
        if mode == "single":
            response = http.post("/api/v1/events", json=chunk[0])
        else:
            response = http.post("/api/v1/events:batch", json={"events": chunk})
    except httpx.HTTPError as exc:
        return [], [f"{type(exc).__name__}: {exc}"] * len(chunk)
    answered = time.time()
    if response.status_code not in (200, 202):
        return [], [f"{response.status_code}: {response.text[:200]}"] * len(chunk)
    body = response.json()
    items = [body] if mode == "single" else body["results"]
    ok = [Sent(item["event_id"], started, answered) for item in items if item.get("event_id")]
    bad = [f"{item.get('code')}: {item.get('error')}" for item in items if not item.get("event_id")]
    return ok, bad


def reader(database_url: str) -> sa.Engine:
    """A read-only engine: plain deferred transactions, so polling never takes SQLite's write lock."""
    return sa.create_engine(normalize_url(database_url))


def wait_routed(engine: sa.Engine, count: int, *, timeout: float) -> None:
    def routed() -> bool:
        with Session(engine) as s:
            return s.exec(select(sa.func.count()).select_from(Task)).one() >= count

    wait_for(routed, timeout=timeout, what=f"{count} events to be routed", interval=0.25)


def read_routed(engine: sa.Engine, event_ids: set[str]) -> list[Routed]:
    with Session(engine) as s:
        rows = s.exec(
            select(Event.id, Event.accepted_at, Task.created_at, Task.status).join(
                Task, col(Task.event_id) == col(Event.id)
            )
        ).all()
    found = [
        Routed(event_id, _ts(accepted), _ts(created), status == TaskStatus.dispatched)
        for event_id, accepted, created, status in rows
        if event_id in event_ids
    ]
    if len(found) != len(event_ids):
        raise BenchError(f"{len(event_ids) - len(found)} accepted event(s) have no task")
    return found


def _ts(value: datetime) -> float:
    return value.timestamp()


def exactly_once(engine: sa.Engine, event_ids: list[str]) -> tuple[int, int]:
    """``(lost, doubled)``: accepted events with no task, and tasks beyond one per event.

    Also counts a ledger number given twice as doubled (numbers are unique per event).
    """
    wanted = set(event_ids)
    with Session(engine) as s:
        tasks = s.exec(select(Task.event_id)).all()
        ledger = s.exec(select(Event.ledger_no)).all()
    per_event: dict[str, int] = {}
    for event_id in tasks:
        if event_id in wanted:
            per_event[event_id] = per_event.get(event_id, 0) + 1
    lost = len(wanted - per_event.keys())
    doubled = sum(n - 1 for n in per_event.values()) + (len(ledger) - len(set(ledger)))
    return lost, doubled
