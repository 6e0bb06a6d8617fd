"""Deadline-sweep benchmark: ``claim_due`` over N open tasks on PostgreSQL.

``python -m bench.sweep --database-url postgresql://postgres@127.0.0.1:5432/test --tasks 1000000``
creates a throwaway database next to the admin URL (127.0.0.1 only), migrates it, bulk-loads N
open tasks in SQL (``INSERT … SELECT generate_series``), runs ``VACUUM (ANALYZE)``, then measures:

1. the plan: ``EXPLAIN (ANALYZE, BUFFERS)`` of the statement ``claim_due`` issues, captured from
   the driver while the real function runs (and, for comparison, its generic plan);
2. wall times: ``SELECT 1`` (the baseline), the sweep's bare ``SELECT … FOR UPDATE SKIP LOCKED``,
   the whole claim as the scheduler runs it (unit of work: pre-ping, the ORM query, one UPDATE
   per claimed task, commit), and a claim when nothing is due;
3. memory: this process's RSS over many sweeps.

Claimed tasks are re-armed (made due again) between runs, outside the timed part, so every run
finds ``--limit`` due tasks. It prints a Markdown table, appends it to ``bench/RESULTS.md`` and
drops the database at the end (also on Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import gc
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.harness import BenchError, throwaway_database
from bench.report import append, machine, percentile
from dispatcher.db import dispose_engines, get_engine, normalize_url, unit_of_work
from dispatcher.migrate import upgrade
from dispatcher.supervision.orders import claim_due
from dispatcher.supervision.service import HOLD

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
INDEX = "ix_tasks_next_check_at"
#: The issue's target for finding the due tasks.
TARGET_MS = 100.0
#: Statuses without a running clock: ``next_check_at`` is NULL (see ``supervision.PHASES``).
UNCLOCKED = ("suspended", "awaiting_feedback", "triage")

# One chunk of tasks, generated in the database. ``setseed`` makes the load repeatable. The
# inner query draws the random numbers once per row (OFFSET 0 keeps it from being flattened).
LOAD_CHUNK = sa.text(
    """
    INSERT INTO tasks (kind, ledger_no, status, zone_code, township_code, handler_unit, verifier_unit,
        rule, reason, recused_logins, received_at, created_at, dispatched_at, updated_at, version,
        assisting_units, assisting_logins, accept_due_at, resolve_due_at, deadline_state,
        escalation_level, extensions_used, next_check_at)
    SELECT
        CASE WHEN k < 0.55 THEN 'complaint' WHEN k < 0.85 THEN 'enterprise_request' ELSE 'clue' END,
        'B' || lpad(g::text, 10, '0'), status, 'zone-' || g % 12, 'town-' || g % 60,
        'unit-' || g % 300, 'verifier-' || g % 12, 'bench', 'bench load', '[]', received, received,
        received, received, 1, '[]', '[]', received + interval '3 days', received + interval '20 days',
        'on_time', 0, 0,
        CASE WHEN status IN ('suspended', 'awaiting_feedback', 'triage') THEN NULL
             WHEN d < :due THEN CAST(:now AS timestamp) - d / :due * interval '3 days'
             ELSE CAST(:now AS timestamp) + (d - :due) / (1 - :due) * interval '30 days' END
    FROM (
        SELECT g, random() AS k, random() AS d,
               CAST(:now AS timestamp) - random() * interval '60 days' AS received,
               CASE WHEN s < 0.15 THEN 'dispatched' WHEN s < 0.68 THEN 'accepted'
                    WHEN s < 0.80 THEN 'submitted' WHEN s < 0.84 THEN 'rejected'
                    WHEN s < 0.87 THEN 'reopened' WHEN s < 0.91 THEN 'suspended'
                    WHEN s < 0.99 THEN 'awaiting_feedback' ELSE 'triage' END AS status
        FROM (SELECT g, random() AS s FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g) AS a
        OFFSET 0
    ) AS b
    """
)
#: Make claimed tasks due again (0–3 days late), outside the timed part, so every run finds work.
REARM = sa.text(
    "UPDATE tasks SET next_check_at = CAST(:now AS timestamp) - random() * interval '3 days' "
    "WHERE id = ANY(:ids)"
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", required=True, help="PostgreSQL admin URL on 127.0.0.1")
    p.add_argument("--tasks", "-n", type=int, default=1_000_000, help="open tasks loaded")
    p.add_argument("--due", type=float, default=0.005, help="share of clocked tasks due now (0.001..0.05)")
    p.add_argument("--limit", type=int, default=1000, help="tasks per claim (claim_due's limit)")
    p.add_argument("--runs", type=int, default=50, help="timed runs of each measure")
    p.add_argument("--sweeps", type=int, default=300, help="sweeps for the memory measure")
    p.add_argument("--chunk", type=int, default=100_000, help="tasks per INSERT while loading")
    p.add_argument("--results", type=Path, default=RESULTS, help="Markdown file the table is appended to")
    p.add_argument("--no-record", action="store_true", help="print the table without appending it")
    args = p.parse_args(argv)
    if not 1_000 <= args.tasks <= 5_000_000:
        p.error("--tasks must be within 1000..5000000")
    if not 0.001 <= args.due <= 0.05:
        p.error("--due must be within 0.001..0.05")
    if not 1 <= args.limit <= 10_000 or not 5 <= args.runs <= 1000 or not 10 <= args.sweeps <= 5000:
        p.error("--limit 1..10000, --runs 5..1000, --sweeps 10..5000")
    if not 1_000 <= args.chunk <= 1_000_000:
        p.error("--chunk must be within 1000..1000000")
    return args


# -- figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    label: str
    sample: tuple[Sequence[float], int | None]  #: (seconds per run, full GCs during the runs)

    @property
    def seconds(self) -> Sequence[float]:
        return self.sample[0]

    @property
    def gcs(self) -> int | None:
        return self.sample[1]

    @property
    def p50(self) -> float:
        return percentile(self.seconds, 50)

    @property
    def p99(self) -> float:
        return percentile(self.seconds, 99)


@dataclass
class Result:
    backend: str
    tasks: int
    limit: int
    runs: int
    sweeps: int
    load_seconds: float = 0.0
    analyze_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, str] = field(default_factory=dict)
    statement: str = ""
    plan: list[str] = field(default_factory=list)
    generic_plan: list[str] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)  #: statements one claim sends, by verb
    rss_kib: list[tuple[int, int]] = field(default_factory=list)  #: (sweeps done, VmRSS)
    maxrss_kib: int = 0
    when: datetime = field(default_factory=lambda: datetime.now().astimezone())

    @property
    def index_used(self) -> bool:
        return any(
            f"Index Scan using {INDEX}" in line or f"Index Scan on {INDEX}" in line for line in self.plan
        )

    @property
    def execution_ms(self) -> float | None:
        for line in self.plan:
            if line.strip().startswith("Execution Time:"):
                return float(line.split(":")[1].split()[0])
        return None


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.2f}" if ms < 1 else f"{ms:.1f}"


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError("no VmRSS in /proc/self/status")


# -- setup ---------------------------------------------------------------------------------


def load(url: str, args: argparse.Namespace, now: datetime, result: Result) -> None:
    """N tasks in chunks, each its own transaction; then VACUUM (ANALYZE) as autovacuum would."""
    engine = sa.create_engine(normalize_url(url))
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET synchronous_commit = off")  # the throwaway load only
            conn.exec_driver_sql("SELECT setseed(0.42)")
            conn.commit()
            for lo in range(1, args.tasks + 1, args.chunk):
                hi = min(lo + args.chunk - 1, args.tasks)
                params = {"lo": lo, "hi": hi, "due": args.due, "now": now.replace(tzinfo=None)}
                conn.execute(LOAD_CHUNK, params)
                conn.commit()
                rate = hi / (time.perf_counter() - started)
                print(f"  loaded {hi:,} / {args.tasks:,} ({rate:,.0f} tasks/s)", flush=True)
        result.load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) tasks")
        result.analyze_seconds = time.perf_counter() - started
        with engine.connect() as conn:
            naive = now.replace(tzinfo=None)
            row = conn.execute(
                sa.text(
                    "SELECT count(*), count(*) FILTER (WHERE next_check_at <= :now), "
                    "count(*) FILTER (WHERE next_check_at > :now), "
                    "count(*) FILTER (WHERE next_check_at IS NULL) FROM tasks"
                ),
                {"now": naive},
            ).one()
            result.counts = dict(zip(("total", "due", "future", "null"), row, strict=True))
            sizes = conn.execute(
                sa.text(
                    "SELECT pg_size_pretty(pg_table_size('tasks')), "
                    "pg_size_pretty(pg_indexes_size('tasks')), "
                    f"pg_size_pretty(pg_relation_size('{INDEX}'))"
                )
            ).one()
            result.sizes = dict(zip(("table", "all indexes", INDEX), sizes, strict=True))
    finally:
        engine.dispose()


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any, bool]]]:
    """Every statement (its parameters, whether executemany) sent to the driver while the block runs."""
    seen: list[tuple[str, Any, bool]] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters, many))

    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)


def sweep_statement(engine: Engine, now: datetime, limit: int) -> tuple[str, Any]:
    """The SELECT that ``claim_due`` sends, with its parameters, taken from a real (rolled back) call."""
    with captured(engine) as seen, unit_of_work(engine) as session:
        claim_due(session, now=now, hold=HOLD, limit=limit)
        session.rollback()  # the unit of work then commits nothing
    for statement, params, _ in seen:
        if "FOR UPDATE" in statement and "FROM tasks" in statement:
            return statement, params
    raise BenchError(f"claim_due sent no SELECT … FOR UPDATE on tasks: {[s for s, _, _ in seen]}")


def explain(engine: Engine, statement: str, params: Any) -> tuple[str, list[str], list[str]]:
    """The literal SQL, its EXPLAIN (ANALYZE, BUFFERS) (rolled back: the rows stay due) and the
    generic plan a prepared statement could fall back to (no parameter values known)."""
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        literal = psycopg.ClientCursor(raw).mogrify(statement, params)
        plan = [r[0] for r in conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {literal}")]
        conn.rollback()
        generic_sql = statement
        for i, name in enumerate(params, start=1):
            generic_sql = generic_sql.replace(f"%({name})s", f"${i}")
        types = ", ".join("timestamp" if isinstance(v, datetime) else "integer" for v in params.values())
        conn.exec_driver_sql(f"PREPARE zd_bench_sweep ({types}) AS {generic_sql}")
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        args = ", ".join(f"'{v.isoformat()}'" if isinstance(v, datetime) else str(v) for v in params.values())
        generic = [r[0] for r in conn.exec_driver_sql(f"EXPLAIN EXECUTE zd_bench_sweep({args})")]
        conn.rollback()
        conn.exec_driver_sql("DEALLOCATE zd_bench_sweep")
        conn.exec_driver_sql("RESET plan_cache_mode")
        conn.commit()
    return literal, plan, generic


# -- measures ------------------------------------------------------------------------------


#: Durations of Python's full (generation 2) garbage collections in this process, in seconds.
FULL_GCS: list[float] = []
_gc_started: list[float] = [0.0]


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if info["generation"] == 2:
        if phase == "start":
            _gc_started[0] = time.perf_counter()
        else:
            FULL_GCS.append(time.perf_counter() - _gc_started[0])


def timed(
    runs: int, work: Callable[[], Any], after: Callable[[Any], None] | None = None
) -> tuple[list[float], int]:
    """Wall time of each call of ``work`` (``after`` runs untimed), and the full GCs inside them."""
    times, gcs = [], 0
    for _ in range(runs):
        before = len(FULL_GCS)
        started = time.perf_counter()
        out = work()
        times.append(time.perf_counter() - started)
        gcs += len(FULL_GCS) - before
        if after is not None:
            after(out)
    return times, gcs


def measure(
    engine: Engine, args: argparse.Namespace, now: datetime, statement: str, params: Any, expected: int
) -> tuple[list[Timing], dict[str, int]]:
    naive = now.replace(tzinfo=None)

    def rearm(ids: list[int]) -> None:
        if len(ids) != expected:
            raise BenchError(f"a claim found {len(ids)} due tasks, not {expected}")
        with engine.begin() as conn:
            conn.execute(REARM, {"now": naive, "ids": ids})

    def claim(at: datetime) -> Callable[[], list[int]]:
        def run() -> list[int]:
            with unit_of_work(engine) as session:
                return claim_due(session, now=at, hold=HOLD, limit=args.limit)

        return run

    warm = max(5, args.runs // 10)
    with engine.connect() as conn:
        one = lambda: conn.exec_driver_sql("SELECT 1").scalar_one()  # noqa: E731
        timed(warm, one)
        select_one = timed(args.runs * 4, one)

        def bare() -> int:
            rows = conn.exec_driver_sql(statement, params).fetchall()
            conn.rollback()  # releases the row locks; nothing was changed
            if len(rows) != expected:
                raise BenchError(f"the bare SELECT found {len(rows)} due tasks, not {expected}")
            return len(rows)

        timed(warm, bare)
        bare_select = timed(args.runs, bare)
    timed(warm, claim(now), rearm)
    with captured(engine) as seen:  # what one claim sends to the driver
        rearm(claim(now)())
    sent = Counter(f"{s.split()[0]}{' (executemany)' if many else ''}" for s, _, many in seen[:-1])
    claims = timed(args.runs, claim(now), rearm)
    # The common case between bursts: a sweep at a moment when nothing is due yet.
    early = now - timedelta(days=10)
    empty = timed(args.runs, claim(early), lambda ids: None if not ids else rearm(ids))
    timings = [
        Timing("baseline: `SELECT 1` round trip (one connection)", select_one),
        Timing(f"the sweep's statement alone, {expected} rows (driver, rolled back)", bare_select),
        Timing(f"claim_due: unit of work, {expected} tasks claimed (one UPDATE … RETURNING, commit)", claims),
        Timing("claim_due when nothing is due (unit of work, commit)", empty),
    ]
    return timings, dict(sent)


def memory(engine: Engine, args: argparse.Namespace, now: datetime) -> tuple[list[tuple[int, int]], int]:
    naive = now.replace(tzinfo=None)
    gc.collect()
    samples = [(0, rss_kib())]
    step = max(1, args.sweeps // 10)
    for done in range(1, args.sweeps + 1):
        with unit_of_work(engine) as session:
            ids = claim_due(session, now=now, hold=HOLD, limit=args.limit)
        with engine.begin() as conn:
            conn.execute(REARM, {"now": naive, "ids": ids})
        if done % step == 0:
            samples.append((done, rss_kib()))
    return samples, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- report --------------------------------------------------------------------------------


def markdown(r: Result) -> str:
    base = r.timings[0]
    c = r.counts
    lines = [
        f"### {r.when:%Y-%m-%d %H:%M %Z} — deadline sweep, {r.backend}, N={r.tasks:,}",
        "",
        f"Machine: {machine()}, {r.backend}. `claim_due(limit={r.limit})`, {r.runs} timed runs per "
        f"measure (after a warm-up), claimed tasks re-armed between runs.",
        "",
        f"Loaded {c['total']:,} open tasks in {r.load_seconds:.0f} s (`INSERT … SELECT generate_series`, "
        f"all of the table's indexes in place), `VACUUM (ANALYZE)` {r.analyze_seconds:.1f} s: "
        f"{c['due']:,} due now ({c['due'] / c['total']:.2%}), {c['future']:,} due over the next 30 days, "
        f"{c['null']:,} with no clock (NULL: suspended, awaiting feedback, triage). "
        f"Table {r.sizes['table']}, indexes {r.sizes['all indexes']}, "
        f"of which `{INDEX}` {r.sizes[INDEX]}.",
        "",
        "| measure | p50 ms | p99 ms | min ms | max ms | p50 ÷ `SELECT 1` | full GCs |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for t in r.timings:
        lines.append(
            f"| {t.label} | {_ms(t.p50)} | {_ms(t.p99)} | {_ms(min(t.seconds))} | {_ms(max(t.seconds))} "
            f"| {t.p50 / base.p50:,.1f}× | {'' if t.gcs is None else t.gcs} |"
        )
    if FULL_GCS:
        gc_note = (
            f"full GCs: Python generation-2 collections inside the timed calls "
            f"({len(FULL_GCS)} in the whole run, median {percentile(FULL_GCS, 50) * 1000:.0f} ms each)."
        )
    else:
        gc_note = "full GCs: Python generation-2 collections inside the timed calls (none in the whole run)."
    execution = r.execution_ms
    if execution is not None:
        lines.append(f"| server side: EXPLAIN ANALYZE execution time (one run) | {execution:.2f} | | | | | |")
    lines += ["", gc_note]
    (_, first), (_, last) = r.rss_kib[0], r.rss_kib[-1]
    mid = r.rss_kib[len(r.rss_kib) // 2][1]
    lines += [
        "",
        f"Memory (VmRSS of the benchmark process, {r.sweeps} claims of {r.limit} with re-arm): "
        f"{first / 1024:.1f} MiB before, {mid / 1024:.1f} MiB halfway, {last / 1024:.1f} MiB after "
        f"(Δ {(last - first) / 1024:+.1f} MiB, {(last - mid) / 1024:+.1f} MiB over the second half); "
        f"peak (ru_maxrss) {r.maxrss_kib / 1024:.1f} MiB.",
        "",
    ]
    sweep = r.timings[1]
    verdict = (
        "well under"
        if sweep.p99 * 1000 < TARGET_MS / 2
        else "under"
        if sweep.p99 * 1000 < TARGET_MS
        else "over"
    )
    sent = ", ".join(f"{n} × {verb}" for verb, n in r.sent.items())
    lines += [
        f"One claim of {r.limit} sends: {sent} (plus BEGIN/COMMIT and the pool's pre-ping).",
        "",
        f"Index scan on `{INDEX}`: **{'yes' if r.index_used else 'NO'}**. Finding the due tasks "
        f"(the sweep's SELECT) takes p50 {_ms(sweep.p50)} / p99 {_ms(sweep.p99)} ms: "
        f"**{verdict} the {TARGET_MS:.0f} ms target**.",
        "",
        "The statement, as `claim_due` sent it (captured from the driver, parameters inlined):",
        "",
        "```sql",
        r.statement,
        "```",
        "",
        "```",
        *r.plan,
        "```",
        "",
        "Its generic plan (what a prepared statement may switch to; parameters unknown):",
        "",
        "```",
        *r.generic_plan,
        "```",
        "",
    ]
    return "\n".join(lines)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every ``finally``: the database is dropped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    gc.callbacks.append(_on_gc)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="zd-bench-") as tmp,
            throwaway_database(args.database_url, Path(tmp)) as (url, backend),
        ):
            result = Result(
                backend=backend, tasks=args.tasks, limit=args.limit, runs=args.runs, sweeps=args.sweeps
            )
            print(f"{backend}: migrating the throwaway database…", flush=True)
            upgrade(url)
            now = datetime.now(UTC).replace(microsecond=0)
            print(f"loading {args.tasks:,} tasks ({args.due:.1%} of the clocked ones due)…", flush=True)
            load(url, args, now, result)
            print(f"loaded in {result.load_seconds:.0f} s; counts {result.counts}, sizes {result.sizes}")
            engine = get_engine(url)  # the product's engine settings (pool, pre-ping)
            try:
                statement, params = sweep_statement(engine, now, args.limit)
                result.statement, result.plan, result.generic_plan = explain(engine, statement, params)
                print("\n".join([result.statement, *result.plan]), flush=True)
                print(f"timing {args.runs} runs of each measure…", flush=True)
                result.timings, result.sent = measure(
                    engine, args, now, statement, params, min(args.limit, result.counts["due"])
                )
                print(f"memory: {args.sweeps} sweeps…", flush=True)
                result.rss_kib, result.maxrss_kib = memory(engine, args, now)
            finally:
                dispose_engines()
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    text = markdown(result)
    print("\n" + text)
    if not args.no_record:
        append(args.results, text)
        print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
