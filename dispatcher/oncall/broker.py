"""What the on-call console reads from the broker, as plain data (the dramatiq adapter fills it in).

The core never talks to Redis itself: ``runtime.Queue`` (implemented by ``workers.broker.Enqueuer``)
answers with these. ``Broker`` is the part of that port the console needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """One dramatiq queue: messages ``ready`` to be fetched, ``delayed`` (retries waiting for their
    backoff), ``in_flight`` (fetched by a worker, not yet acknowledged) and ``dead`` (dead letters)."""

    queue: str
    ready: int
    delayed: int
    in_flight: int
    dead: int


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """A worker process as its heartbeats show it (``name``: host and pid, when it told us)."""

    id: str
    name: str
    last_seen: datetime
    alive: bool


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that failed its last retry: what it asked, the error, how often it was tried."""

    id: str
    queue: str
    actor: str
    args: list[object]
    retries: int
    error: str
    traceback: str
    dead_since: datetime


class Broker(Protocol):
    """The broker as on-call staff see and act on it."""

    def depths(self) -> list[QueueDepth]:
        """Every queue the workers consume, with its counts."""

    def workers(self) -> list[WorkerBeat]:
        """Worker processes that sent a heartbeat (alive or not yet cleaned up), newest first."""

    def leader(self) -> str | None:
        """The scheduler that leads now (``host:pid:tail``), or None."""

    def dead_letters(self, limit: int = 200) -> list[DeadLetter]:
        """Dead letters of every queue, newest first."""

    def retry_dead(self, message_id: str | None = None) -> int:
        """Put one dead letter (``None``: all) back on its queue with its retries reset; how many."""

    def purge_dead(self, message_id: str) -> bool:
        """Delete one dead letter for good; whether it existed."""
