"""``dispatcher db backup`` / ``db restore`` on SQLite and PostgreSQL, through the real command line.

The source database gets a row in every table (``every_table``: migrated from 0001 one revision at
a time, so the data migrations' rows are there too); it is backed up while in use and restored
into a database of its own, and every row of every table must come back as it was.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher.db import dispose_engines, get_engine
from dispatcher.migrate import upgrade
from tests.conftest import BACKENDS, TEST_SECRET
from tests.integration.every_table import (
    fresh_database,
    insert_rows,
    migrate_filling_every_table,
    revisions,
    table_names,
)
from tests.support import ROOT, child_env, dispatcher_cmd


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty databases of their own on the same backend: a source and a restore target."""
    with (
        fresh_database(request.param, tmp_path / "source") as source,
        fresh_database(request.param, tmp_path / "target") as target,
    ):
        yield source, target


def cli(url: str, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m dispatcher ARGS`` against the database at ``url``."""
    env = child_env(DISPATCH_DATABASE_URL=url, DISPATCH_SECRET_KEY=TEST_SECRET)
    if path is not None:
        env["PATH"] = path
    dispose_engines()  # no pooled connection of ours in the way of a restore
    return subprocess.run(
        dispatcher_cmd(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The failure as users see it: exit 1 and one line on stderr, no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def every_row(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row (all columns) of every table, alembic_version and SQLite's search index included."""
    engine = get_engine(url)
    with engine.connect() as conn:
        names = sorted(sa.inspect(conn).get_table_names())
        return {
            name: sorted((tuple(r) for r in conn.execute(sa.text(f'SELECT * FROM "{name}"'))), key=repr)
            for name in names
        }


def fill_at_head(url: str) -> None:
    """A migrated database with a row in every table, inserted at head."""
    upgrade(url)
    names = table_names(get_engine(url))  # before the write transaction: SQLite's readers would wait
    with get_engine(url).begin() as conn:
        insert_rows(conn, names, itertools.count(1))


def test_a_backup_taken_while_in_use_restores_every_row_of_every_table(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = databases
    migrate_filling_every_table(source)
    before = every_row(source)
    assert all(before[name] for name in table_names(get_engine(source))), "a table is empty"
    file = tmp_path / "dispatch.backup"

    reader = get_engine(source).connect()  # the system at work: a read transaction stays open
    try:
        reader.execute(sa.text("SELECT count(*) FROM tasks")).scalar_one()
        if source.startswith("sqlite"):  # the rows are still in the WAL, not yet in the main file
            wal = Path(sa.engine.make_url(source).database or "").with_name("dispatch.sqlite3-wal")
            assert wal.stat().st_size > 0
        made = subprocess.run(  # while the reader's transaction is open
            dispatcher_cmd("db", "backup", str(file)),
            env=child_env(DISPATCH_DATABASE_URL=source, DISPATCH_SECRET_KEY=TEST_SECRET),
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        reader.close()
    assert made.returncode == 0, made.stdout + made.stderr
    assert "schema revision 0009" in made.stdout and "tasks 3" in made.stdout, made.stdout
    assert "DISPATCH_SECRET_KEY" in made.stdout

    restored = cli(target, "db", "restore", str(file))

    assert restored.returncode == 0, restored.stdout + restored.stderr
    head = revisions(target)[-1]
    assert f"schema revision {head} (the code's: {head})" in restored.stdout, restored.stdout
    assert "tasks 3" in restored.stdout and "db upgrade" not in restored.stdout
    after = every_row(target)
    assert after.keys() == before.keys()
    for name in before:
        assert after[name] == before[name], f"table {name} differs after the restore"
    with get_engine(target).begin() as conn:  # the ids go on where the source's stopped
        conn.execute(sa.text("INSERT INTO oncall_actions (at, login, action, target, detail) "
                             "VALUES ('2026-03-03 00:00:00', 'ops', 'note', '-', '-')"))  # fmt: skip
        ids = conn.execute(sa.text("SELECT id FROM oncall_actions ORDER BY id")).scalars().all()
    assert len(ids) == 2 and ids[1] > ids[0]


def test_restore_refuses_a_database_that_holds_rows_unless_forced(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = databases
    fill_at_head(source)
    file = tmp_path / "dispatch.backup"
    assert cli(source, "db", "backup", str(file)).returncode == 0
    assert "--force" in one_error_line(cli(source, "db", "backup", str(file)))  # never overwritten
    upgrade(target)  # a migrated, empty database may be restored into
    assert cli(target, "db", "restore", str(file)).returncode == 0
    with get_engine(target).begin() as conn:
        conn.execute(sa.text("UPDATE tasks SET ledger_no = 'L-changed' WHERE id = 1"))

    refused = one_error_line(cli(target, "db", "restore", str(file)))

    assert "not empty" in refused and "--force" in refused, refused
    assert every_row(target)["tasks"] != every_row(source)["tasks"]  # nothing was touched
    forced = cli(target, "db", "restore", "--force", str(file))
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert every_row(target) == every_row(source)
    assert cli(source, "db", "backup", "--force", str(file)).returncode == 0


def test_a_damaged_backup_is_one_readable_line_and_changes_nothing(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = databases
    fill_at_head(source)
    good = tmp_path / "dispatch.backup"
    assert cli(source, "db", "backup", str(good)).returncode == 0
    garbage = tmp_path / "garbage.backup"
    garbage.write_bytes(b"this is not a backup\n" * 100)
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])

    for bad in (garbage, truncated, tmp_path / "missing.backup"):
        line = one_error_line(cli(target, "db", "restore", str(bad)))
        assert str(bad) in line, line

    assert table_names(get_engine(target)) == set()  # the target was never touched
    if source.startswith("postgresql"):
        line = one_error_line(cli(source, "db", "backup", str(tmp_path / "b2"), path="/nonexistent"))
        assert "pg_dump not found" in line, line
    unreachable = "postgresql://nobody@127.0.0.1:1/zd_none" if source.startswith("postgresql") else None
    if unreachable:
        line = one_error_line(cli(unreachable, "db", "backup", str(tmp_path / "b3")))
        assert "cannot reach the database" in line, line


def test_an_older_backup_restores_into_a_migrated_database_and_says_to_upgrade(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = databases
    upgrade(source, "0005")
    names = table_names(get_engine(source))
    with get_engine(source).begin() as conn:
        insert_rows(conn, names, itertools.count(1))
    file = tmp_path / "old.backup"
    assert cli(source, "db", "backup", str(file)).returncode == 0
    upgrade(target)  # at head, empty: the tables of 0006-0009 are not in the backup

    restored = cli(target, "db", "restore", str(file))

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "schema revision 0005" in restored.stdout and "dispatcher db upgrade" in restored.stdout
    upgraded = cli(target, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    with get_engine(target).connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0009"
        assert conn.execute(sa.text("SELECT count(*) FROM tasks")).scalar_one() == 3
