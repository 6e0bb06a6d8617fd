"""Ledger numbers (台账编号): ``XS-2026-000042``, sequential per prefix and year, never reused.

The counter row is incremented inside the caller's transaction: if the transaction rolls
back (a duplicate, a crash), so does the increment, so numbers have no gaps and no repeats.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from dispatcher.enums import TaskKind
from dispatcher.models import LedgerCounter


def next_ledger_no(session: Session, kind: TaskKind, year: int) -> str:
    """The next number of ``kind`` in ``year``, counted inside the caller's transaction."""
    prefix = kind.ledger_prefix
    table = LedgerCounter.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).values(prefix=prefix, year=year, value=0).on_conflict_do_nothing())
    value = session.execute(
        sa.update(table)
        .where(table.c.prefix == prefix, table.c.year == year)
        .values(value=table.c.value + 1)
        .returning(table.c.value)
    ).scalar_one()
    return f"{prefix}-{year}-{value:06d}"
