"""The benchmark suite in one command: ``python -m bench [--postgres URL] [--quick]``.

In turn, each starting and stopping its own processes, on 127.0.0.1 only:

1. ``bench.costs``: what one event costs in intake and routing, per step (SQLite, PostgreSQL);
2. ``bench.intake``: HTTP intake → dispatched task against bare dramatiq measured in the same
   run, one event per request and batches of 100, on SQLite and on PostgreSQL;
3. ``bench.openloop``: intake latency at a fixed 200 requests/s (open loop);
4. ``bench.bulk``: 100,000 historical records imported with ``dispatcher publish``;
5. ``bench.memory``: the memory of every process over 10 minutes of steady load.

Steps 3–5 run on PostgreSQL when it is given (``--postgres`` or ``DISPATCH_BENCH_POSTGRES_URL``),
else on SQLite. Every table is appended to ``bench/RESULTS.md`` unless ``--no-record``.
``--quick`` runs everything small (a few minutes) to see that the suite works.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from bench import bulk, costs, intake, memory, openloop

STEPS = ("costs", "intake", "openloop", "bulk", "memory")


def plan(args: argparse.Namespace) -> list[tuple[str, str, Callable[[list[str]], int], list[str]]]:
    q = args.quick
    record = ["--no-record"] if args.no_record else []
    backends: list[list[str]] = [[]] + ([["--database-url", args.postgres]] if args.postgres else [])
    last = backends[-1]
    n = ["--events", "300" if q else "2000"]
    steps: list[tuple[str, str, Callable[[list[str]], int], list[str]]] = []
    for db in backends:
        name = "postgresql" if db else "sqlite"
        steps.append(
            ("costs", f"cost per event, {name}", costs.main, [*db, "--events", "100" if q else "500"])
        )
    for db in backends:
        name = "postgresql" if db else "sqlite"
        steps.append(("intake", f"intake single, {name}", intake.main, [*db, *n, "--mode", "single"]))
        steps.append(("intake", f"intake batch, {name}", intake.main, [*db, *n, "--mode", "batch"]))
    seconds = "5" if q else "30"
    for nice in ("0", "19"):  # workers at the API's priority, and yielding to it (`worker --nice 19`)
        steps.append(
            ("openloop", f"open loop, workers at nice {nice}", openloop.main,
             [*last, "--rate", "200", "--seconds", seconds, "--worker-nice", nice])
        )  # fmt: skip
    steps.append(("bulk", "bulk import", bulk.main, [*last, "--records", "2000" if q else "100000"]))
    minutes = ["--minutes", "1", "--every", "5"] if q else ["--minutes", "10", "--every", "15"]
    steps.append(("memory", "memory", memory.main, [*last, *minutes]))
    return [(step, title, fn, [*argv, *record]) for step, title, fn, argv in steps if step in args.only]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--postgres",
        default=os.environ.get("DISPATCH_BENCH_POSTGRES_URL"),
        help="PostgreSQL admin URL on 127.0.0.1 (throwaway databases are made next to it)",
    )
    p.add_argument("--quick", action="store_true", help="small sizes: a few minutes in all")
    p.add_argument("--only", default=",".join(STEPS), help=f"comma-separated steps of {', '.join(STEPS)}")
    p.add_argument("--no-record", action="store_true", help="print the tables without appending them")
    args = p.parse_args(argv)
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    if not args.only <= set(STEPS):
        p.error(f"--only takes {', '.join(STEPS)}")
    if not args.postgres:
        print("no PostgreSQL given (--postgres or DISPATCH_BENCH_POSTGRES_URL): SQLite only", flush=True)
    failed = []
    started = time.monotonic()
    for _, title, fn, step_argv in plan(args):
        print(
            f"\n== {title}: python -m bench.{fn.__module__.split('.')[-1]} {' '.join(step_argv)}", flush=True
        )
        t = time.monotonic()
        code = fn(step_argv)
        print(
            f"== {title}: {'ok' if code == 0 else f'FAILED ({code})'} in {time.monotonic() - t:,.0f} s",
            flush=True,
        )
        if code:
            failed.append(title)
    print(f"\nsuite done in {(time.monotonic() - started) / 60:.1f} min; "
          + (f"failed: {', '.join(failed)}" if failed else "every step ran"))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
