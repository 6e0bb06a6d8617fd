"""on-call: the actions log and the alerts' state and history

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 13:00:00

Additive: three new tables. ``oncall_actions`` records every on-call action (who, when, what);
``alert_states`` holds, per alert rule, whether it fires now (changed by compare-and-set, so a
start or an end is announced once, also across restarts); ``alert_events`` is each start and end
with its delivery to the on-call webhook. Indexes on the times the on-call figures read in
ranges (``events.accepted_at``, ``events.routed_at``, ``tasks.created_at``,
``supervision_orders.created_at``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dispatcher.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dispatcher.models.UTCDateTime
Str = sqlmodel.sql.sqltypes.AutoString
TIME_INDEXES = [
    ("events", "accepted_at"),
    ("events", "routed_at"),
    ("tasks", "created_at"),
    ("supervision_orders", "created_at"),
]


def upgrade() -> None:
    op.create_table(
        "oncall_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTC(), nullable=False),
        sa.Column("login", Str(length=64), nullable=False),
        sa.Column("action", Str(length=32), nullable=False),
        sa.Column("target", Str(length=64), nullable=False),
        sa.Column("detail", Str(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_oncall_actions_at", "oncall_actions", ["at"])
    op.create_table(
        "alert_states",
        sa.Column("rule", Str(length=32), nullable=False),
        sa.Column("firing", sa.Boolean(), nullable=False),
        sa.Column("since", UTC(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("rule"),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", Str(length=32), nullable=False),
        sa.Column("change", Str(length=8), nullable=False),
        sa.Column("at", UTC(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("delivery", Str(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_try_at", UTC(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_events_rule", "alert_events", ["rule"])
    op.create_index("ix_alert_events_at", "alert_events", ["at"])
    op.create_index("ix_alert_events_delivery", "alert_events", ["delivery"])
    # The on-call figures read time ranges: rates, routing latency, recent overdue orders.
    for table, column in TIME_INDEXES:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in TIME_INDEXES:
        op.drop_index(f"ix_{table}_{column}", table_name=table)
    op.drop_table("alert_events")
    op.drop_table("alert_states")
    op.drop_table("oncall_actions")
