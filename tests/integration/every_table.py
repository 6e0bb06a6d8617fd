"""A row in every table: migrate one revision at a time, filling each table as its revision wrote it.

``ROWS`` names, per table, the values that mean something (keys, links between rows, the values
the data migrations read); every other NOT NULL column without a server default gets a value by
its reflected type (distinct, so unique constraints hold; foreign keys point at an existing row).
A table a new revision creates gets rows only once ``ROWS`` names it, so a revision that adds a
table without adding it here leaves that table empty — and ``check_every_table`` says which.

Used by the migration test (0001 → head with data) and the backup test (rows in every table),
with ``fresh_database``: an empty database of its own on either backend.
"""

from __future__ import annotations

import itertools
import os
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from dispatcher.db import dispose_engines, get_engine, normalize_url
from dispatcher.migrate import alembic_config, upgrade
from tests.conftest import PG_ADMIN_URL

T0 = datetime(2026, 3, 2, 2, 0)  # naive UTC, as the UTC columns store it

_PAYLOAD = {"township": "大兴镇", "category": "c", "summary": "路灯坏了三个月没人修", "channel": "hotline"}

# fmt: off
#: Per table (in the columns of the revision that created it): the rows to insert when it appears.
ROWS: dict[str, list[dict[str, Any]]] = {
    # 0001
    "ledger_counters": [{"prefix": "XS", "year": 2026, "value": 7}],
    "org_versions": [{"source_name": "org.yaml", "sha256": "a" * 64, "document": {"zones": ["Z1"]}}],
    "sources": [{"id": 1, "name": "hotline", "kinds": "clue,complaint", "active": True}],
    "users": [{"id": 1, "login": "wang", "unit_code": "SHI1", "role": "handler", "active": True}],
    "events": [
        {"id": f"e{i}", "source_id": 1, "external_id": f"x{i}", "kind": "complaint", "ledger_no": f"L-{i}",
         "payload": _PAYLOAD, "status": "dispatched", "relay_attempts": 0}
        for i in (1, 2, 3)
    ],
    "tasks": [
        {"id": i, "event_id": f"e{i}", "kind": "complaint", "ledger_no": f"L-{i}", "status": "dispatched",
         "zone_code": "Z1", "handler_unit": "SHI1", "recused_logins": [], "version": 1}
        for i in (1, 2, 3)
    ],
    "task_history": [{"task_id": 1, "actor": "system:routing", "to_status": "dispatched", "note": ""}],
    # 0002
    "identity_reveals": [{"task_id": 1, "login": "wang", "reason": "核实举报人身份"}],
    "notifications": [{"unit_code": "SHI1", "task_id": 1, "kind": "dispatched", "webhook_status": "none",
                       "webhook_attempts": 0}],
    # 0003
    "extensions": [{"task_id": 1, "days": 10, "requested_by": "wang", "status": "pending"}],
    "supervision_orders": [{"task_id": 1, "step": "accept_overdue", "days_over": 2, "notified": "SHI1"}],
    # 0004
    "clue_stages": [{"task_id": 2, "stage": "disposition"}],
    # 0005
    "feedback_answers": [{"task_id": 1, "rating": "satisfied", "resolved": True}],
    "schedule_runs": [{"job": "report", "period": "2026-03", "state": "done", "trigger": "cron",
                       "requested_by": "scheduler", "attempts": 1}],
    "reports": [{"period": "2026-03", "data": {"received": 3}, "charts": {}}],
    "meetings": [{"id": 1, "zone_code": "Z1", "period": "2026-03", "task_id": 2, "agenda": [1]}],
    "meeting_decisions": [{"meeting_id": 1, "text": "限期办结", "owner_unit": "SHI1", "about_task_id": 1,
                           "follow_up_task_id": 3, "decided_by": "wang"}],
    "trainings": [{"id": 1, "unit_code": "SHI1", "period": "2026-03", "task_id": 3, "topic": "信访办理",
                   "expected": ["wang"]}],
    "training_attendance": [{"training_id": 1, "login": "wang", "present": True, "marked_by": "wang"}],
    # 0006
    "web_sessions": [{"id": "sess-1", "user_id": 1, "address": "10.0.0.1"}],
    "notification_reads": [{"notification_id": 1, "login": "wang"}],
    "attachments": [{"task_id": 1, "filename": "a.pdf", "media_type": "application/pdf", "size": 9,
                     "sha256": "b" * 64, "content": b"%PDF-1.4\n", "uploaded_by": "wang"}],
    "attachment_downloads": [{"attachment_id": 1, "login": "wang"}],
    # 0009
    "oncall_actions": [{"login": "ops", "action": "requeue", "target": "e1", "detail": "3 messages"}],
    "alert_states": [{"rule": "relay_stuck", "firing": False, "message": ""}],
    "alert_events": [{"rule": "relay_stuck", "change": "start", "message": "m", "delivery": "sent",
                      "attempts": 1}],
}
# fmt: on


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """An empty database of its own, at no revision: a new SQLite file in ``directory``, or a new
    PostgreSQL database ``zd_mig_<pid>_<random>``, dropped afterwards."""
    if backend == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        try:
            yield f"sqlite:///{directory / 'dispatch.sqlite3'}"
        finally:
            dispose_engines()
        return
    assert PG_ADMIN_URL
    name = f"zd_mig_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalize_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = (
        sa.engine.make_url(normalize_url(PG_ADMIN_URL))
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    try:
        yield url
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Inserted:
    """A row this module inserted: where, its primary key, and the values ``ROWS`` gave it."""

    table: str
    key: dict[str, Any]
    values: dict[str, Any]


