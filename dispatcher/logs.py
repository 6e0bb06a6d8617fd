"""Logging set-up shared by every process: one line per record, process name included."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("DISPATCH_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s [%(processName)s %(name)s] %(message)s",
    )
    for noisy in ("alembic", "httpx", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
