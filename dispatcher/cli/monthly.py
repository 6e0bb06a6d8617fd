"""``dispatcher schedules run | runs`` and ``dispatcher report``: the monthly jobs by hand (DESIGN §9)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dispatcher.cli.common import runtime
from dispatcher.errors import NotFound, ValidationFailed

schedules_app = typer.Typer(
    help="The monthly jobs: run or back-fill a period, list the runs.", no_args_is_help=True
)
out = Console(soft_wrap=True, highlight=False)

JOBS_HELP = "monthly-report | monthly-dispatch | monthly-training"


@schedules_app.command("run")
def schedules_run(
    job: Annotated[str, typer.Argument(help=JOBS_HELP)],
    period: Annotated[str, typer.Option("--period", help="the month, YYYY-MM")],
) -> None:
    """Run (or back-fill) one job for one period, here and now; a period already done is left alone."""
    from dispatcher.monthly.periods import Job, Period
    from dispatcher.monthly.service import run_now

    chosen, month = Job.parse(job), Period.parse(period)
    rt = runtime()
    with out.status(f"{chosen.value} {month}: working…"):
        did, run = run_now(rt, chosen, month, by="cli")
    if not did and run.get("state") == "succeeded":
        out.print(
            f"{chosen.value} {month} already ran ({run['finished_at']}); nothing changed: {run['result']}"
        )
        return
    if run.get("state") != "succeeded":
        out.print(f"{chosen.value} {month}: {run.get('state')} {run.get('error') or ''}".rstrip())
        raise typer.Exit(1)
    out.print(f"{chosen.value} {month}: done in {run['seconds']}s: {run['result']}")


@schedules_app.command("runs")
def schedules_runs(
    job: Annotated[str | None, typer.Option(help=JOBS_HELP)] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="rows")] = 30,
) -> None:
    """The latest runs of the monthly jobs: state, when, how long, what they made or why they failed."""
    from dispatcher.monthly.service import list_runs

    rows = list_runs(runtime(), limit=limit, job=job)
    table = Table(box=None, pad_edge=False)
    for name in ("job", "period", "state", "by", "finished", "secs", "made / error"):
        table.add_column(name, no_wrap=name != "made / error", overflow="fold")
    for r in rows:
        made = {k: v for k, v in (r["result"] or {}).items() if k not in ("tasks", "created")}
        what = r["error"] or " ".join(f"{k}={v}" for k, v in made.items())
        finished = (r["finished_at"] or "")[5:16].replace("T", " ")
        seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else ""
        table.add_row(r["job"].removeprefix("monthly-"), r["period"], r["state"], r["trigger"], finished,
                      seconds, what)  # fmt: skip
    out.print(table)
    out.print(f"{len(rows)} run(s)")


def report(
    period: Annotated[str, typer.Option("--period", help="the month, YYYY-MM")],
    fmt: Annotated[str, typer.Option("--format", help="html | xlsx | csv | json")] = "html",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="file to write (default: stdout for text)")
    ] = None,
) -> None:
    """Write the monthly report of a period; it is made first if it does not exist yet."""
    from dispatcher.monthly.periods import Job, Period
    from dispatcher.monthly.service import run_now
    from dispatcher.reports import service

    month = Period.parse(period)
    rt = runtime()
    report_id = service.report_of_period(rt, month)
    if report_id is None:
        with out.status(f"making the report of {month}…"):
            run_now(rt, Job.report, month, by="cli")
        report_id = service.report_of_period(rt, month)
    if report_id is None:
        raise NotFound(f"the report of {month} could not be made; see `dispatcher schedules runs`")
    name, content = service.report_file(rt, report_id, fmt)
    if output is None:
        if fmt == "xlsx":
            raise ValidationFailed("an xlsx report is binary: give a file with -o report.xlsx")
        sys.stdout.write(content.decode())
        return
    output.write_bytes(content)
    print(f"wrote {output} ({len(content):,} bytes, {name})", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.add_typer(schedules_app, name="schedules")
    app.command()(report)
