"""Intake benchmark: HTTP intake → dispatched task, against bare dramatiq on the same broker.

``python -m bench.intake --events 2000`` starts, on 127.0.0.1 only, a private redis-server (or
uses ``--redis-url`` under a fresh namespace), a throwaway database (SQLite, or a fresh
PostgreSQL database next to ``--database-url``), then in turn:

1. baseline: ``dramatiq bench.noop_worker -p P -t T --queues bench``; N timing no-ops are
   enqueued from C threads of this process;
2. pipeline: ``dispatcher api`` and ``dispatcher worker -p P -t T``; N events are posted by C
   HTTP clients; each event ends when its task is created.

It prints a Markdown table, appends it to ``bench/RESULTS.md`` and removes everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from bench import baseline, pipeline
from bench.harness import (
    DRAMATIQ_READY,
    BenchError,
    bench_org,
    child,
    child_env,
    cpu_seconds,
    dispatcher_cmd,
    free_port,
    profiled,
    redis_broker,
    redis_pid,
    throwaway_database,
    wait_for,
    wait_for_log,
    webhook_sink,
)
from bench.report import Measured, Run, append, markdown
from bench.system import api_up, prepare
from dispatcher.settings import Settings
from workers.broker import build_broker
from workers.names import BENCH_QUEUE

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", "-n", type=int, default=2000, help="events (and no-op messages) per run")
    p.add_argument("--clients", "-c", type=int, default=8, help="concurrent HTTP clients / enqueue threads")
    p.add_argument("--processes", "-p", type=int, default=2, help="worker processes (both workers)")
    p.add_argument("--threads", "-t", type=int, default=4, help="threads per worker process")
    p.add_argument("--mode", choices=("single", "batch"), default="single", help="/events or /events:batch")
    p.add_argument("--batch-size", type=int, default=100, help="events per request in batch mode")
    p.add_argument("--database-url", help="PostgreSQL admin URL: a throwaway database is made next to it")
    p.add_argument("--redis-url", help="an existing Redis on 127.0.0.1 (a fresh namespace is used)")
    p.add_argument("--timeout", type=float, default=600, help="seconds allowed for each phase")
    p.add_argument("--results", type=Path, default=RESULTS, help="Markdown file the table is appended to")
    p.add_argument("--logs", type=Path, help="copy the children's logs to this directory at the end")
    p.add_argument("--no-record", action="store_true", help="print the table without appending it")
    p.add_argument("--profile", type=Path, help="write py-spy flame graphs of the API and the worker here")
    args = p.parse_args(argv)
    if not 1 <= args.events <= 100_000:
        p.error("--events must be within 1..100000")
    if not 1 <= args.clients <= 64 or args.processes < 1 or args.threads < 1:
        p.error("--clients 1..64, --processes and --threads at least 1")
    if not 1 <= args.batch_size <= 500:
        p.error("--batch-size must be within 1..500")
    return args


def run_baseline(args: argparse.Namespace, settings: Settings, env: dict[str, str], work: Path) -> Measured:
    log = work / "noop-worker.log"
    argv = [sys.executable, "-m", "dramatiq", "bench.noop_worker", "--processes", str(args.processes),
            "--threads", str(args.threads), "--queues", BENCH_QUEUE]  # fmt: skip
    broker = build_broker(settings)
    key = baseline.done_key(settings.broker_namespace)
    try:
        with child(argv, env, log) as proc:
            wait_for_log(log, DRAMATIQ_READY, args.processes, proc, timeout=60)
            print(f"baseline: enqueueing {args.events} no-op messages…", flush=True)
            pids = {"worker": proc.pid, **_redis(settings.resolved_redis_url)}
            before = cpu_seconds(pids)
            baseline.enqueue_all(broker, args.events, args.clients)
            pairs = baseline.collect(broker.client, key, args.events, timeout=args.timeout)
            cpu = _used(before, cpu_seconds(pids))
    finally:
        broker.client.delete(key)
        broker.close()
    return Measured(
        count=len(pairs),
        started=min(s for s, _ in pairs),
        finished=max(d for _, d in pairs),
        latencies=[d - s for s, d in pairs],
        cpu=cpu,
    )


def _redis(url: str) -> dict[str, int]:
    pid = redis_pid(url)
    return {"redis": pid} if pid is not None else {}


def _used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {role: after[role] - before.get(role, 0.0) for role in after}


def run_pipeline(
    args: argparse.Namespace, env: dict[str, str], database_url: str, token: str, work: Path
) -> tuple[Measured, Measured, Measured, int, list[str]]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    bodies = pipeline.make_bodies(args.events, run=f"bench-{secrets.token_hex(4)}")
    api_argv = dispatcher_cmd("api", "--host", "127.0.0.1", "--port", str(port))
    worker_argv = dispatcher_cmd("worker", "-p", str(args.processes), "-t", str(args.threads))
    engine = pipeline.reader(database_url)
    try:
        with (
            child(api_argv, env, work / "api.log") as api,
            child(worker_argv, env, work / "worker.log", stop_timeout=20) as worker,
        ):
            wait_for(lambda: api_up(base_url, api), timeout=60, what="the API")
            wait_for_log(work / "worker.log", DRAMATIQ_READY, args.processes, worker, timeout=60)
            print(f"pipeline: posting {args.events} events ({args.mode})…", flush=True)
            pids = {"api": api.pid, "worker": worker.pid, **_redis(env["DISPATCH_REDIS_URL"])}
            before = cpu_seconds(pids)
            with contextlib.ExitStack() as profiling:
                if args.profile is not None:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    tag = f"{backend_tag(database_url)}-{args.mode}"
                    profiling.enter_context(profiled(api.pid, args.profile / f"api-{tag}.svg"))
                    profiling.enter_context(profiled(worker.pid, args.profile / f"worker-{tag}.svg"))
                sent, errors = pipeline.publish(
                    base_url, token, bodies, clients=args.clients, mode=args.mode, batch_size=args.batch_size
                )
                if not sent:
                    raise BenchError(f"no event was accepted: {errors[:3]}")
                pipeline.wait_routed(engine, len(sent), timeout=args.timeout)
            cpu = _used(before, cpu_seconds(pids))
        routed = pipeline.read_routed(engine, {s.event_id for s in sent})
    finally:
        engine.dispose()
    by_id = {s.event_id: s for s in sent}
    first = min(s.sent for s in sent)
    end_to_end = Measured(
        count=len(routed),
        started=first,
        finished=max(r.routed_at for r in routed),
        latencies=[r.routed_at - by_id[r.event_id].sent for r in routed],
        cpu=cpu,
    )
    http = Measured(
        count=len(sent),
        started=first,
        finished=max(s.answered for s in sent),
        latencies=[s.answered - s.sent for s in sent],
    )
    routing = Measured(
        count=len(routed),
        started=min(r.accepted_at for r in routed),
        finished=end_to_end.finished,
        latencies=[r.routed_at - r.accepted_at for r in routed],
    )
    return end_to_end, http, routing, sum(not r.dispatched for r in routed), errors


def backend_tag(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgres") else "sqlite"


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every ``finally``: children are stopped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="zd-bench-") as tmp:
        work = Path(tmp)
        try:
            with (
                redis_broker(args.redis_url, work) as broker,
                throwaway_database(args.database_url, work) as (database_url, backend),
                webhook_sink() as sink,
            ):
                org, secrets_env = bench_org(work, sink)
                settings = Settings(
                    data_dir=work, database_url=database_url, redis_url=broker.url,
                    broker_namespace=broker.namespace, secret_key=secrets.token_urlsafe(48),
                    worker_metrics_port=0,
                )  # fmt: skip
                env = child_env(
                    DISPATCH_DATA_DIR=str(work), DISPATCH_DATABASE_URL=database_url,
                    DISPATCH_REDIS_URL=broker.url, DISPATCH_BROKER_NAMESPACE=broker.namespace,
                    DISPATCH_SECRET_KEY=settings.resolved_secret_key, DISPATCH_WORKER_METRICS_PORT="0",
                    DISPATCH_LOG_LEVEL="WARNING", **secrets_env,
                )  # fmt: skip
                print(f"backend {backend}, broker {broker.url} (namespace {broker.namespace})", flush=True)
                token = prepare(env, org)
                base = run_baseline(args, settings, env, work)
                end_to_end, http, routing, triage, errors = run_pipeline(args, env, database_url, token, work)
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in work.glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
    result = Run(
        events=args.events, clients=args.clients, processes=args.processes, threads=args.threads,
        mode=args.mode, batch_size=args.batch_size, backend=backend, baseline=base,
        pipeline=end_to_end, http=http, routing=routing, triage=triage, errors=errors,
    )  # fmt: skip
    text = markdown(result)
    print("\n" + text)
    if errors:
        print(f"first errors: {errors[:3]}")
    if not args.no_record:
        append(args.results, text)
        print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
