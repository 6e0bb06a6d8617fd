"""HTTP intake latency at a fixed offered load, with an open-loop generator.

``python -m bench.openloop --rate 200 --seconds 30`` starts the system (``bench.system``) and
sends request *i* at ``t0 + i / rate`` whether or not earlier ones have been answered: a server
that slows down gets a queue, not a lighter load (a closed loop would hide that, "coordinated
omission"). Latency counts from the request's *scheduled* time to its answer, so a late send is
the server's delay too.

Baseline, same run, same generator and rate: ``GET /healthz`` (the HTTP stack, no database),
then ``POST /api/v1/events`` with realistic events. Afterwards it waits for every accepted event
to become a task and counts any lost or doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import pipeline
from bench.harness import BenchError, cpu_seconds
from bench.report import finish, machine, percentile
from bench.system import running_system


@dataclass
class Load:
    """What one open-loop phase saw."""

    name: str
    rate: float
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: How late the generator itself sent, at worst (a busy client machine shows here).
    worst_send_lag: float = 0.0
    event_ids: list[str] = field(default_factory=list)
    #: CPU seconds of the API process while this load ran.
    api_cpu: float = 0.0

    def row(self) -> str:
        lat = self.latencies or [float("nan")]
        return (
            f"| {self.name} | {self.rate:,.0f} | {self.sent:,} | {len(self.errors)} "
            f"| {percentile(lat, 50) * 1000:.1f} | {percentile(lat, 95) * 1000:.1f} "
            f"| {percentile(lat, 99) * 1000:.1f} | {max(lat) * 1000:.0f} | {self.worst_send_lag * 1000:.0f} "
            f"| {self.api_cpu / max(self.sent, 1) * 1000:.2f} |"
        )


HEADER = (
    "| load | offered req/s | requests | errors | p50 ms | p95 ms | p99 ms | max ms | worst send lag ms "
    "| API CPU ms / request |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


async def open_loop(
    base_url: str, token: str, load: Load, seconds: float, body: Any, timeout: float = 30.0
) -> None:
    """Send ``rate × seconds`` requests on schedule; ``body(i)`` is the event to post, or None for a GET."""
    total = int(load.rate * seconds)
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=timeout) as http:

        async def one(i: int, due: float) -> None:
            payload = body(i)
            try:
                if payload is None:
                    response = await http.get("/healthz")
                else:
                    response = await http.post("/api/v1/events", json=payload)
            except httpx.HTTPError as exc:
                load.errors.append(f"{type(exc).__name__}: {exc}")
                return
            done = time.perf_counter()
            if response.status_code >= 400:
                load.errors.append(f"{response.status_code}: {response.text[:200]}")
                return
            load.latencies.append(done - due)
            if payload is not None:
                load.event_ids.append(response.json()["event_id"])

        tasks = []
        start = time.perf_counter() + 0.2
        for i in range(total):
            due = start + i / load.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            load.worst_send_lag = max(load.worst_send_lag, time.perf_counter() - due)
            tasks.append(asyncio.create_task(one(i, due)))
            load.sent += 1
        await asyncio.gather(*tasks)


def run_loads(base_url: str, token: str, rate: float, seconds: float, api_pid: int) -> list[Load]:
    bodies = pipeline.make_bodies(int(rate * seconds) + 1, run=f"open-{secrets.token_hex(4)}")
    health = Load("baseline: GET /healthz", rate)
    events = Load("POST /api/v1/events (one event each)", rate)
    for load, body in ((health, lambda i: None), (events, lambda i: bodies[i])):
        before = cpu_seconds({"api": api_pid})["api"]
        asyncio.run(open_loop(base_url, token, load, seconds, body))
        load.api_cpu = cpu_seconds({"api": api_pid})["api"] - before
    return [health, events]


def markdown(
    nice: int, loads: list[Load], backend: str, seconds: float, lost: int, doubled: int, routed_in: float
) -> str:

    when = time.strftime("%Y-%m-%d %H:%M %Z")
    events = loads[-1]
    p99 = percentile(events.latencies, 99) if events.latencies else float("nan")
    lines = [
        f"### {when} — open loop, {backend}, {events.rate:.0f} requests/s for {seconds:.0f} s",
        "",
        f"Machine: {machine()}. One API process, workers `-p 2 -t 4 --nice {nice}`; the generator shares "
        "the machine.",
        "",
        HEADER,
        *[load.row() for load in loads],
        "",
        f"Intake p99 {p99 * 1000:.1f} ms {'meets' if p99 < 0.05 else 'misses'} the 50 ms goal "
        f"({p99 / percentile(loads[0].latencies, 99):.1f}× the bare HTTP stack's p99). "
        f"{len(events.event_ids):,} accepted; all routed {routed_in:.1f} s after the last answer; "
        f"lost {lost}, doubled {doubled}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.openloop", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=200, help="requests per second offered")
    p.add_argument("--seconds", type=float, default=30, help="seconds each load lasts")
    p.add_argument("--database-url", help="PostgreSQL admin URL (a throwaway database is made next to it)")
    p.add_argument("--redis-url", help="an existing Redis on 127.0.0.1 (a fresh namespace is used)")
    p.add_argument("--timeout", type=float, default=600, help="seconds allowed for routing to finish")
    p.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    p.add_argument("--no-record", action="store_true", help="print the table without appending it")
    p.add_argument("--worker-nice", type=int, default=0, help="`dispatcher worker --nice`")
    p.add_argument(
        "--pause-workers", action="store_true", help="stop the workers during the loads (intake alone)"
    )
    args = p.parse_args(argv)
    if not 0 <= args.worker_nice <= 19:
        p.error("--worker-nice takes 0..19")
    if not 1 <= args.rate <= 5000 or not 1 <= args.seconds <= 3600:
        p.error("--rate 1..5000 and --seconds 1..3600")
    try:
        with running_system(database_url=args.database_url, redis_url=args.redis_url, processes=2,
                            threads=4, worker_nice=args.worker_nice) as system:  # fmt: skip
            print(f"open loop: {args.rate:.0f} requests/s for {args.seconds:.0f} s, twice…", flush=True)
            if args.pause_workers:
                os.killpg(system.worker.pid, signal.SIGSTOP)
            try:
                loads = run_loads(system.base_url, system.token, args.rate, args.seconds, system.api.pid)
            finally:
                if args.pause_workers:
                    os.killpg(system.worker.pid, signal.SIGCONT)
            answered = time.monotonic()
            ids = loads[-1].event_ids
            pipeline.wait_routed(system.engine, len(ids), timeout=args.timeout)
            routed_in = time.monotonic() - answered
            lost, doubled = pipeline.exactly_once(system.engine, ids)
            backend = system.backend
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    text = markdown(args.worker_nice, loads, backend, args.seconds, lost, doubled, routed_in)
    return finish(text, args.results, record=not args.no_record, ok=not (lost or doubled))


if __name__ == "__main__":
    sys.exit(main())
