"""``python -m tests.faults.report [FILE.jsonl]``: the fault suite's figures as the Markdown table of
docs/RELIABILITY.md (the latest line of each scenario; default: the long run's file)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.faults.harness import ROOT

COLUMNS = (
    ("scenario", "scenario"),
    ("sent", "sent"),
    ("accepted", "accepted"),
    ("tasks", "tasks"),
    ("lost", "lost"),
    ("doubled", "doubled"),
    ("ledger_gaps", "ledger gaps"),
    ("supervision_steps", "supervision steps"),
    ("supervision_doubled", "steps doubled"),
    ("recover_seconds", "recovered (s)"),
    ("webhooks", "webhooks"),
    ("webhooks_repeated", "webhooks repeated"),
    ("notes", "notes"),
)


def table(path: Path) -> str:
    latest: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            latest[row["scenario"]] = row
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    rows = [
        "| "
        + " | ".join(f"{row[key]:,}" if isinstance(row[key], int) else str(row[key]) for key, _ in COLUMNS)
        + " |"
        for row in latest.values()
    ]
    return "\n".join([head, rule, *rows])


if __name__ == "__main__":
    print(
        table(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "test-artifacts" / "faults" / "long.jsonl")
    )
