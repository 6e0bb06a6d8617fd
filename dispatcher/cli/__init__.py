"""The ``dispatcher`` command line. Errors are one readable line; exit 0 ok, 1 failure, 2 usage."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from dispatcher.errors import DispatchError

app = typer.Typer(
    help="Zone Dispatch — 纪检监察协作区任务分办系统.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, soft_wrap=True)


def _register() -> None:
    from dispatcher.cli import admin, data, procs

    admin.register(app)
    procs.register(app)
    data.register(app)


def main() -> None:
    _register()
    try:
        app()
    except DispatchError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
