"""workbench: server-side sessions, several roles, personal notifications, attachments, search

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 20:00:00

Additive: new tables (``web_sessions``, ``notification_reads``, ``attachments``,
``attachment_downloads``), new columns (``users.roles``, ``notifications.login``,
``tasks.summary``) and the search index of ``tasks.summary`` and ``ledger_no``: on PostgreSQL a
trigram GIN index (``pg_trgm``; ``CREATE EXTENSION IF NOT EXISTS`` — trusted since PostgreSQL 13,
so the database owner may create it), on SQLite an FTS5 table with the trigram tokenizer kept in
step by triggers.

Data: every user's ``roles`` is its ``role``; every task's ``summary`` is its event's summary (a
meeting's or training's is its reason).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dispatcher.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dispatcher.models.UTCDateTime
Str = sqlmodel.sql.sqltypes.AutoString

#: SQLite: the FTS5 table over tasks' summary and ledger number, kept in step by triggers.
_FTS_DELETE = (
    "INSERT INTO tasks_fts(tasks_fts, rowid, summary, ledger_no) "
    "VALUES ('delete', old.id, old.summary, old.ledger_no);"
)
_FTS_INSERT = "INSERT INTO tasks_fts(rowid, summary, ledger_no) VALUES (new.id, new.summary, new.ledger_no);"
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE tasks_fts USING fts5(summary, ledger_no, content='tasks', content_rowid='id', "
    "tokenize='trigram')",
    f"CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN {_FTS_INSERT} END",
    f"CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN {_FTS_DELETE} END",
    f"CREATE TRIGGER tasks_fts_update AFTER UPDATE OF summary, ledger_no ON tasks BEGIN {_FTS_DELETE} "
    f"{_FTS_INSERT} END",
]


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", Str(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("expires_at", UTC(), nullable=False),
        sa.Column("ended_at", UTC(), nullable=True),
        sa.Column("address", Str(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("roles", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("login", Str(length=64), nullable=True))
        batch_op.create_index("ix_notifications_login", ["login"], unique=False)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("summary", sa.Text(), nullable=True))

    op.create_table(
        "notification_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("login", Str(length=64), nullable=False),
        sa.Column("read_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("notification_id", "login", name="uq_notification_read"),
    )
    op.create_index("ix_notification_reads_notification_id", "notification_reads", ["notification_id"])
    op.create_index("ix_notification_reads_login", "notification_reads", ["login"])
    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("filename", Str(length=255), nullable=False),
        sa.Column("media_type", Str(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", Str(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", Str(length=64), nullable=False),
        sa.Column("uploaded_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_attachments_task_id", "attachments", ["task_id"])
    op.create_table(
        "attachment_downloads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attachment_id", sa.Integer(), nullable=False),
        sa.Column("login", Str(length=64), nullable=False),
        sa.Column("at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["attachment_id"], ["attachments.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_attachment_downloads_attachment_id", "attachment_downloads", ["attachment_id"])

    bind = op.get_bind()
    array = "json_build_array" if bind.dialect.name == "postgresql" else "json_array"
    bind.execute(sa.text(f"UPDATE users SET roles = {array}(role)"))
    summary = (
        "(SELECT e.payload ->> 'summary' FROM events e WHERE e.id = tasks.event_id)"
        if bind.dialect.name == "postgresql"
        else "(SELECT json_extract(e.payload, '$.summary') FROM events e WHERE e.id = tasks.event_id)"
    )
    bind.execute(sa.text(f"UPDATE tasks SET summary = COALESCE({summary}, reason)"))
    if bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_tasks_summary_trgm ON tasks USING gin (summary gin_trgm_ops)")
        op.execute("CREATE INDEX ix_tasks_ledger_no_trgm ON tasks USING gin (ledger_no gin_trgm_ops)")
    else:
        for statement in SQLITE_FTS:
            op.execute(statement)
        op.execute("INSERT INTO tasks_fts(tasks_fts) VALUES ('rebuild')")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_tasks_ledger_no_trgm")
        op.execute("DROP INDEX IF EXISTS ix_tasks_summary_trgm")
    else:
        for name in ("tasks_fts_update", "tasks_fts_delete", "tasks_fts_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS tasks_fts")
    for table in ("attachment_downloads", "attachments", "notification_reads", "web_sessions"):
        op.drop_table(table)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("summary")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_login")
        batch_op.drop_column("login")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("roles")
