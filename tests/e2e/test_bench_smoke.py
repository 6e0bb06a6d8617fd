"""The benchmark suite still runs (issue 13): its smallest steps, on SQLite, without recording.

Figures are never asserted here (they are measured by ``python -m bench``, not by tests); this
only keeps the benchmark code from rotting as the product changes under it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args, "--no-record"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_cost_per_event_step_reports_intake_and_routing() -> None:
    out = run_bench("bench.costs", "--events", "20")
    for step in ("intake, one event per call", "intake, batches of 100", "routing, one event per message"):
        assert f"| {step} |" in out


def test_the_bulk_import_step_imports_every_record_once_through_dispatcher_publish() -> None:
    out = run_bench("bench.bulk", "--records", "200")
    assert "| lost / doubled | 0 / 0 |" in out
    assert "200 new, 0 duplicate, 0 refused" in out
