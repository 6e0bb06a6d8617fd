"""Ledger numbers (台账编号): ``XS-2026-000042``, sequential per prefix and year, never reused.

The counter row is incremented inside the caller's transaction: if the transaction rolls
back (a duplicate, a crash), so does the increment, so numbers have no gaps and no repeats.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from dispatcher.enums import TaskKind
from dispatcher.models import LedgerCounter


def next_ledger_no(session: Session, kind: TaskKind, year: int) -> str:
    """The next number of ``kind`` in ``year``, counted inside the caller's transaction."""
    [number] = next_ledger_nos(session, kind, year, 1)
    return number


def next_ledger_nos(session: Session, kind: TaskKind, year: int, count: int) -> list[str]:
    """The next ``count`` numbers of ``kind`` in ``year``, in order: one statement, one row lock.

    An upsert that adds ``count`` and returns the new last value (the row is made on first use).
    Callers taking numbers of several kinds or years take them in sorted order (no deadlocks).
    """
    if count < 1:
        return []
    prefix = kind.ledger_prefix
    table = LedgerCounter.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(prefix=prefix, year=year, value=count)
    last = session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.prefix, table.c.year], set_={"value": table.c.value + count}
        ).returning(table.c.value)
    ).scalar_one()
    return [f"{prefix}-{year}-{value:06d}" for value in range(last - count + 1, last + 1)]
