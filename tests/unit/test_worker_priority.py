"""``dispatcher worker --nice``: the workers yield the CPU to the API (issue 13)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import os
from pathlib import Path
from dispatcher.cli.procs import lower_priority
lower_priority(7)
group = Path("/proc/self/autogroup")
print(os.nice(0), group.read_text().split()[-1] if group.exists() else "-")
"""


def test_lower_priority_sets_the_niceness_and_the_session_group_s() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, start_new_session=True
    )
    assert done.returncode == 0, done.stderr
    nice, group = done.stdout.split()
    assert nice == "7"
    if Path("/proc/self/autogroup").exists():  # kernels with autogroup: the session's weight too
        assert group == "7"


def test_the_worker_command_refuses_a_niceness_out_of_range_with_a_clear_message() -> None:
    argv = [sys.executable, "-m", "dispatcher", "worker", "--nice", "25"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--nice" in done.stderr and "19" in done.stderr
