"""monthly rhythm: schedule runs, reports, meetings, trainings; what the report reads of the past

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 14:00:00

Additive: new tables (``schedule_runs``, ``reports``, ``meetings``, ``meeting_decisions``,
``trainings``, ``training_attendance``, ``feedback_answers``), new nullable columns, and
``notifications.task_id`` made nullable (a report's announcement is about no task). Nothing is
dropped or renamed.

Data, as far as the rows tell:
- ``tasks.responded_at`` is the first ``accept`` in the history, ``responded_on_time`` whether it
  came by the accept deadline the task has now (for a task redispatched before this revision,
  that is its latest run's);
- ``tasks.handler_since`` is the last (re)dispatch in the history;
- ``task_history.handler_unit`` is the task's handling unit on the rows since that dispatch
  (earlier rows: unknown, NULL); ``due_at`` is set on each open task's latest row only;
- ``feedback_answers`` gets one row per feedback move in the history (``resolved`` is known for the
  latest answer only).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dispatcher.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dispatcher.models.UTCDateTime
Str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("responded_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("responded_on_time", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("handler_since", UTC(), nullable=True))
        batch_op.create_index("ix_tasks_received_at", ["received_at"], unique=False)
        batch_op.create_index("ix_tasks_closed_at", ["closed_at"], unique=False)
    with op.batch_alter_table("task_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handler_unit", Str(length=64), nullable=True))
        batch_op.add_column(sa.Column("due_at", UTC(), nullable=True))
        batch_op.create_index("ix_task_history_task_at", ["task_id", "at"], unique=False)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column("task_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("link", Str(length=200), nullable=True))

    op.create_table(
        "feedback_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("answered_at", UTC(), nullable=False),
        sa.Column("rating", Str(length=32), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_feedback_answers_task_id", "feedback_answers", ["task_id"])
    op.create_index("ix_feedback_answers_answered_at", "feedback_answers", ["answered_at"])

    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", Str(length=32), nullable=False),
        sa.Column("period", Str(length=7), nullable=False),
        sa.Column("state", Str(length=16), nullable=False),
        sa.Column("trigger", Str(length=16), nullable=False),
        sa.Column("requested_by", Str(length=64), nullable=False),
        sa.Column("requested_at", UTC(), nullable=False),
        sa.Column("started_at", UTC(), nullable=True),
        sa.Column("finished_at", UTC(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job", "period", name="uq_schedule_run_job_period"),
    )
    op.create_index("ix_schedule_runs_period", "schedule_runs", ["period"])
    op.create_index("ix_schedule_runs_state", "schedule_runs", ["state"])

    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", Str(length=7), nullable=False),
        sa.Column("generated_at", UTC(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("charts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("period"),
    )

    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("zone_code", Str(length=64), nullable=False),
        sa.Column("period", Str(length=7), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("agenda", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id"),
        sa.UniqueConstraint("zone_code", "period", name="uq_meeting_zone_period"),
    )
    op.create_table(
        "meeting_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner_unit", Str(length=64), nullable=False),
        sa.Column("due_at", UTC(), nullable=False),
        sa.Column("about_task_id", sa.Integer(), nullable=True),
        sa.Column("follow_up_task_id", sa.Integer(), nullable=False),
        sa.Column("decided_by", Str(length=64), nullable=False),
        sa.Column("decided_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"]),
        sa.ForeignKeyConstraint(["about_task_id"], ["tasks.id"]),
        sa.ForeignKeyConstraint(["follow_up_task_id"], ["tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("follow_up_task_id"),
    )
    op.create_index("ix_meeting_decisions_meeting_id", "meeting_decisions", ["meeting_id"])

    op.create_table(
        "trainings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_code", Str(length=64), nullable=False),
        sa.Column("period", Str(length=7), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("topic", Str(length=200), nullable=False),
        sa.Column("suggested_topic", Str(length=300), nullable=True),
        sa.Column("expected", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id"),
        sa.UniqueConstraint("unit_code", "period", name="uq_training_unit_period"),
    )
    op.create_index("ix_trainings_period", "trainings", ["period"])
    op.create_table(
        "training_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("training_id", sa.Integer(), nullable=False),
        sa.Column("login", Str(length=64), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("marked_by", Str(length=64), nullable=False),
        sa.Column("marked_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["training_id"], ["trainings.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("training_id", "login", name="uq_training_attendance"),
    )
    op.create_index("ix_training_attendance_training_id", "training_attendance", ["training_id"])

    _migrate_rows(op.get_bind())


_tasks = sa.table(
    "tasks",
    sa.column("id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("handler_unit", sa.String),
    sa.column("dispatched_at", sa.DateTime),
    sa.column("accept_due_at", sa.DateTime),
    sa.column("resolve_due_at", sa.DateTime),
    sa.column("verify_due_at", sa.DateTime),
    sa.column("close_reason", sa.String),
    sa.column("feedback_resolved", sa.Boolean),
    sa.column("responded_at", sa.DateTime),
    sa.column("responded_on_time", sa.Boolean),
    sa.column("handler_since", sa.DateTime),
)
_history = sa.table(
    "task_history",
    sa.column("id", sa.Integer),
    sa.column("task_id", sa.Integer),
    sa.column("at", sa.DateTime),
    sa.column("move", sa.String),
    sa.column("to_status", sa.String),
    sa.column("handler_unit", sa.String),
    sa.column("due_at", sa.DateTime),
)
_answers = sa.table(
    "feedback_answers",
    sa.column("task_id", sa.Integer),
    sa.column("answered_at", sa.DateTime),
    sa.column("rating", sa.String),
    sa.column("resolved", sa.Boolean),
)

#: The clocks that run in each state (``enums.RUNNING_CLOCKS`` at this revision).
_RUNNING = {
    "dispatched": ("accept_due_at", "resolve_due_at"),
    "accepted": ("resolve_due_at",),
    "rejected": ("resolve_due_at",),
    "reopened": ("resolve_due_at",),
    "submitted": ("verify_due_at",),
}
_HANDOVERS = ("dispatch", "designate", "route")


def _migrate_rows(bind: sa.engine.Connection) -> None:
    moves: dict[int, list[tuple[int, object, str, str]]] = {}
    query = sa.select(_history.c.id, _history.c.task_id, _history.c.at, _history.c.move, _history.c.to_status)
    for row in bind.execute(query.order_by(_history.c.task_id, _history.c.at, _history.c.id)):
        moves.setdefault(row.task_id, []).append((row.id, row.at, row.move, row.to_status))
    for task in bind.execute(sa.select(_tasks)).mappings().all():
        rows = moves.get(task["id"], [])
        accepts = [at for _, at, move, _ in rows if move == "accept"]
        handovers = [(hid, at) for hid, at, move, to in rows if move in _HANDOVERS and to == "dispatched"]
        since_id, since = handovers[-1] if handovers else (None, task["dispatched_at"])
        values: dict[str, object] = {"handler_since": since}
        if accepts:
            due = task["accept_due_at"]
            values.update(responded_at=accepts[0], responded_on_time=due is None or accepts[0] <= due)
        bind.execute(sa.update(_tasks).where(_tasks.c.id == task["id"]).values(**values))
        if since_id is not None and task["handler_unit"]:
            bind.execute(
                sa.update(_history)
                .where(_history.c.task_id == task["id"], _history.c.id >= since_id)
                .values(handler_unit=task["handler_unit"])
            )
        running = [task[c] for c in _RUNNING.get(task["status"], ()) if task[c] is not None]
        if rows and running:
            bind.execute(sa.update(_history).where(_history.c.id == rows[-1][0]).values(due_at=min(running)))
        answers = [(at, move) for _, at, move, _ in rows if move in ("feedback_close", "feedback_reopen")]
        for i, (at, move) in enumerate(answers):
            last = i == len(answers) - 1
            rating = "unsatisfied" if move == "feedback_reopen" else task["close_reason"] or "satisfied"
            bind.execute(
                sa.insert(_answers).values(
                    task_id=task["id"], answered_at=at, rating=rating,
                    resolved=task["feedback_resolved"] if last else None,
                )
            )  # fmt: skip


def downgrade() -> None:
    for table in ("training_attendance", "trainings", "meeting_decisions", "meetings", "reports",
                  "schedule_runs", "feedback_answers"):  # fmt: skip
        op.drop_table(table)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("link")
    with op.batch_alter_table("task_history", schema=None) as batch_op:
        batch_op.drop_index("ix_task_history_task_at")
        batch_op.drop_column("due_at")
        batch_op.drop_column("handler_unit")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_closed_at")
        batch_op.drop_index("ix_tasks_received_at")
        for column in ("handler_since", "responded_on_time", "responded_at"):
            batch_op.drop_column(column)
