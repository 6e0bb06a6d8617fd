"""The ``dispatcher`` command line. Errors are one readable line; exit 0 ok, 1 failure, 2 usage."""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.console import Console
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, ProgrammingError

from dispatcher.errors import DispatchError

app = typer.Typer(
    help="Zone Dispatch — 纪检监察协作区任务分办系统.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)

log = logging.getLogger("dispatcher.cli")


def _fail(message: str) -> None:
    err.print(f"error: {message}", style="red")
    sys.exit(1)


def _database_hint(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if "no such table" in text or "does not exist" in text:
        return f"the database is not set up ({text}): run `dispatcher db upgrade`"
    return f"database: {text}"


def _register() -> None:
    from dispatcher.cli import admin, config, data, monthly, oncall, procs

    admin.register(app)
    procs.register(app)
    data.register(app)
    monthly.register(app)
    oncall.register(app)
    config.register(app)


def main() -> None:
    _register()
    try:
        app()
    except DispatchError as exc:
        if isinstance(exc.details, list) and all(isinstance(d, str) for d in exc.details):
            for line in exc.details:  # e.g. every problem of a checked file, FILE:LINE: field: message
                print(line)
        _fail(exc.message)
    except (NoSuchModuleError, ArgumentError) as exc:
        _fail(f"DISPATCH_DATABASE_URL is not a database URL we can use: {exc}")
    except (OperationalError, ProgrammingError) as exc:
        _fail(_database_hint(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # never a traceback for the user; DISPATCH_DEBUG=1 shows it
        if os.environ.get("DISPATCH_DEBUG") == "1":
            raise
        _fail(f"{type(exc).__name__}: {exc} (set DISPATCH_DEBUG=1 for the traceback)")
