"""Logs: readable text by default, one JSON object per line with ``DISPATCH_LOG_FORMAT=json``."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatcher.errors import ConfigError
from dispatcher.logs import TEXT_FORMAT, make_formatter, route_uvicorn_logs, setup_logging
from dispatcher.settings import Settings, load_settings
from tests.support import ROOT, child_env, free_port, wait_for

UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root and uvicorn loggers as they were, restored after the test (pytest's handlers too)."""
    root = logging.getLogger()
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.filters[:])
             for lg in (root, *map(logging.getLogger, UVICORN))]  # fmt: skip
    try:
        yield root
    finally:
        for lg, handlers, level, propagate, filters in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate
            lg.filters[:] = filters


def _record(message: str = "routed %s", *args: object, exc: bool = False, **extra: Any) -> logging.LogRecord:
    args = args or (("e-1",) if "%s" in message else ())
    exc_info = None
    if exc:
        try:
            raise RuntimeError("database is down")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.getLogger("dispatcher.routing").makeRecord(
        "dispatcher.routing", logging.WARNING, __file__, 1, message, args, exc_info, extra=extra
    )


def test_text_lines_name_the_level_process_and_logger() -> None:
    line = make_formatter("text").format(_record())
    assert line.endswith(" WARNING [MainProcess dispatcher.routing] routed e-1")


def test_a_json_line_holds_time_level_logger_process_and_message() -> None:
    line = make_formatter("json").format(_record())
    fields = json.loads(line)
    assert list(fields)[:6] == ["time", "level", "logger", "process", "pid", "message"]
    assert fields["level"] == "WARNING" and fields["logger"] == "dispatcher.routing"
    assert fields["process"] == "MainProcess" and isinstance(fields["pid"], int)
    assert fields["message"] == "routed e-1"
    assert fields["time"].endswith("Z")
    stamp = datetime.fromisoformat(fields["time"])
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60


def test_a_traceback_in_json_is_one_line_with_the_exception_as_one_field() -> None:
    line = make_formatter("json").format(_record("routing failed", exc=True))
    assert "\n" not in line
    fields = json.loads(line)
    assert fields["message"] == "routing failed"
    assert fields["exception"].startswith("Traceback (most recent call last):")
    assert fields["exception"].rstrip().endswith("RuntimeError: database is down")


def test_extra_fields_appear_in_json_and_chinese_stays_readable() -> None:
    line = make_formatter("json").format(_record("退回 %s", "e-2", event_id="e-2", attempt=3))
    fields = json.loads(line)
    assert fields["event_id"] == "e-2" and fields["attempt"] == 3
    assert "退回 e-2" in line  # not \\u escapes


@pytest.mark.parametrize("given", ["debug", "Info", "WARNING", "warn", " error ", "critical"])
def test_the_log_level_setting_accepts_the_logging_levels_in_any_case(
    given: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPATCH_LOG_LEVEL", given)
    expected = given.strip().upper()
    assert load_settings().log_level == ("WARNING" if expected == "WARN" else expected)


@pytest.mark.parametrize(
    ("name", "value"), [("LOG_LEVEL", "loud"), ("LOG_LEVEL", "NOTSET"), ("LOG_FORMAT", "xml")]
)
def test_an_unknown_log_level_or_format_is_one_readable_error(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"DISPATCH_{name}", value)
    with pytest.raises(ConfigError, match=name.lower()):
        load_settings()


def test_setup_logging_in_json_mode_writes_json_at_the_configured_level(
    root_logging: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    setup_logging(Settings(log_format="json", log_level="warning"))
    logging.getLogger("dispatcher.test").info("not shown")
    logging.getLogger("dispatcher.test").warning("shown", extra={"task_id": 7})
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["shown"]
    assert json.loads(lines[0])["task_id"] == 7
    assert root_logging.level == logging.WARNING


def test_setup_logging_falls_back_to_text_at_info_when_the_settings_are_invalid(
    root_logging: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPATCH_LOG_LEVEL", "loud")
    root_logging.handlers.clear()
    setup_logging()  # the process reports the bad setting itself when it loads the settings
    assert root_logging.level == logging.INFO
    [handler] = root_logging.handlers
    assert handler.formatter is not None and handler.formatter._fmt == TEXT_FORMAT


def test_uvicorn_access_lines_go_through_the_root_handler_with_the_request_as_fields(
    root_logging: logging.Logger,
) -> None:
    captured: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = captured.append  # type: ignore[method-assign]
    root_logging.handlers[:] = [handler]
    route_uvicorn_logs(access_log=True)
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "10.0.0.5:5123", "POST", "/api/v1/events", "1.1", 202)
    [record] = captured
    fields = json.loads(make_formatter("json").format(record))
    assert fields["logger"] == "uvicorn.access"
    assert (fields["client"], fields["method"], fields["path"], fields["status"]) == (
        "10.0.0.5:5123", "POST", "/api/v1/events", 202,
    )  # fmt: skip
    route_uvicorn_logs(access_log=False)
    access.info('%s - "%s %s HTTP/%s" %d', "10.0.0.5:5123", "GET", "/healthz", "1.1", 200)
    assert len(captured) == 1


def test_the_api_process_logs_only_json_lines_with_log_format_json(tmp_path: Path) -> None:
    port = free_port()
    env = child_env(DISPATCH_DATA_DIR=str(tmp_path), DISPATCH_LOG_FORMAT="json")
    argv = [sys.executable, "-m", "dispatcher", "api", "--port", str(port), "--access-log"]
    proc = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}/healthz"

        def answers() -> bool:
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                assert proc.poll() is None, "the API exited"
                return False

        wait_for(answers, timeout=30, interval=0.2, what="the API")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    lines = [line for line in (out + err).splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line of the process is JSON
    assert any(
        r["logger"] == "uvicorn.access" and r["path"] == "/healthz" and r["status"] == 200 for r in records
    )
    assert all({"time", "level", "logger", "pid", "message"} <= set(r) for r in records)
