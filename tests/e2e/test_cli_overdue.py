"""``dispatcher tasks --overdue`` and ``dispatcher tasks --counts`` as users run them (DESIGN §9, issue 4).

Tasks are inserted into the test's database (SQLite and, when configured, PostgreSQL) with their
clocks where the sweep would find them; the command runs as a real ``python -m dispatcher``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dispatcher.db import unit_of_work
from dispatcher.models import Task
from dispatcher.wallclock import utcnow
from tests.e2e.conftest import e2e_env, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def db_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return e2e_env(tmp_path / "data", DISPATCH_DATABASE_URL=database_url)


def add_task(engine: sa.Engine, ledger_no: str, unit: str, zone: str, status: str, **clocks: object) -> None:
    now = utcnow()
    columns: dict[str, object] = {
        "resolve_due_at": now + timedelta(days=3), "accept_due_at": now + timedelta(days=1), **clocks,
    }  # fmt: skip
    with unit_of_work(engine) as s:
        s.add(
            Task(
                kind="complaint", ledger_no=ledger_no, status=status, zone_code=zone, handler_unit=unit,
                verifier_unit="SHI1", rule="complaint_township", reason="测试",
                received_at=now - timedelta(days=9), created_at=now, dispatched_at=now, updated_at=now,
                accepted_at=now, **columns,
            )
        )  # fmt: skip


@pytest.fixture
def board(engine: sa.Engine) -> None:
    past = utcnow() - timedelta(days=2)
    add_task(engine, "TS-ONTIME", "DXZ-JW", "Z1", "accepted")
    add_task(engine, "TS-WARN", "DXZ-JW", "Z1", "accepted", deadline_state="warning")
    add_task(engine, "TS-MARKED", "DXZ-JW", "Z1", "accepted", deadline_state="overdue", resolve_due_at=past)
    add_task(engine, "TS-UNSWEPT", "FDX-JW", "Z1", "rejected", resolve_due_at=past)
    add_task(engine, "TS-ESC", "SQZ-JW", "Z2", "accepted", deadline_state="escalated", escalation_level=2,
             resolve_due_at=past)  # fmt: skip
    add_task(engine, "TS-CLOSED", "DXZ-JW", "Z1", "closed", deadline_state="overdue", resolve_due_at=past)


def test_tasks_overdue_lists_only_late_open_tasks_with_their_deadline(
    db_env: dict[str, str], board: None
) -> None:
    r = run_cli("tasks", "--overdue", env=dict(db_env, COLUMNS="80"))

    assert r.returncode == 0, r.stdout + r.stderr
    listed = re.findall(r"TS-[A-Z]+", r.stdout)
    assert listed[0] == "TS-ESC" and set(listed) == {"TS-MARKED", "TS-UNSWEPT", "TS-ESC"}, (
        r.stdout
    )  # urgent first
    assert "3 overdue task(s)" in r.stdout
    assert re.search(r"-[12]d \d+h", r.stdout)  # how late
    assert max(len(line) for line in r.stdout.splitlines()) <= 80, r.stdout  # an 80-column terminal
    assert "Traceback" not in r.stderr

    few = run_cli("tasks", "--limit", "2", env=dict(db_env, COLUMNS="80"))
    assert "showing 2 of 6 task(s)" in few.stdout, few.stdout  # says when it shows fewer than exist
    wide = run_cli("tasks", "--wide", env=dict(db_env, COLUMNS="200"))
    assert "verifier" in wide.stdout and "rule" in wide.stdout

    scoped = run_cli("tasks", "--overdue", "--unit", "DXZ-JW", env=dict(db_env, COLUMNS="250"))
    assert set(re.findall(r"TS-[A-Z]+", scoped.stdout)) == {"TS-MARKED"}, scoped.stdout

    everything = run_cli("tasks", env=dict(db_env, COLUMNS="250"))
    assert everything.returncode == 0 and "6 task(s)" in everything.stdout


def test_tasks_counts_tables_per_zone_and_unit(db_env: dict[str, str], board: None) -> None:
    r = run_cli("tasks", "--counts", env=dict(db_env, COLUMNS="200"))

    assert r.returncode == 0, r.stdout + r.stderr
    assert "open tasks by zone" in r.stdout and "open tasks by unit" in r.stdout

    def row(code: str) -> list[str]:
        (line,) = [x for x in r.stdout.splitlines() if re.search(rf"[│|]\s*{re.escape(code)}\s*[│|]", x)]
        return re.findall(r"\d+", line.split(code, 1)[1])

    # on_time, warning, overdue, escalated, total (closed tasks are not counted)
    assert row("Z1") == ["1", "1", "2", "0", "4"], r.stdout
    assert row("Z2") == ["0", "0", "0", "1", "1"], r.stdout
    assert row("DXZ-JW") == ["1", "1", "1", "0", "3"], r.stdout
    assert row("FDX-JW") == ["0", "0", "1", "0", "1"], r.stdout
    assert "total: on_time 1, warning 1, overdue 2, escalated 1, total 5" in r.stdout

    late = run_cli("tasks", "--counts", "--overdue", "--zone", "Z1", env=dict(db_env, COLUMNS="200"))
    assert (
        late.returncode == 0 and "total: on_time 0, warning 0, overdue 2, escalated 0, total 2" in late.stdout
    )
