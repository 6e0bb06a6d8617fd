"""Inbox benchmark: ``GET /api/v1/tasks`` (the default page) and ``GET /api/v1/tasks?q=`` over HTTP
with 1,000,000 tasks on PostgreSQL (issue 11: p50 and p99 under 200 ms).

``python -m bench.inbox --database-url postgresql://postgres@127.0.0.1:5432/test --tasks 1000000``
creates a throwaway database next to the admin URL, migrates it (the urgency expression index, the
pg_trgm indexes), bulk-loads N tasks in SQL with summaries drawn from a realistic vocabulary,
``VACUUM (ANALYZE)``, starts a private redis-server and one ``dispatcher api`` process, and times
each request (sequentially, after a warm-up) as a handler of one township commission, a zone
leader and an admin see it. The baseline is ``GET /healthz`` on the same server in the same run.
It prints a Markdown table, appends it to ``bench/RESULTS.md`` and drops the database.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench.harness import (
    BenchError,
    child,
    child_env,
    dispatcher_cmd,
    free_port,
    redis_broker,
    throwaway_database,
)
from bench.harness import wait_for as bench_wait
from bench.report import append, machine, percentile
from dispatcher.db import normalize_url
from dispatcher.migrate import upgrade

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ORG = Path(__file__).resolve().parent.parent / "examples" / "org.yaml"
TARGET_MS = 200.0
UNITS = ["CGJD-JW", "DXZ-JW", "FDX-JW", "HSZ-JW", "SQZ-JW", "LHX-JW", "BSZ-JW", "QSZ-JW", "MTX-JW", "YJZ-JW",
         "SHI1", "SHI2", "SHI3", "RSJ", "ZJJ", "SCJG"]  # fmt: skip
ZONE = {"CGJD-JW": "Z1", "DXZ-JW": "Z1", "FDX-JW": "Z1", "HSZ-JW": "Z1", "SHI1": "Z1", "SQZ-JW": "Z2",
        "LHX-JW": "Z2", "BSZ-JW": "Z2", "SHI2": "Z2"}  # fmt: skip
#: Words a summary is made of (what citizens and enterprises write about).
WORDS = [
    "惠民补贴", "迟迟未发放", "村道硬化", "工程质量", "低保评定", "优亲厚友", "自来水",
    "水压不足", "路灯损坏", "征地补偿", "拖欠工资", "项目审批", "办理周期", "环境污染",
    "噪音扰民", "集体资产", "账目不公开", "危房改造", "医保报销", "养老金",
]  # fmt: skip

LOAD = sa.text(
    """
    INSERT INTO tasks (kind, ledger_no, status, zone_code, township_code, handler_unit, verifier_unit, rule,
        reason, recused_logins, received_at, created_at, dispatched_at, updated_at, version, assisting_units,
        assisting_logins, accept_due_at, resolve_due_at, verify_due_at, deadline_state, escalation_level,
        extensions_used, accept_run, resolve_run, verify_run, summary)
    SELECT CASE WHEN g % 7 = 0 THEN 'clue' WHEN g % 3 = 0 THEN 'enterprise_request' ELSE 'complaint' END,
           'TS-' || (2020 + g % 7) || '-' || lpad(g::text, 6, '0'),
           CASE WHEN s < 0.75 THEN 'closed' WHEN s < 0.85 THEN 'accepted' WHEN s < 0.90 THEN 'dispatched'
                WHEN s < 0.93 THEN 'submitted' WHEN s < 0.95 THEN 'rejected' WHEN s < 0.97 THEN 'reopened'
                ELSE 'awaiting_feedback' END,
           zone, 'T', unit, CASE zone WHEN 'Z1' THEN 'SHI1' WHEN 'Z2' THEN 'SHI2' ELSE 'SHI3' END,
           'bench', 'bench', '[]', received, received, received, received, 1,
           '[]', '[]', received + interval '1 day', received + interval '7 days',
           received + interval '9 days',
           CASE WHEN d < 0.02 THEN 'escalated' WHEN d < 0.07 THEN 'overdue' WHEN d < 0.12 THEN 'warning'
                ELSE 'on_time' END,
           0, 0, 1, 1, 1,
           words[1 + (g % :n)] || '，' || words[1 + ((g / 7) % :n)] || '，' || words[1 + ((g / 49) % :n)]
    FROM (
        SELECT g, random() AS s, random() AS d, CAST(:words AS text[]) AS words,
               (CAST(:units AS text[]))[1 + (g % :u)] AS unit,
               COALESCE(CAST(:zones AS jsonb) ->> (CAST(:units AS text[]))[1 + (g % :u)], 'Z3') AS zone,
               CAST(:now AS timestamp) - random() * interval '700 days' AS received
        FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g
        OFFSET 0
    ) a
    """
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.inbox", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", required=True, help="PostgreSQL admin URL on 127.0.0.1")
    p.add_argument("--tasks", "-n", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=100, help="timed requests of each measure (after 5 warm-up)")
    p.add_argument("--chunk", type=int, default=100_000)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    if not 1_000 <= args.tasks <= 5_000_000 or not 5 <= args.runs <= 1000:
        p.error("--tasks 1000..5000000, --runs 5..1000")
    return args


@dataclass
class Result:
    backend: str
    tasks: int
    load_seconds: float = 0.0
    measures: list[tuple[str, str, list[float], int]] = field(
        default_factory=list
    )  #: who, what, seconds, rows
    when: datetime = field(default_factory=lambda: datetime.now().astimezone())


def load(url: str, args: argparse.Namespace, result: Result) -> None:
    import json

    engine = sa.create_engine(normalize_url(url))
    started = time.perf_counter()
    with engine.connect() as conn:
        conn.exec_driver_sql("SET synchronous_commit = off")
        conn.exec_driver_sql("SELECT setseed(0.7)")
        now = datetime.now(UTC).replace(tzinfo=None)
        for lo in range(1, args.tasks + 1, args.chunk):
            hi = min(lo + args.chunk - 1, args.tasks)
            values = {"lo": lo, "hi": hi, "now": now, "words": WORDS, "n": len(WORDS), "units": UNITS}
            conn.execute(LOAD, {**values, "u": len(UNITS), "zones": json.dumps(ZONE)})
            conn.commit()
            print(f"  loaded {hi:,} / {args.tasks:,}", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE) tasks")
        # Write the load's dirty pages out now, not while requests are timed.
        conn.exec_driver_sql("CHECKPOINT")
    engine.dispose()
    result.load_seconds = time.perf_counter() - started


def users(url: str, workdir: Path) -> dict[str, str]:
    """A handler of 大兴镇纪委, the zone 1 leader and an admin, with their API tokens."""
    from dispatcher.accounts.registry import add_user
    from dispatcher.db import get_engine, unit_of_work
    from dispatcher.org.loader import load_org_file
    from dispatcher.org.store import save_org

    org = load_org_file(ORG)
    engine = get_engine(url)
    with unit_of_work(engine) as s:
        save_org(
            s, org, source_name=str(ORG), text=ORG.read_text(), now=datetime.now(UTC), secret_key="b" * 40
        )
    tokens = {}
    for login, unit, role in (("deng.xiaoming", "DXZ-JW", "handler"), ("han.zhiyuan", "SHI1", "zone_leader"),
                              ("tang.wenbo", "BGS", "admin")):  # fmt: skip
        with unit_of_work(engine) as s:
            _, token, _ = add_user(s, login=login, unit=unit, roles=role, org=org, now=datetime.now(UTC))
        tokens[role] = token
    return tokens


def timed(client: httpx.Client, path: str, token: str | None, runs: int) -> tuple[list[float], int]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    rows = 0
    for _ in range(5):
        client.get(path, headers=headers)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        r = client.get(path, headers=headers)
        seconds.append(time.perf_counter() - started)
        if r.status_code != 200:
            raise BenchError(f"{path}: {r.status_code} {r.text[:200]}")
        rows = len(r.json().get("tasks", [])) if path.startswith("/api/v1/tasks") else 0
    return seconds, rows


def measure(url: str, broker: object, args: argparse.Namespace, workdir: Path, result: Result) -> None:
    tokens = users(url, workdir)
    port = free_port()
    env = child_env(
        DISPATCH_DATABASE_URL=url,
        DISPATCH_REDIS_URL=broker.url,  # type: ignore[attr-defined]
        DISPATCH_BROKER_NAMESPACE=broker.namespace,  # type: ignore[attr-defined]
        DISPATCH_SECRET_KEY="b" * 40,
        DISPATCH_DATA_DIR=str(workdir / "data"),
        DISPATCH_WORKER_METRICS_PORT="0",
    )
    with child(dispatcher_cmd("api", "--port", str(port)), env, workdir / "api.log"):
        base = f"http://127.0.0.1:{port}"
        bench_wait(lambda: _up(base), timeout=60, what="the API")
        with httpx.Client(base_url=base, timeout=60) as client:
            plan = [
                ("anybody", "baseline: GET /healthz", "/healthz", None),
                ("handler", "default inbox (most urgent first)", "/api/v1/tasks", tokens["handler"]),
                ("zone leader", "default inbox", "/api/v1/tasks", tokens["zone_leader"]),
                ("admin", "default inbox (every task)", "/api/v1/tasks", tokens["admin"]),
                ("admin", "page 20", "/api/v1/tasks?offset=950&limit=50", tokens["admin"]),
                ("admin", "q= a ledger number", "/api/v1/tasks?q=TS-2025-012346", tokens["admin"]),
                ("admin", "q= part of a number", "/api/v1/tasks?q=012346", tokens["admin"]),
                ("admin", "q= a common word (15% of tasks)", "/api/v1/tasks?q=水压不足", tokens["admin"]),
                ("handler", "q= a common word", "/api/v1/tasks?q=水压不足", tokens["handler"]),
                ("zone leader", "q= a common word", "/api/v1/tasks?q=水压不足", tokens["zone_leader"]),
                ("admin", "q= two words", "/api/v1/tasks?q=低保评定%20优亲厚友", tokens["admin"]),
                ("admin", "q= two characters, common", "/api/v1/tasks?q=低保", tokens["admin"]),
                ("handler", "q= two characters, common", "/api/v1/tasks?q=低保", tokens["handler"]),
                ("admin", "q= two characters, in no task", "/api/v1/tasks?q=龙虾", tokens["admin"]),
                ("admin", "q= a word in no task", "/api/v1/tasks?q=非法采砂", tokens["admin"]),
                ("handler", "kind=clue", "/api/v1/tasks?kind=clue", tokens["handler"]),
                ("admin", "overdue=true", "/api/v1/tasks?overdue=true", tokens["admin"]),
            ]
            for who, what, path, token in plan:
                seconds, rows = timed(client, path, token, args.runs)
                result.measures.append((who, what, seconds, rows))
                print(f"  {who:12} {what:36} p50 {percentile(seconds, 50) * 1000:7.1f} ms", flush=True)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def markdown(r: Result) -> str:
    baseline = percentile(r.measures[0][2], 50)
    lines = [
        f"### {r.when:%Y-%m-%d %H:%M %Z} — inbox and search over HTTP, {r.backend}, N={r.tasks:,}",
        "",
        f"Machine: {machine()}. Loaded in {r.load_seconds:,.0f} s. One `dispatcher api` process; "
        "each request alone.",
        "",
        "| who | request | rows | p50 | p99 | p50 ÷ baseline |",
        "|---|---|---|---|---|---|",
    ]
    worst = 0.0
    for who, what, seconds, rows in r.measures:
        p50, p99 = percentile(seconds, 50) * 1000, percentile(seconds, 99) * 1000
        if who != "anybody":
            worst = max(worst, p99)
        lines.append(
            f"| {who} | {what} | {rows} | {p50:.1f} ms | {p99:.1f} ms | {p50 / 1000 / baseline:.1f}× |"
        )
    lines += [
        "",
        f"Worst p99 {worst:.0f} ms: {'meets' if worst < TARGET_MS else 'misses'} "
        f"the {TARGET_MS:.0f} ms target.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="zd-bench-inbox-") as tmp:
        workdir = Path(tmp)
        try:
            with (
                throwaway_database(args.database_url, workdir) as (url, backend),
                redis_broker(None, workdir) as broker,
            ):
                upgrade(url)
                result = Result(backend=backend, tasks=args.tasks)
                print(f"loading {args.tasks:,} tasks into {backend}…", flush=True)
                load(url, args, result)
                print("measuring…", flush=True)
                measure(url, broker, args, workdir, result)
                from dispatcher.db import dispose_engines

                dispose_engines()
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    text = markdown(result)
    print(text)
    if not args.no_record:
        append(args.results, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
