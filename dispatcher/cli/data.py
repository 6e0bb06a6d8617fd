"""Data commands: ``demo``, ``publish``, ``tasks``."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlmodel import col, select

from dispatcher.cli.common import runtime, session, settings
from dispatcher.errors import DispatchError, ValidationFailed
from events.client import DispatchClient, PublishError, PublishResult

out = Console(highlight=False, soft_wrap=True, markup=False)
DEFAULT_URL = "http://127.0.0.1:8000"
#: Keep each batch request well under the 256 KiB body limit.
BATCH_BYTES = 200 * 1024


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=out
    )


def _chunks(
    items: list[tuple[int, dict[str, Any]]], max_items: int
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    chunk: list[tuple[int, dict[str, Any]]] = []
    size = 0
    for item in items:
        n = len(json.dumps(item[1], ensure_ascii=False).encode())
        if chunk and (len(chunk) >= max_items or size + n > BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += n
    if chunk:
        yield chunk


def publish_all(
    client: DispatchClient, items: list[tuple[int, dict[str, Any]]], label: str, batch: int = 100
) -> list[tuple[int, PublishResult]]:
    results: list[tuple[int, PublishResult]] = []
    with _progress() as progress:
        bar = progress.add_task(label, total=len(items))
        for chunk in _chunks(items, batch):
            answers = client.publish_batch([body for _, body in chunk])
            results += [(line, answer) for (line, _), answer in zip(chunk, answers, strict=True)]
            progress.advance(bar, len(chunk))
    return results


def _check_api(url: str) -> None:
    """Fail fast, with a hint, when nothing answers at ``url``."""
    import httpx

    try:
        httpx.get(f"{url.rstrip('/')}/healthz", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise DispatchError(f"no API answers at {url} ({exc}): is `dispatcher up` running?") from None


def demo(
    events: Annotated[int, typer.Option("--events", "-n", help="how many events", min=1, max=100_000)] = 200,
    url: Annotated[str, typer.Option(help="API base URL")] = DEFAULT_URL,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    wait: Annotated[float, typer.Option(help="seconds to wait for routing (0: don't wait)")] = 120.0,
) -> None:
    """Publish realistic sample events of all three kinds, then wait until each is routed."""
    from dispatcher.accounts import registry as accounts
    from dispatcher.enums import EVENT_KINDS, EventStatus
    from dispatcher.intake.samples import make_events
    from dispatcher.models import Event, Source, Task
    from dispatcher.org.store import org_in_force
    from dispatcher.wallclock import utcnow

    cfg = settings()
    now = utcnow()
    _check_api(url)
    with session(cfg) as s:
        org = org_in_force(s)
        if org is None:
            raise ValidationFailed(
                "no org is loaded: run `dispatcher org load examples/org.yaml` (or `dispatcher up`)"
            )
        source = s.exec(select(Source).where(Source.name == "demo")).first()
        if source is None:
            source, token = accounts.add_source(
                s,
                name="demo",
                kinds=[k.value for k in EVENT_KINDS],
                rate=1000.0,
                burst=1000,
                now=now,
            )
        else:
            token = accounts.rotate_source_token(s, source)
    run = now.strftime("demo-%Y%m%d%H%M%S")
    bodies = make_events(org, events, now=now, seed=seed, run=run)
    with DispatchClient(url, token) as client:
        try:
            results = publish_all(client, list(enumerate(bodies, 1)), f"publishing {events} events")
        except PublishError as exc:
            raise DispatchError(f"the API at {url} refused: {exc}") from None
    ids = [r.event_id for _, r in results if r.event_id]
    refused = [r for _, r in results if not r.ok]
    out.print(f"accepted {len(ids)} event(s), refused {len(refused)}")
    if wait <= 0 or not ids:
        return
    deadline = time.monotonic() + wait
    with _progress() as progress:
        bar = progress.add_task("routing", total=len(ids))
        while True:
            with session(cfg) as s:
                pending = s.exec(
                    select(Event.id).where(col(Event.id).in_(ids), Event.status == EventStatus.accepted)
                ).all()
            progress.update(bar, completed=len(ids) - len(pending))
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    with session(cfg) as s:
        tasks = s.exec(select(Task).where(col(Task.event_id).in_(ids))).all()
    by_status = Counter(t.status for t in tasks)
    by_rule = Counter(t.rule for t in tasks)
    out.print(f"tasks: {dict(by_status)}")
    out.print("by rule: " + ", ".join(f"{rule} {n}" for rule, n in by_rule.most_common()))
    if pending:
        raise DispatchError(
            f"{len(pending)} event(s) still not routed after {wait:.0f}s: are the workers running?"
        )


def publish(
    file: Annotated[Path, typer.Argument(help="JSON Lines: one event body per line")],
    url: Annotated[str, typer.Option(help="API base URL")] = DEFAULT_URL,
    token: Annotated[str, typer.Option(envvar="DISPATCH_SOURCE_TOKEN", help="source token")] = "",
) -> None:
    """Publish events from a JSON Lines file (bulk import), with progress; retries are safe."""
    if not token:
        raise ValidationFailed("a source token is needed: --token or DISPATCH_SOURCE_TOKEN")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DispatchError(f"{file}: cannot read: {exc.strerror}") from None
    items, bad = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            items.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            bad.append(f"{file}:{number}: malformed JSON: {exc.msg}")
    _check_api(url)
    with DispatchClient(url, token) as client:
        try:
            results = publish_all(client, items, f"publishing {len(items)} events", batch=500)
        except PublishError as exc:
            raise DispatchError(f"the API at {url} refused: {exc}") from None
    for number, r in results:
        if not r.ok and r.error:
            bad.append(f"{file}:{number}: {r.status} {r.error.get('message')} {r.error.get('details') or ''}")
    counts = Counter(
        "new" if r.status == 202 else "duplicate" if r.status == 200 else "refused" for _, r in results
    )
    for line in bad:
        out.print(line)
    out.print(f"{counts['new']} new, {counts['duplicate']} duplicate, {len(bad)} refused")
    if bad:
        raise typer.Exit(1)


#: Short names of the kinds and states, so a list fits an 80-column terminal.
_SHORT_KIND = {"clue": "clue", "complaint": "compl", "enterprise_request": "ent", "monthly_dispatch": "meet",
               "training": "train", "follow_up": "follow"}  # fmt: skip
_SHORT_STATUS = {"awaiting_feedback": "feedback", "dispatched": "dispatch"}


def _left(deadline: dict[str, Any]) -> str:
    """``2d 3h`` left, ``-1d 2h`` late, ``-`` when no clock runs."""
    seconds = deadline.get("seconds_left")
    if seconds is None:
        return "-"
    late, seconds = seconds < 0, abs(int(seconds))
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    text = f"{days}d {hours}h" if days else f"{hours}h {minutes}m"
    return f"-{text}" if late else text


def tasks(
    unit: Annotated[str | None, typer.Option(help="handling unit code")] = None,
    zone: Annotated[str | None, typer.Option(help="zone code")] = None,
    status: Annotated[str | None, typer.Option(help="task status")] = None,
    kind: Annotated[str | None, typer.Option(help="clue | complaint | enterprise_request | …")] = None,
    q: Annotated[str | None, typer.Option("--q", help="a ledger number or words of the summary")] = None,
    sort: Annotated[str, typer.Option(help="urgent | newest | oldest")] = "urgent",
    overdue: Annotated[
        bool,
        typer.Option("--overdue", help="only open tasks overdue, escalated or past their running clock"),
    ] = False,
    counts: Annotated[
        bool, typer.Option("--counts", help="count open tasks by deadline state per zone and per unit")
    ] = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="every column (zone, verifier, rule, summary)")
    ] = False,
    limit: Annotated[int, typer.Option(help="rows", min=1, max=10_000)] = 50,
) -> None:
    """List tasks, most urgent first, with the time left (or late); fits 80 columns unless --wide.
    Or count open ones by deadline state (--counts)."""
    from dispatcher.tasks import service
    from dispatcher.tasks.access import Actor
    from dispatcher.tasks.queries import SORTS, TaskFilters

    if sort not in SORTS:
        raise ValidationFailed(f"--sort must be one of {', '.join(SORTS)}")
    rt = runtime()
    who = Actor.system("cli")  # the command line reads the database: it sees every task
    filters = TaskFilters(unit=unit or None, zone=zone or None, status=status or None, kind=kind or None,
                          overdue=True if overdue else None, q=q or None)  # fmt: skip
    if counts:
        _print_counts(service.count_open(rt, who, replace(filters, q=None)))
        return
    page = service.browse_tasks(rt, who, filters, limit=limit, sort=sort)
    rows = page["tasks"]
    table = Table(box=None, pad_edge=False, collapse_padding=True)
    columns = ["ledger no", "kind", "status", "unit", "due", "left"]
    if wide:
        columns += ["zone", "verifier", "rule", "summary"]
    for name in columns:
        table.add_column(
            name, no_wrap=name != "summary", overflow="fold" if name == "summary" else "ellipsis"
        )
    for t in rows:
        d = t["deadline"]
        due = d["due_at"]
        local = datetime.fromisoformat(due).astimezone(rt.policy.tz).strftime("%m-%d %H:%M") if due else "-"
        kind_, status_ = _SHORT_KIND.get(t["kind"], t["kind"]), _SHORT_STATUS.get(t["status"], t["status"])
        cells = [t["ledger_no"], kind_, status_, t["handler_unit"] or "-", local, _left(d)]
        if wide:
            cells += [t["zone"] or "-", t["verifier_unit"] or "-", t["rule"], t["summary"] or ""]
        table.add_row(*cells)
    out.print(table)
    shown, total = len(rows), page["total"]
    what = f"{'overdue ' if overdue else ''}task(s)"
    if not page["total_exact"]:
        out.print(f"showing {shown} of more than {total} {what} (more with --limit, fewer with filters)")
    elif shown < total:
        out.print(f"showing {shown} of {total} {what} (more with --limit, fewer with filters)")
    else:
        out.print(f"{total} {what}")


def _print_counts(stats: dict[str, Any]) -> None:
    states: list[str] = stats["states"]
    for title, key, rows in (
        ("by zone", "zone", stats["zones"]),
        ("by unit", "unit", stats["units"]),
    ):
        table = Table(title=f"open tasks {title}")
        table.add_column(key, no_wrap=True)
        for name in (*states, "total"):
            table.add_column(name, justify="right")
        for code, c in rows.items():
            table.add_row(code, *(str(c[name]) for name in (*states, "total")))
        out.print(table)
    total = stats["total"]
    out.print("total: " + ", ".join(f"{name} {total[name]}" for name in (*states, "total")))


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.command()(publish)
    app.command()(tasks)
