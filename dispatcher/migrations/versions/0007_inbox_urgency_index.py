"""inbox: an index on the order "most urgent first"

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 22:00:00

Additive: one expression index on exactly the expressions ``tasks.queries.ordering`` sorts by
(urgency, the running clock's deadline, id), so the default inbox of a million tasks reads its
first page from the index instead of sorting every row.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


#: The expressions as ``tasks.queries`` writes them at this revision (frozen here; a test compares).
URGENCY_SQL = (
    "(CASE WHEN status = 'closed' THEN 9 WHEN status = 'held' THEN 8"
    " WHEN deadline_state = 'escalated' THEN 0 WHEN deadline_state = 'overdue' THEN 1"
    " WHEN status = 'reopened' THEN 2 WHEN status = 'rejected' THEN 3 ELSE 4 END)"
)
_DUE = (
    "(CASE WHEN status = 'dispatched' THEN (CASE WHEN accept_due_at IS NULL OR resolve_due_at < accept_due_at"
    " THEN resolve_due_at ELSE accept_due_at END)"
    " WHEN status IN ('accepted', 'rejected', 'reopened') THEN resolve_due_at"
    " WHEN status = 'submitted' THEN verify_due_at ELSE NULL END)"
)
DUE_SQL = {
    "postgresql": f"COALESCE({_DUE}, TIMESTAMP '9999-12-31 00:00:00')",
    "sqlite": f"COALESCE({_DUE}, '9999-12-31 00:00:00')",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(f"CREATE INDEX ix_tasks_urgency ON tasks ({URGENCY_SQL}, {DUE_SQL[dialect]}, id)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_tasks_urgency")
