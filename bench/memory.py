"""Memory of each process over a long run under steady load.

``python -m bench.memory --minutes 10 --rate 50`` starts the system (``bench.system``), posts
events open loop at ``--rate`` per second for ``--minutes``, and samples the resident memory
(RSS) of the API, of each worker process and of Redis every ``--every`` seconds. Memory is flat
when what a process holds at the end is within noise of what it held after the first minute
(warm-up: imports, caches, pools); the table says by how much each one grew.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from bench import pipeline
from bench.harness import BenchError
from bench.openloop import Load, open_loop
from bench.report import finish, machine, percentile
from bench.system import running_system

#: Growth under this many MiB, or this share, counts as flat (allocator noise, pools filling).
FLAT_MIB = 8.0
FLAT_SHARE = 0.05


def rss(pids: dict[str, int]) -> dict[str, float]:
    """RSS in MiB of each role's process and of each of its children (``worker/1``, ``worker/2``)."""
    found: dict[str, float] = {}
    for role, pid in pids.items():
        try:
            root = psutil.Process(pid)
            found[role] = root.memory_info().rss / 2**20
            for n, kid in enumerate(sorted(root.children(recursive=True), key=lambda p: p.pid), 1):
                found[f"{role}/{n}"] = kid.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return found


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10, help="length of the run")
    p.add_argument("--rate", type=float, default=50, help="events per second, open loop")
    p.add_argument("--every", type=float, default=15, help="seconds between samples")
    p.add_argument("--database-url", help="PostgreSQL admin URL (a throwaway database is made next to it)")
    p.add_argument("--redis-url", help="an existing Redis on 127.0.0.1 (a fresh namespace is used)")
    p.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    p.add_argument("--no-record", action="store_true", help="print the table without appending it")
    args = p.parse_args(argv)
    if not 0.5 <= args.minutes <= 240 or not 1 <= args.rate <= 1000:
        p.error("--minutes 0.5..240 and --rate 1..1000")
    seconds = args.minutes * 60
    bodies = pipeline.make_bodies(int(args.rate * seconds) + 1, run=f"mem-{secrets.token_hex(4)}")
    samples: list[tuple[float, dict[str, float]]] = []
    load = Load("events", args.rate)
    try:
        with running_system(database_url=args.database_url, redis_url=args.redis_url, processes=2,
                            threads=4) as system:  # fmt: skip
            print(f"memory: {args.rate:.0f} events/s for {args.minutes:g} min…", flush=True)
            sender = threading.Thread(
                target=lambda: asyncio.run(
                    open_loop(system.base_url, system.token, load, seconds, lambda i: bodies[i])
                ),
                daemon=True,
            )
            started = time.monotonic()
            sender.start()
            while sender.is_alive():
                samples.append((time.monotonic() - started, rss(system.pids())))
                sender.join(args.every)
            samples.append((time.monotonic() - started, rss(system.pids())))
            pipeline.wait_routed(system.engine, len(load.event_ids), timeout=600)
            lost, doubled = pipeline.exactly_once(system.engine, load.event_ids)
            backend = system.backend
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    text = markdown(args, backend, samples, load, lost, doubled)
    return finish(text, args.results, record=not args.no_record, ok=not (lost or doubled))


def markdown(
    args: argparse.Namespace,
    backend: str,
    samples: list[tuple[float, dict[str, float]]],
    load: Load,
    lost: int,
    doubled: int,
) -> str:
    warm = next((s for t, s in samples if t >= 60), samples[len(samples) // 2][1])
    end = samples[-1][1]
    rows = []
    flat = True
    for role in sorted(end):
        series = [s[role] for _, s in samples if role in s]
        grew = end[role] - warm.get(role, series[0])
        ok = grew < FLAT_MIB or grew < FLAT_SHARE * warm.get(role, series[0])
        flat &= ok
        rows.append(
            f"| {role} | {series[0]:.1f} | {warm.get(role, series[0]):.1f} | {end[role]:.1f} "
            f"| {max(series):.1f} | {grew:+.1f} | {'flat' if ok else '**grows**'} |"
        )
    lat = load.latencies or [float("nan")]
    return "\n".join([
        f"### {time.strftime('%Y-%m-%d %H:%M %Z')} — memory, {backend}, {args.rate:.0f} events/s "
        f"for {args.minutes:g} min",
        "",
        f"Machine: {machine()}. One API process, workers `-p 2 -t 4`; RSS sampled every {args.every:g} s "
        f"({len(samples)} samples). `worker` is dramatiq's parent process, `worker/1`, `worker/2` its "
        "workers (the rest of the children are its fork helpers).",
        "",
        "| process | RSS at start MiB | after 1 min | at the end | max | end − 1 min | |",
        "|---|--:|--:|--:|--:|--:|---|",
        *rows,
        "",
        f"{'Flat' if flat else 'Not flat'}: growth after the first minute under {FLAT_MIB:g} MiB or "
        f"{FLAT_SHARE:.0%} counts as noise. {len(load.event_ids):,} events accepted "
        f"({len(load.errors)} errors), intake p50 {percentile(lat, 50) * 1000:.0f} ms / p99 "
        f"{percentile(lat, 99) * 1000:.0f} ms; lost {lost}, doubled {doubled}.",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
