"""On-call commands (值班): ``queue [--watch]``, ``dead-letters [--retry ID | --retry-all | --purge ID]``,
``alerts``. They read the same use cases as ``/queue``; actions are logged as ``cli:<account>``."""

from __future__ import annotations

import getpass
import time
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dispatcher.cli.common import runtime
from dispatcher.errors import ValidationFailed
from dispatcher.oncall import service
from dispatcher.runtime import Runtime

out = Console(highlight=False, soft_wrap=True, markup=False)


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _view(state: dict[str, Any]) -> Group:
    broker = state["broker"]
    queues = Table(title="Queues", title_justify="left")
    for column in ("queue", "ready", "delayed", "in flight", "dead"):
        queues.add_column(column, justify="left" if column == "queue" else "right")
    for q in state["queues"]:
        queues.add_row(q["queue"], *(str(q[k]) for k in ("ready", "delayed", "in_flight", "dead")))
    rates, latency = state["rates"], state["routing_latency_seconds"]
    lines = [
        f"at {state['at'][:19]}Z   broker: "
        + ("ok" if broker["reachable"] else f"UNREACHABLE ({broker['error']})"),
        f"workers alive: {state['workers_alive']} of {len(state['workers'])}"
        f"   last heartbeat: {_age(state['worker_silence_seconds'])} ago",
        "intake /min (1/5/15): " + " / ".join(str(v) for v in rates["intake_per_minute"].values())
        + "   dispatch /min: " + " / ".join(str(v) for v in rates["dispatch_per_minute"].values()),
        "routing latency p50/p95/p99: "
        + " / ".join("—" if v is None else f"{v:.2f} s" for v in latency.values()),
        f"outbox: {state['outbox']['backlog']} waiting, oldest {_age(state['outbox']['oldest_seconds'])}"
        f"   triage: {state['triage']['backlog']} waiting, oldest {_age(state['triage']['oldest_seconds'])}",
        "late by zone: "
        + (", ".join(f"{z} {c['overdue']} overdue / {c['escalated']} escalated"
                     for z, c in state["late_by_zone"].items()) or "none")
        + f"   failed webhooks: {state['failed_webhooks']}",
        f"scheduler leader: {state['scheduler']['leader'] or 'NONE'}",
    ]  # fmt: skip
    if state["calendar_warning"]:
        lines.append(f"calendar: {state['calendar_warning']}")
    alerts = [f"ALERT {a['name']}: {a['message']}" for a in state["alerts"]]
    return Group(queues, Text("\n".join(lines)), Text("\n".join(alerts) or "no alert firing"))


def queue(
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh until Ctrl-C")] = False,
    interval: Annotated[float, typer.Option(help="seconds between refreshes", min=1, max=3600)] = 3.0,
) -> None:
    """The queue at a glance: depths, workers, rates, latency, backlogs, lateness, leader, alerts."""
    rt = runtime()
    if not watch:
        out.print(_view(service.queue_state(rt)))
        return
    with Live(_view(service.queue_state(rt)), console=out, refresh_per_second=4) as live:
        while True:
            time.sleep(interval)
            live.update(_view(service.queue_state(rt)))


def _letters(rt: Runtime) -> None:
    letters = service.dead_letters(rt)
    if not letters:
        out.print("no dead letters")
        return
    table = Table()
    for column in ("id", "queue", "actor", "retries", "dead since", "error"):
        table.add_column(column, overflow="fold")
    for d in letters:
        since = datetime.fromisoformat(d["dead_since"]).strftime("%Y-%m-%d %H:%M")
        table.add_row(d["id"], d["queue"], d["actor"], str(d["retries"]), since, d["error"])
    out.print(table)


def dead_letters(
    retry: Annotated[
        str | None, typer.Option("--retry", metavar="ID", help="put one back on its queue")
    ] = None,
    retry_all: Annotated[bool, typer.Option("--retry-all", help="put every one back on its queue")] = False,
    purge: Annotated[str | None, typer.Option("--purge", metavar="ID", help="delete one for good")] = None,
) -> None:
    """Dead letters (messages past their last retry): list them, retry one or all, or purge one."""
    if sum(x is not None and x is not False for x in (retry, retry_all or None, purge)) > 1:
        raise ValidationFailed("give one of --retry, --retry-all, --purge")
    rt = runtime()
    if retry:
        service.retry_dead_letter(rt, _who(), retry)
        out.print(f"retried {retry}")
    elif retry_all:
        out.print(f"retried {service.retry_all_dead_letters(rt, _who())['retried']} dead letter(s)")
    elif purge:
        service.purge_dead_letter(rt, _who(), purge)
        out.print(f"purged {purge}")
    else:
        _letters(rt)


def alerts() -> None:
    """Alert rules (firing first) and the latest starts and ends."""
    answer = service.alert_list(runtime())
    table = Table(title="Rules", title_justify="left")
    for column in ("rule", "state", "since", "message"):
        table.add_column(column, overflow="fold")
    for r in sorted(answer["rules"], key=lambda r: not r["firing"]):
        table.add_row(
            r["rule"], "FIRING" if r["firing"] else "ok", (r["since"] or "")[:19], r["message"] or ""
        )
    out.print(table)
    events = Table(title="Latest starts and ends", title_justify="left")
    for column in ("at", "rule", "change", "delivery", "message"):
        events.add_column(column, overflow="fold")
    for e in answer["events"][:20]:
        events.add_row(e["at"][:19], e["rule"], e["change"], e["delivery"], e["message"])
    out.print(events)


def register(app: typer.Typer) -> None:
    app.command()(queue)
    app.command("dead-letters")(dead_letters)
    app.command()(alerts)
