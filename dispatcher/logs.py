"""Logging set-up shared by every process: one line per record, process name included.

``DISPATCH_LOG_FORMAT=text`` (the default) writes readable lines; ``json`` writes one JSON object
per line (time in UTC, level, logger, process name and pid, message, the exception's traceback as
one string, and any ``extra=`` fields) for a log shipper. ``DISPATCH_LOG_LEVEL`` sets the level.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from dispatcher.errors import ConfigError
from dispatcher.settings import Settings, load_settings

#: The text format: time, level, process and logger, message.
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(processName)s %(name)s] %(message)s"

#: Libraries whose INFO lines are noise in production logs.
QUIET_LOGGERS = ("alembic", "httpx", "apscheduler.executors.default")

#: JSON field names: the record's attribute → the name in the line.
JSON_FIELDS = {
    "levelname": "level",
    "name": "logger",
    "processName": "process",
    "process": "pid",
}


class JsonLines(JsonFormatter):
    """One JSON object per record, ``time`` first (ISO 8601, UTC, milliseconds)."""

    def __init__(self) -> None:
        super().__init__(
            [*JSON_FIELDS, "message"],
            rename_fields={**JSON_FIELDS, "exc_info": "exception", "stack_info": "stack"},
            # uvicorn's coloured copy of its message is not worth shipping twice
            reserved_attrs=[*RESERVED_ATTRS, "color_message", "taskName"],
            json_ensure_ascii=False,  # 事件摘要 stay readable
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        stamp = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        log_data["time"] = stamp.replace("+00:00", "Z")
        super().add_fields(log_data, record, message_dict)


def make_formatter(log_format: Literal["text", "json"]) -> logging.Formatter:
    return JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def setup_logging(settings: Settings | None = None) -> None:
    """Configure the root logger from ``log_level`` and ``log_format`` of ``settings`` (read from
    the environment when not given; the defaults, INFO and text, when they cannot be loaded — the
    caller reports the bad setting itself).

    In text mode a process whose host already configured logging (dramatiq's worker processes)
    keeps that configuration, as ``logging.basicConfig`` does. JSON mode replaces the root's
    handlers with one on the current ``sys.stderr`` (in a dramatiq worker, the pipe to its parent),
    so that every line of the process is JSON.
    """
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError:
            settings = Settings.model_construct()  # the defaults; the caller fails on the real error
    if settings.log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(make_formatter("json"))
        logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    else:
        logging.basicConfig(level=settings.log_level, format=TEXT_FORMAT)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _access_fields(record: logging.LogRecord) -> bool:
    """uvicorn's access record as fields (client, method, path, status), for JSON lines."""
    if isinstance(record.args, tuple) and len(record.args) == 5:
        record.client, record.method, record.path, _, record.status = record.args
    return True


def route_uvicorn_logs(*, access_log: bool) -> None:
    """Send uvicorn's records through the root handler (run uvicorn with ``log_config=None``):
    its own lines from WARNING up, and with ``access_log`` one INFO line per request."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.INFO if access_log else logging.WARNING)
    if _access_fields not in access.filters:
        access.addFilter(_access_fields)
