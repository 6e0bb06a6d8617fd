"""Backup and restore of the database: SQLite's online backup API, or pg_dump / pg_restore.

A backup is one file. On SQLite it is a database file copied page by page under one read
transaction (a consistent snapshot that includes what is still in the WAL, taken while the system
runs); on PostgreSQL it is ``pg_dump --format=custom`` (one snapshot as well). Connection
parameters reach pg_dump and pg_restore through libpq's environment variables (``PGPASSWORD``…),
never on a command line that ``ps`` shows.

The backup holds the personal data encrypted (identities, names in the org): it can only be read
after a restore with the same ``DISPATCH_SECRET_KEY``, which is kept apart from the backups.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from dispatcher.db import make_engine, normalize_url
from dispatcher.errors import ConfigError, Conflict, Unavailable, ValidationFailed
from dispatcher.migrate import alembic_config

#: The tables whose row counts a backup and a restore report (those that exist at the revision).
MAIN_TABLES = ("sources", "users", "events", "tasks", "task_history", "notifications", "attachments",
               "reports")  # fmt: skip
#: libpq's environment variable for each query parameter of a PostgreSQL URL we pass on.
_LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslpassword": "PGSSLPASSWORD",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


@dataclass(frozen=True)
class Summary:
    """What a database holds: its schema revision, the code's, and the main tables' row counts."""

    revision: str | None
    head: str
    known: bool  # the revision is one of the code's (else: a newer code wrote it)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def behind(self) -> bool:
        """The schema is older than the code's: ``dispatcher db upgrade`` brings it up."""
        return self.known and self.revision != self.head

    def describe(self) -> str:
        rows = ", ".join(f"{name} {n}" for name, n in self.counts.items())
        return f"schema revision {self.revision} (the code's: {self.head}); rows: {rows}"


def backup(url: str, file: Path, *, force: bool = False) -> Summary:
    """Write a backup of the database at ``url`` to ``file`` (refused if it exists, unless ``force``)."""
    if file.exists() and not force:
        raise Conflict(f"{file} exists: pass --force to overwrite it")
    if not file.parent.is_dir():
        raise ValidationFailed(f"no directory {file.parent} to write {file.name} in")
    partial = file.with_name(f".{file.name}.partial")
    try:
        sqlite = _is_sqlite(url)
        summary = _sqlite_backup(_sqlite_path(url), partial) if sqlite else _pg_backup(url, partial)
        os.replace(partial, file)
    finally:
        partial.unlink(missing_ok=True)
    return summary


def restore(url: str, file: Path, *, force: bool = False) -> Summary:
    """Replace the database at ``url`` by the backup in ``file``.

    Refused when the database holds rows (of any table but ``alembic_version``) unless ``force``.
    The file is checked whole before the database is touched; on PostgreSQL the restore is one
    transaction.
    """
    if not file.is_file():
        raise ValidationFailed(f"no backup file at {file}")
    if _is_sqlite(url):
        return _sqlite_restore(_sqlite_path(url), file, force=force)
    return _pg_restore(url, file, force=force)


# --- what a database holds --------------------------------------------------------------------------


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def summarize(conn: sa.Connection) -> Summary:
    """The schema revision and the main tables' row counts of the database behind ``conn``."""
    script = _script()
    head = script.get_current_head() or ""
    names = set(sa.inspect(conn).get_table_names())
    revision = None
    if "alembic_version" in names:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    known = revision in {s.revision for s in script.walk_revisions()}
    counts = {
        name: int(conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one())
        for name in MAIN_TABLES
        if name in names
    }
    return Summary(revision=revision, head=head, known=known, counts=counts)


def _filled_tables(conn: sa.Connection) -> list[str]:
    """The application's tables holding rows (not SQLite's search index, which an empty schema fills)."""
    from sqlmodel import SQLModel

    import dispatcher.models  # noqa: F401  (the tables of the metadata)

    names = sorted(set(sa.inspect(conn).get_table_names()) & set(SQLModel.metadata.tables))
    return [n for n in names if conn.execute(sa.text(f'SELECT 1 FROM "{n}" LIMIT 1')).first() is not None]


def _refuse_filled(conn: sa.Connection, force: bool) -> None:
    filled = _filled_tables(conn)
    if filled and not force:
        shown = ", ".join(filled[:3]) + (", …" if len(filled) > 3 else "")
        raise Conflict(
            f"the target database is not empty ({shown} hold rows): pass --force to replace its contents"
        )


@contextlib.contextmanager
def _connected(url: str) -> Iterator[sa.Connection]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    except sa.exc.OperationalError as exc:
        raise Unavailable(f"cannot reach the database: {_first_line(exc.orig or exc)}") from exc
    finally:
        engine.dispose()


def _first_line(exc: BaseException | str) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


# --- SQLite -----------------------------------------------------------------------------------------


def _is_sqlite(url: str) -> bool:
    return normalize_url(url).startswith("sqlite")


