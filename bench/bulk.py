"""Bulk import: a year's ledger of historical records through ``dispatcher publish``.

``python -m bench.bulk --records 100000`` writes N realistic events received over the past
year (``received_at`` from 365 days ago to a day ago, as a ledger export has them) to a JSON Lines
file, starts the system (``bench.system``) and times the documented import command,
``dispatcher publish FILE --url … --token …`` (batches of up to 500 per request), then the
workers until every record is a task. It counts records lost and doubled.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select

from bench import pipeline
from bench.harness import ROOT, BenchError, cpu_seconds, dispatcher_cmd
from bench.report import finish, machine
from bench.system import running_system

#: The goal of issue 13: records accepted per second by the import.
GOAL = 2000


def historical(count: int, run: str) -> list[str]:
    """N events as JSON lines, received over the past year (oldest first, as an export is)."""
    from dispatcher.wallclock import utcnow

    rng = random.Random(13)
    now = utcnow()
    ages = sorted((rng.uniform(1, 365) for _ in range(count)), reverse=True)
    lines = []
    for body, age in zip(pipeline.make_bodies(count, run=run), ages, strict=True):
        body["received_at"] = (now - timedelta(days=age)).isoformat()
        lines.append(json.dumps(body, ensure_ascii=False))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__.split("\n\n")[0])
    p.add_argument("--records", "-n", type=int, default=100_000, help="records imported")
    p.add_argument("--database-url", help="PostgreSQL admin URL (a throwaway database is made next to it)")
    p.add_argument("--redis-url", help="an existing Redis on 127.0.0.1 (a fresh namespace is used)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed for the import and routing")
    p.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    p.add_argument("--no-record", action="store_true", help="print the table without appending it")
    args = p.parse_args(argv)
    if not 100 <= args.records <= 1_000_000:
        p.error("--records must be within 100..1000000")
    try:
        with running_system(database_url=args.database_url, redis_url=args.redis_url, processes=2,
                            threads=4) as system:  # fmt: skip
            file = system.work / "ledger.jsonl"
            file.write_text("\n".join(historical(args.records, f"bulk-{secrets.token_hex(4)}")) + "\n")
            print(f"bulk: importing {args.records:,} records with `dispatcher publish`…", flush=True)
            before = cpu_seconds(system.pids())
            started = time.monotonic()
            done = subprocess.run(
                dispatcher_cmd("publish", str(file), "--url", system.base_url, "--token", system.token),
                env=system.env, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout,
            )  # fmt: skip
            imported = time.monotonic() - started
            if done.returncode != 0:
                raise BenchError(f"dispatcher publish failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
            summary = done.stdout.strip().splitlines()[-1]
            pipeline.wait_routed(system.engine, args.records, timeout=args.timeout)
            drained = time.monotonic() - started
            after = cpu_seconds(system.pids())
            from dispatcher.models import Event

            with Session(system.engine) as s:
                ids = list(s.exec(select(Event.id)).all())
            lost, doubled = pipeline.exactly_once(system.engine, ids)
            backend = system.backend
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    rate = args.records / imported
    cpu = {role: (after[role] - before.get(role, 0.0)) / args.records * 1000 for role in after}
    text = "\n".join([
        f"### {time.strftime('%Y-%m-%d %H:%M %Z')} — bulk import, {backend}, {args.records:,} records",
        "",
        f"Machine: {machine()}. `dispatcher publish` (batches of ≤ 500), one API, workers `-p 2 -t 4`.",
        "",
        "| measure | value |",
        "|---|--:|",
        f"| import: `dispatcher publish` start → exit | {imported:,.1f} s |",
        f"| **records accepted per second** | **{rate:,.0f}** (goal {GOAL:,}: {rate / GOAL:.2f}×) |",
        f"| import → every record a task | {drained:,.1f} s ({args.records / drained:,.0f} records/s) |",
        f"| lost / doubled | {lost} / {doubled} |",
        "",
        f"`publish` said: {summary}. CPU ms per record: "
        + ", ".join(f"{role} {ms:.2f}" for role, ms in cpu.items()) + ".",
        "",
    ])  # fmt: skip
    return finish(text, args.results, record=not args.no_record, ok=not (lost or doubled))


if __name__ == "__main__":
    sys.exit(main())
