"""Where one event's time goes: intake and routing in this process, one thread, no HTTP, no broker.

``python -m bench.costs [--database-url postgresql://…] [--events 500]`` stores N realistic
events through the intake use case (``register_events``), one call per event and then in
batches, and routes them through the routing use case (``dispatch_events``), one message per
event and then per batch of up to 50 ids, as the worker would. For each step it reports, per
event: wall time, CPU time of this thread, SQL statements sent and commits. With ``--profile``
it also prints the functions with the most cumulative time (cProfile) for each step.

It answers "what does an event cost, and of what", free of the HTTP server, the broker and the
other processes that share the two cores in ``bench.intake``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from bench.harness import BenchError, throwaway_database
from bench.pipeline import EXAMPLE_ORG, make_bodies
from bench.report import append, machine
from dispatcher.bootstrap import build_runtime
from dispatcher.intake.register import Envelope, parse_event
from dispatcher.intake.service import register_events
from dispatcher.models import Source
from dispatcher.routing.service import dispatch_events
from dispatcher.runtime import Runtime
from dispatcher.settings import Settings


@dataclass
class NullQueue:
    """The broker's place: remembers what would have been sent, sends nothing."""

    routed: list[str] = field(default_factory=list)

    def route_events(self, event_ids: Sequence[str]) -> None:
        self.routed.extend(event_ids)

    def deliver_webhooks(self, notification_ids: Sequence[int]) -> None:
        pass

    def __getattr__(self, name: str) -> Any:  # the on-call reads are not used here
        raise AttributeError(name)


@dataclass
class Step:
    name: str
    events: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    statements: int = 0
    commits: int = 0
    profile: str = ""

    def row(self) -> str:
        n = max(self.events, 1)
        return (
            f"| {self.name} | {self.wall / n * 1000:.2f} | {self.cpu / n * 1000:.2f} "
            f"| {self.statements / n:.1f} | {self.commits / n:.2f} |"
        )


@contextmanager
def counting(engine: sa.Engine, step: Step) -> Iterator[None]:
    def on_execute(*_: Any) -> None:
        step.statements += 1

    def on_commit(*_: Any) -> None:
        step.commits += 1

    sa.event.listen(engine, "before_cursor_execute", on_execute)
    sa.event.listen(engine, "commit", on_commit)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_execute)
        sa.event.remove(engine, "commit", on_commit)


def measure(rt: Runtime, name: str, calls: list[Callable[[], object]], events: int, *, profile: bool) -> Step:
    step = Step(name, events=events)
    profiler = cProfile.Profile() if profile else None
    with counting(rt.engine, step):
        wall, cpu = time.perf_counter(), time.thread_time()
        if profiler is not None:
            profiler.enable()
        for call in calls:
            call()
        if profiler is not None:
            profiler.disable()
        step.wall, step.cpu = time.perf_counter() - wall, time.thread_time() - cpu
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
        step.profile = text.getvalue()
    return step


def setup(database_url: str, work: Path) -> tuple[Runtime, NullQueue, int]:
    from dispatcher.accounts.registry import add_source
    from dispatcher.migrate import upgrade
    from dispatcher.org.loader import load_org_file
    from dispatcher.org.store import save_org

    settings = Settings(data_dir=work, database_url=database_url, secret_key=secrets.token_urlsafe(48))
    upgrade(database_url, secret_key=settings.resolved_secret_key)
    queue = NullQueue()
    rt = build_runtime(settings, queue=queue)
    with rt.work() as s:
        text = EXAMPLE_ORG.read_text(encoding="utf-8")
        key = settings.resolved_secret_key
        org = load_org_file(EXAMPLE_ORG)
        save_org(s, org, source_name="org.yaml", text=text, now=rt.now(), secret_key=key)
        source, _ = add_source(
            s, name="bench", kinds=["clue", "complaint", "enterprise_request"], rate=1e6, burst=10**6,
            now=rt.now(),
        )  # fmt: skip
        assert source.id is not None
        source_id = source.id
    return rt, queue, source_id


def source_of(rt: Runtime, source_id: int) -> Source:
    with rt.work(read_only=True) as s:
        source = s.exec(select(Source).where(Source.id == source_id)).one()
        Session.expunge(s, source)
        return source


def run(args: argparse.Namespace, database_url: str, work: Path) -> list[Step]:
    rt, queue, source_id = setup(database_url, work)
    source = source_of(rt, source_id)
    n = args.events
    envelopes: list[Envelope] = [parse_event(b) for b in make_bodies(2 * n, run=secrets.token_hex(4))]
    single, batched = envelopes[:n], envelopes[n:]
    steps = [
        measure(rt, "intake, one event per call", [partial(register_events, rt, source, [e]) for e in single],
                n, profile=args.profile),
        measure(rt, f"intake, batches of {args.batch}",
                [partial(register_events, rt, source, c) for c in _chunks(batched, args.batch)],
                n, profile=args.profile),
    ]  # fmt: skip
    first, second = queue.routed[:n], queue.routed[n:]
    steps += [
        measure(rt, "routing, one event per message", [partial(dispatch_events, rt, [i]) for i in first],
                n, profile=args.profile),
        measure(rt, "routing, 50 events per message",
                [partial(dispatch_events, rt, c) for c in _chunks(second, 50)], n, profile=args.profile),
    ]  # fmt: skip
    return steps


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.costs", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", "-n", type=int, default=500, help="events per step")
    p.add_argument("--batch", type=int, default=100, help="events per intake batch")
    p.add_argument("--database-url", help="PostgreSQL admin URL (a throwaway database is made next to it)")
    p.add_argument("--profile", action="store_true", help="also print each step's top functions (cProfile)")
    p.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    p.add_argument("--no-record", action="store_true", help="print the table without appending it")
    args = p.parse_args(argv)
    if not 10 <= args.events <= 20_000:
        p.error("--events must be within 10..20000")
    with tempfile.TemporaryDirectory(prefix="zd-costs-") as tmp:
        try:
            with throwaway_database(args.database_url, Path(tmp)) as (database_url, backend):
                steps = run(args, database_url, Path(tmp))
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    text = "\n".join([
        f"### {time.strftime('%Y-%m-%d %H:%M %Z')} — cost per event, {backend}, N = {args.events} per step",
        "",
        f"Machine: {machine()}. In one process, one thread: no HTTP, no broker (`bench.costs`).",
        "",
        "| step | wall ms / event | CPU ms / event | statements / event | commits / event |",
        "|---|--:|--:|--:|--:|",
        *[step.row() for step in steps],
        "",
    ])  # fmt: skip
    print("\n" + text)
    if not args.no_record and not args.profile:
        append(args.results, text)
    for step in steps:
        if step.profile:
            print(f"\n## {step.name}\n{step.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