def _sqlite_path(url: str) -> Path:
    path = sa.engine.make_url(url).database
    if not path or path == ":memory:":
        raise ConfigError(f"{url} is not a database file to back up or restore")
    return Path(path)


def _sqlite_summary(path: Path) -> Summary:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return summarize(conn)
    finally:
        engine.dispose()


def _sqlite_backup(source: Path, target: Path) -> Summary:
    if not source.is_file():
        raise ValidationFailed(f"no database at {source}")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)  # in one step: one read transaction, the WAL's committed pages included
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        dst.close()
        src.close()
    summary = _sqlite_summary(target)
    if summary.revision is None:
        raise ValidationFailed(f"{source} has no schema: nothing to back up (run `dispatcher db upgrade`)")
    return summary


def _sqlite_restore(target: Path, file: Path, *, force: bool) -> Summary:
    try:
        src = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        try:
            check = src.execute("PRAGMA integrity_check").fetchone()[0]
            has_schema = src.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
        finally:
            src.close()
    except sqlite3.DatabaseError as exc:
        raise ValidationFailed(f"{file} is not a SQLite backup: {_first_line(exc)}") from exc
    if check != "ok":
        raise ValidationFailed(f"{file} is damaged: {_first_line(check)}")
    if not has_schema:
        raise ValidationFailed(f"{file} is not a Zone Dispatch backup (no alembic_version table)")
    if target.exists():
        engine = sa.create_engine(f"sqlite:///{target}", connect_args={"timeout": 30})
        try:
            with engine.connect() as conn:
                _refuse_filled(conn, force)
        finally:
            engine.dispose()
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)  # replaces every page of the target, under its write lock
    finally:
        dst.close()
        src.close()
    return _sqlite_summary(target)


# --- PostgreSQL -------------------------------------------------------------------------------------


def libpq_env(url: str) -> dict[str, str]:
    """The process environment with the URL's connection parameters as libpq variables."""
    parts = sa.engine.make_url(normalize_url(url))
    # nothing of the caller's own libpq settings (PGSERVICE, PGHOSTADDR…): the URL says where
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    given = {
        "PGHOST": parts.host,
        "PGPORT": str(parts.port) if parts.port else None,
        "PGUSER": parts.username,
        "PGPASSWORD": parts.password,
        "PGDATABASE": parts.database,
    }
    for key, value in parts.query.items():
        if key in _LIBPQ_ENV:
            given[_LIBPQ_ENV[key]] = value[-1] if isinstance(value, tuple) else value
    env.update({k: str(v) for k, v in given.items() if v})
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigError(
            f"{name} not found: install the PostgreSQL client tools (the server's major version or newer) "
            "and put them on PATH"
        )
    return path


def _run(argv: list[str], env: dict[str, str], what: str) -> str:
    """Run a client tool; its failure becomes one line (its first error line)."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
        raise ValidationFailed(f"{what}: {_first_line(errors[0] if errors else done.stderr)}")
    return done.stdout


def _pg_backup(url: str, target: Path) -> Summary:
    pg_dump = _tool("pg_dump")
    with _connected(url) as conn:
        summary = summarize(conn)
    if summary.revision is None:
        raise ValidationFailed("the database has no schema: nothing to back up (run `dispatcher db upgrade`)")
    argv = [pg_dump, "--format=custom", "--no-password", f"--file={target}"]
    _run(argv, libpq_env(url), "pg_dump failed")
    return summary


def _archive_tables(pg_restore: str, file: Path, env: dict[str, str]) -> set[str]:
    """The tables in a pg_dump archive, after reading it whole (a truncated file fails here)."""
    what = f"{file} is not a readable PostgreSQL backup"
    _run([pg_restore, "--file=/dev/null", str(file)], env, what)
    listing = _run([pg_restore, "--list", str(file)], env, what)
    # a TOC line: "215; 1259 16390 TABLE public tasks postgres"
    return {line.split()[5] for line in listing.splitlines() if " TABLE public " in line}


def _pg_restore(url: str, file: Path, *, force: bool) -> Summary:
    pg_restore = _tool("pg_restore")
    env = libpq_env(url)
    tables = _archive_tables(pg_restore, file, env)
    if "alembic_version" not in tables:
        raise ValidationFailed(f"{file} is not a Zone Dispatch backup (no alembic_version table)")
    with _connected(url) as conn:
        _refuse_filled(conn, force)
        # Tables the backup does not know (a later revision's) would survive --clean and make
        # `db upgrade` fail on creating them again: they go first.
        extra = set(sa.inspect(conn).get_table_names()) - tables
        for name in sorted(extra):
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
        conn.commit()
    # An empty --dbname makes pg_restore connect (rather than print SQL), to PGDATABASE.
    argv = [pg_restore, "--clean", "--if-exists", "--no-owner", "--no-acl", "--single-transaction",
            "--exit-on-error", "--no-password", "--dbname=", str(file)]  # fmt: skip
    _run(argv, env, "pg_restore failed")
    with _connected(url) as conn:
        return summarize(conn)