def revisions(url: str) -> list[str]:
    """Every revision, first to head."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def reflect(conn: sa.Connection, names: list[str]) -> sa.MetaData:
    metadata = sa.MetaData()
    with warnings.catch_warnings():  # the expression indexes (0007, 0008) are not reflected: not needed
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        metadata.reflect(conn, only=names)
    return metadata


def _generic(column: sa.Column[Any], n: int) -> Any:
    """A value of the column's type, distinct for each ``n``."""
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return n % 2 == 0
    if isinstance(kind, sa.Integer):
        return n
    if isinstance(kind, sa.Float | sa.Numeric):
        return float(n)
    if isinstance(kind, sa.DateTime):
        return T0 + timedelta(minutes=n)
    if isinstance(kind, sa.JSON):
        return {"n": n}
    if isinstance(kind, sa.LargeBinary):
        return f"bytes-{n}".encode()
    if isinstance(kind, sa.String):
        suffix = f"-{n}"
        length = kind.length or 64
        return column.name[: max(0, length - len(suffix))] + suffix
    raise TypeError(f"no generic value for {column.table.name}.{column.name} ({kind!r})")


def _needs_value(column: sa.Column[Any], table: sa.Table) -> bool:
    if column.nullable or column.server_default is not None:
        return False
    pk = list(table.primary_key.columns)
    return not (pk == [column] and isinstance(column.type, sa.Integer))  # the database numbers it


def insert_rows(conn: sa.Connection, tables: set[str], counter: itertools.count[int]) -> list[Inserted]:
    """Insert ``ROWS`` of these tables (parents first), the rest of each row filled by type."""
    metadata = reflect(conn, sorted(t for t in tables if t in ROWS))
    named = set(metadata.tables) & set(ROWS) & tables
    done = []
    for table in metadata.sorted_tables:
        if table.name not in named:
            continue  # a parent reflected for its foreign key
        for given in ROWS[table.name]:
            row = dict(given)
            for column in table.columns:
                if column.name in row or not _needs_value(column, table):
                    continue
                fk = next(iter(column.foreign_keys), None)
                if fk is not None:  # the first row of the parent table
                    row[column.name] = conn.execute(sa.select(fk.column).limit(1)).scalar_one()
                else:
                    row[column.name] = _generic(column, next(counter))
            result = conn.execute(table.insert().values(**row))
            pk = zip(table.primary_key.columns, result.inserted_primary_key, strict=True)
            key = {c.name: v for c, v in pk}
            done.append(Inserted(table.name, key, given))
    return done


def migrate_filling_every_table(url: str) -> tuple[list[Inserted], dict[str, str]]:
    """Migrate from the first revision to head one step at a time; after each step, insert rows
    into the tables that step created. Returns the rows inserted and the revision creating each table."""
    engine = get_engine(url)
    counter = itertools.count(1)
    created_in: dict[str, str] = {}
    inserted: list[Inserted] = []
    for revision in revisions(url):
        upgrade(url, revision)
        new = table_names(engine) - set(created_in)
        created_in.update(dict.fromkeys(new, revision))
        with engine.begin() as conn:
            inserted += insert_rows(conn, new, counter)
    return inserted, created_in


def _same(stored: Any, given: Any) -> bool:
    if isinstance(stored, datetime) and isinstance(given, datetime):
        return stored.replace(tzinfo=None) == given.replace(tzinfo=None)
    if isinstance(stored, memoryview):
        stored = stored.tobytes()
    return bool(stored == given)


def check_every_table(url: str, inserted: list[Inserted], created_in: dict[str, str]) -> list[str]:
    """What is wrong at head: an empty table (naming the revision whose step should fill it), a
    row inserted earlier that is gone or changed, a table holding fewer rows than were inserted."""
    engine = get_engine(url)
    problems = []
    with engine.connect() as conn:
        for name in sorted(table_names(engine)):
            count = conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            if count == 0:
                revision = created_in.get(name, "?")
                problems.append(
                    f"table {name} has no row: add one in revision {revision}'s step "
                    f"(ROWS[{name!r}] in tests/integration/every_table.py)"
                )
            ours = sum(1 for row in inserted if row.table == name)
            if count < ours:
                problems.append(f"table {name} holds {count} row(s), {ours} were inserted")
        metadata = reflect(conn, sorted({row.table for row in inserted}))
        for row in inserted:
            table = metadata.tables[row.table]
            where = [table.c[k] == v for k, v in row.key.items()]
            stored = conn.execute(sa.select(table).where(*where)).mappings().first()
            if stored is None:
                problems.append(f"{row.table} {row.key}: the row is gone")
                continue
            changed = {k: stored[k] for k, v in row.values.items() if not _same(stored[k], v)}
            if changed:
                problems.append(f"{row.table} {row.key}: changed {changed}, inserted {row.values}")
    return problems
