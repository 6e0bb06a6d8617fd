"""Migrations from the first revision to head, with data in the tables (SQLite and PostgreSQL).

Each backend gets a database of its own (a new SQLite file; a new PostgreSQL database created
for the test and dropped after). From 0001, one revision at a time, each step filling the tables
it created (``every_table.ROWS``): at head every table holds a row and nothing is lost. From 0003
with rows as the code of that revision wrote them: the data migration of 0004 gives every clue its
stages and every clock its start and run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher.db import get_engine
from dispatcher.migrate import upgrade
from tests.conftest import BACKENDS, TEST_SECRET
from tests.integration.every_table import (
    ROWS,
    check_every_table,
    fresh_database,
    migrate_filling_every_table,
    revisions,
)

T0 = datetime(2026, 3, 2, 2, 0)  # naive UTC, as the UTC columns store it


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own, at no revision."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


def _insert(conn: sa.Connection, table: str, **values: Any) -> None:
    columns = ", ".join(values)
    marks = ", ".join(f":{k}" for k in values)
    params = {
        k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v for k, v in values.items()
    }
    conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"), params)


def _task(conn: sa.Connection, task_id: int, kind: str, status: str, **values: Any) -> None:
    event = f"e{task_id}"
    payload = {"township": "大兴镇", "category": "c", "summary": "s", "channel": "hotline"}
    if kind == "clue":
        payload = {
            "township": "大兴镇",
            "subject": {"name": "赵德明", "unit": "大兴村委会", "rank": "village"},
            "category": "c",
            "summary": "s",
        }
    _insert(
        conn,
        "events",
        id=event,
        source_id=1,
        external_id=event,
        kind=kind,
        ledger_no=f"L-{task_id}",
        received_at=T0,
        accepted_at=T0,
        content_hash="h",
        payload=payload,
        status="dispatched",
        relay_attempts=0,
    )
    row = {
        "id": task_id,
        "event_id": event,
        "kind": kind,
        "ledger_no": f"L-{task_id}",
        "status": status,
        "zone_code": "Z1",
        "handler_unit": "CGJD-JW",
        "verifier_unit": "SHI1",
        "rule": "r",
        "reason": "r",
        "recused_logins": [],
        "received_at": T0,
        "created_at": T0,
        "dispatched_at": T0 + timedelta(hours=1),
        "updated_at": T0,
        "version": 3,
        "assisting_units": [],
        "assisting_logins": [],
        "resolve_due_at": T0 + timedelta(days=30),
    }
    row.update(values)
    _insert(conn, "tasks", **row)
    _insert(
        conn,
        "task_history",
        task_id=task_id,
        at=T0,
        actor="system:routing",
        move="dispatch",
        to_status="dispatched",
        note="",
    )


def test_every_revision_migrates_with_data_in_the_tables_and_0004_gives_clues_their_stages(
    fresh_url: str,
) -> None:
    upgrade(fresh_url, "0003")
    engine = get_engine(fresh_url)
    verified = T0 + timedelta(days=10)
    old = {"case_filed": True, "disciplined_count": 2}
    with engine.begin() as conn:
        _insert(
            conn,
            "sources",
            id=1,
            name="s",
            kinds="clue,complaint",
            token_hash="t",
            rate_per_second=1.0,
            burst=1,
            active=True,
            created_at=T0,
        )
        _task(conn, 1, "clue", "accepted")  # an open clue: in its disposition
        _task(
            conn,
            2,
            "clue",
            "closed",
            outcome={"disposition": "preliminary_verification", **old},
            verified_at=verified,
            closed_at=verified,
            close_reason="verified",
        )
        _task(
            conn,
            3,
            "clue",
            "closed",
            outcome={"disposition": "hold", "case_filed": False, "disciplined_count": 0},
            verified_at=verified,
            closed_at=verified,
            close_reason="verified",
        )
        _task(
            conn,
            4,
            "complaint",
            "suspended",
            suspended_from="accepted",
            paused_workdays=3,
            paused_seconds=0.0,
            clock_used_seconds=7200.0,
            extensions_used=1,
        )
        _insert(
            conn,
            "task_history",
            task_id=1,
            at=T0,
            actor="x",
            move="designate",
            to_status="dispatched",
            note="",
        )

    upgrade(fresh_url, secret_key=TEST_SECRET)  # to head, with what only the key can fill in

    with engine.connect() as conn:
        tasks = {r.id: r for r in conn.execute(sa.text("SELECT * FROM tasks ORDER BY id"))}
        stages = [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT task_id, stage, result FROM clue_stages ORDER BY task_id, id")
            )
        ]
        keys = dict(conn.execute(sa.text("SELECT id, subject_key FROM events")).all())
    assert len(tasks) == 4
    assert (tasks[1].stage, tasks[1].accept_run, tasks[1].resolve_run) == ("disposition", 2, 1)
    assert (tasks[2].status, tasks[2].stage) == ("closed", "case")
    assert (tasks[3].status, tasks[3].closed_at, tasks[3].stage) == ("held", None, "disposition")
    review = tasks[3].review_due_at
    review = review if isinstance(review, datetime) else datetime.fromisoformat(str(review))
    assert review.replace(tzinfo=None) == verified + timedelta(days=91)
    assert (tasks[4].channel, tasks[4].resolve_run) == ("hotline", 2)
    pauses = tasks[4].clock_pauses
    pauses = json.loads(pauses) if isinstance(pauses, str) else pauses
    assert pauses == {"resolve": {"workdays": 3, "seconds": 0.0, "used": 7200.0, "kind": "working"}}
    assert stages == [
        (1, "disposition", None),
        (2, "disposition", "preliminary_verification"),
        (2, "preliminary_verification", "case"),
        (2, "case", "concluded"),
        (3, "disposition", "held"),
    ]
    assert keys["e1"] and keys["e1"] == keys["e2"] and keys["e4"] is None  # the same subject, hashed
    with engine.connect() as conn:
        head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert head == "0009"


def test_0005_reads_the_report_history_back_from_the_rows(fresh_url: str) -> None:
    """Responses, hand-overs, the unit on each history row and the feedback answers, from the past."""
    upgrade(fresh_url, "0004")
    engine = get_engine(fresh_url)
    accepted, designated, answered = T0 + timedelta(hours=2), T0 + timedelta(days=1), T0 + timedelta(days=8)
    with engine.begin() as conn:
        _insert(conn, "sources", id=1, name="s", kinds="complaint", token_hash="t", rate_per_second=1.0,
                burst=1, active=True, created_at=T0)  # fmt: skip
        # accepted on time, then designated to another unit, which has it now
        _task(conn, 1, "complaint", "accepted", accept_due_at=T0 + timedelta(days=1), handler_unit="FDX-JW")
        for at, move, to in ((accepted, "accept", "accepted"), (designated, "designate", "dispatched"),
                             (designated + timedelta(hours=1), "accept", "accepted")):  # fmt: skip
            _insert(conn, "task_history", task_id=1, at=at, actor="x", move=move, to_status=to, note="")
        # answered unsatisfied, reopened, answered again and closed
        _task(conn, 2, "complaint", "closed", closed_at=answered, close_reason="satisfied",
              feedback_resolved=True, feedback_rating="satisfied")  # fmt: skip
        for at, move, to in ((T0 + timedelta(days=3), "feedback_reopen", "reopened"),
                             (answered, "feedback_close", "closed")):  # fmt: skip
            _insert(
                conn, "task_history", task_id=2, at=at, actor="source:s", move=move, to_status=to, note=""
            )

    upgrade(fresh_url, secret_key=TEST_SECRET)

    with engine.connect() as conn:
        tasks = {r.id: r for r in conn.execute(sa.text("SELECT * FROM tasks ORDER BY id"))}
        units = (
            conn.execute(sa.text("SELECT handler_unit FROM task_history WHERE task_id = 1 ORDER BY at, id"))
            .scalars()
            .all()
        )
        due = conn.execute(
            sa.text("SELECT due_at FROM task_history WHERE task_id = 1 ORDER BY at DESC, id DESC LIMIT 1")
        ).scalar_one()
        answers = [tuple(r) for r in conn.execute(
            sa.text("SELECT task_id, rating, resolved FROM feedback_answers ORDER BY answered_at")
        )]  # fmt: skip
        conn.execute(sa.text("INSERT INTO notifications (unit_code, task_id, kind, message, created_at, "
                             "webhook_status, webhook_attempts, link) VALUES ('SHI1', NULL, 'report', 'm', "
                             "'2026-10-01 00:00:00', 'none', 0, '/reports/1')"))  # fmt: skip
    assert str(tasks[1].responded_at)[:19] == str(accepted)[:19] and tasks[1].responded_on_time
    assert str(tasks[1].handler_since)[:19] == str(designated)[:19]
    assert units == [None, None, "FDX-JW", "FDX-JW"]  # before the hand-over: not known
    assert due is not None  # the open task's latest row knows its running deadline
    assert answers == [(2, "unsatisfied", None), (2, "satisfied", True)]


def test_upgrading_twice_changes_nothing(fresh_url: str) -> None:
    upgrade(fresh_url, secret_key=TEST_SECRET)
    upgrade(fresh_url, secret_key=TEST_SECRET)
    with get_engine(fresh_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM clue_stages")).scalar_one() == 0


def test_the_models_and_the_migrations_describe_the_same_schema(fresh_url: str) -> None:
    """Alembic's autogenerate finds nothing to add: head is what the models say (dropped columns
    that additive migrations keep are the only difference allowed)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    upgrade(fresh_url)
    with get_engine(fresh_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    kept = {"paused_workdays", "paused_seconds", "clock_used_seconds", "clock_started_at"}
    # beside the models: the pg_trgm GIN indexes (0006, 0008), SQLite's FTS5 table (0006), the urgency
    # expression index (0007)
    search = {
        "ix_tasks_summary_trgm", "ix_tasks_ledger_no_trgm", "ix_tasks_urgency", "ix_tasks_summary_grams",
        "ix_tasks_assisting_units_trgm", "ix_tasks_assisting_logins_trgm",
    }  # fmt: skip

    def expected(d: Any) -> bool:
        if d[0] == "remove_column" and d[3].name in kept:
            return True
        if d[0] == "remove_index" and d[1].name in search:
            return True
        return d[0] == "remove_table" and d[1].name.startswith("tasks_fts")

    meaningful = [d for d in diff if not expected(d)]
    assert meaningful == [], meaningful


def test_the_inbox_index_is_on_the_expressions_the_inbox_sorts_by() -> None:
    """0007 froze the ordering's SQL; the index serves the inbox only while the query says the same."""
    import importlib

    from dispatcher.tasks.queries import URGENCY_SQL, due_sql

    frozen = importlib.import_module("dispatcher.migrations.versions.0007_inbox_urgency_index")
    assert frozen.URGENCY_SQL == URGENCY_SQL
    assert {d: due_sql(d) for d in ("postgresql", "sqlite")} == frozen.DUE_SQL


def test_from_the_first_revision_to_head_every_table_keeps_its_rows(fresh_url: str) -> None:
    """0001 with a row in each of its tables, then one revision at a time, each step filling the
    tables it created: at head every table holds a row and none inserted earlier is lost or changed."""
    inserted, created_in = migrate_filling_every_table(fresh_url)

    assert created_in["ledger_counters"] == "0001" and created_in["alert_events"] == "0009"
    assert {row.table for row in inserted} == set(ROWS)  # each table of ROWS appeared in some step
    problems = check_every_table(fresh_url, inserted, created_in)
    assert problems == [], "\n".join(problems)
    with get_engine(fresh_url).connect() as conn:
        head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        summary = conn.execute(sa.text("SELECT summary FROM tasks WHERE id = 1")).scalar_one()
        roles = conn.execute(sa.text("SELECT roles FROM users WHERE id = 1")).scalar_one()
    assert head == revisions(fresh_url)[-1]
    assert summary == "路灯坏了三个月没人修"  # 0006 read it from the event of 0001
    assert (json.loads(roles) if isinstance(roles, str) else roles) == ["handler"]
