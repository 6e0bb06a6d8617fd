"""clue stages, clock starts and runs, acknowledgements, channels, subject keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:00:00

Additive: new columns and the ``clue_stages`` table; nothing is dropped. ``paused_workdays``,
``paused_seconds``, ``clock_used_seconds`` and ``clock_started_at`` stay in the schema but are no
longer written (the clocks keep their starts and pauses per clock now).

Data: every clock learns when its run started and which run it is; a suspended task's pause is
kept per clock; complaints learn their channel; existing clues get their stages — an open clue is
in its disposition, a closed one is concluded with the stages its old outcome (disposition, case
filed, people disciplined) implies, and one whose disposition was "hold" is held, with a review
due a quarter after its verification.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dispatcher.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dispatcher.models.UTCDateTime
#: A held clue comes back for review this long after it was held (the policy's default).
HOLD_REVIEW = timedelta(days=91)


def upgrade() -> None:
    op.create_table(
        "clue_stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("started_at", UTC(), nullable=False),
        sa.Column("due_at", UTC(), nullable=True),
        sa.Column("submitted_at", UTC(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("decided_at", UTC(), nullable=True),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("result", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("clue_stages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clue_stages_task_id"), ["task_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_clue_stages_stage"), ["stage"], unique=False)
        batch_op.create_index(batch_op.f("ix_clue_stages_decided_at"), ["decided_at"], unique=False)

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("subject_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("subject_unit_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_events_subject_key"), ["subject_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_subject_unit_key"), ["subject_unit_key"], unique=False)

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feedback_resolved", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("review_due_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("accept_started_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("resolve_started_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("verify_started_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("acknowledge_due_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("accept_run", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("resolve_run", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("verify_run", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("clock_pauses", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tasks_stage"), ["stage"], unique=False)

    _migrate_rows(op.get_bind())


# --- the data --------------------------------------------------------------------------------------

_tasks = sa.table(
    "tasks",
    sa.column("id", sa.Integer),
    sa.column("event_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("received_at", sa.DateTime),
    sa.column("created_at", sa.DateTime),
    sa.column("dispatched_at", sa.DateTime),
    sa.column("submitted_at", sa.DateTime),
    sa.column("verified_at", sa.DateTime),
    sa.column("closed_at", sa.DateTime),
    sa.column("close_reason", sa.String),
    sa.column("suspended_from", sa.String),
    sa.column("outcome", sa.JSON),
    sa.column("resolve_due_at", sa.DateTime),
    sa.column("paused_workdays", sa.Integer),
    sa.column("paused_seconds", sa.Float),
    sa.column("clock_used_seconds", sa.Float),
    sa.column("clock_started_at", sa.DateTime),
    sa.column("extensions_used", sa.Integer),
    sa.column("channel", sa.String),
    sa.column("stage", sa.String),
    sa.column("review_due_at", sa.DateTime),
    sa.column("accept_started_at", sa.DateTime),
    sa.column("resolve_started_at", sa.DateTime),
    sa.column("verify_started_at", sa.DateTime),
    sa.column("accept_run", sa.Integer),
    sa.column("resolve_run", sa.Integer),
    sa.column("clock_pauses", sa.JSON),
    sa.column("next_check_at", sa.DateTime),
)
_events = sa.table("events", sa.column("id", sa.String), sa.column("payload", sa.JSON))
_history = sa.table(
    "task_history",
    sa.column("task_id", sa.Integer),
    sa.column("to_status", sa.String),
    sa.column("move", sa.String),
)
_stages = sa.table(
    "clue_stages",
    sa.column("task_id", sa.Integer),
    sa.column("stage", sa.String),
    sa.column("started_at", sa.DateTime),
    sa.column("due_at", sa.DateTime),
    sa.column("submitted_at", sa.DateTime),
    sa.column("outcome", sa.JSON),
    sa.column("decided_at", sa.DateTime),
    sa.column("decided_by", sa.String),
    sa.column("result", sa.String),
)

#: The clock each state ran before this revision (one at a time).
_RAN = {"dispatched": "accept", "accepted": "resolve", "rejected": "resolve", "reopened": "resolve",
        "submitted": "verify"}  # fmt: skip


def _migrate_rows(bind: sa.engine.Connection) -> None:
    dispatches = dict(
        bind.execute(
            sa.select(_history.c.task_id, sa.func.count())
            .where(_history.c.to_status == "dispatched", _history.c.move != "resume")
            .group_by(_history.c.task_id)
        ).all()
    )
    channels = {
        event_id: (payload or {}).get("channel")
        for event_id, payload in bind.execute(
            sa.select(_events.c.id, _events.c.payload).where(
                _events.c.id.in_(sa.select(_tasks.c.event_id).where(_tasks.c.kind == "complaint"))
            )
        ).all()
    }
    for row in bind.execute(sa.select(_tasks)).mappings().all():
        values = _clock_values(row, dispatches.get(row["id"], 0))
        if row["kind"] == "complaint" and channels.get(row["event_id"]) in ("online", "station", "hotline"):
            values["channel"] = channels[row["event_id"]]
        if row["kind"] == "clue":
            values.update(_clue_stages(bind, row))
        bind.execute(sa.update(_tasks).where(_tasks.c.id == row["id"]).values(**values))


def _clock_values(row: Any, dispatches: int) -> dict[str, Any]:
    status = row["status"]
    ran = _RAN.get(row["suspended_from"] if status == "suspended" else status)
    resumed = row["clock_started_at"]  # after a pause: where the running clock was deemed to start

    def start(clock: str, otherwise: Any) -> Any:
        return resumed if ran == clock and resumed else otherwise

    values: dict[str, Any] = {
        "accept_run": max(1, dispatches),
        "resolve_run": (row["extensions_used"] or 0) + 1,
        "accept_started_at": start("accept", row["dispatched_at"] or row["created_at"]),
        "resolve_started_at": start("resolve", row["received_at"]),
        "verify_started_at": start("verify", row["submitted_at"]),
    }
    if status == "suspended" and ran is not None and row["paused_workdays"] is not None:
        seconds = row["paused_seconds"] or 0.0
        kind = "calendar" if seconds > 0 and not row["paused_workdays"] else "working"
        used = row["clock_used_seconds"] or 0.0
        values["clock_pauses"] = {ran: {"workdays": row["paused_workdays"], "seconds": seconds, "used": used,
                                        "kind": kind}}  # fmt: skip
    return values


def _clue_stages(bind: sa.engine.Connection, row: Any) -> dict[str, Any]:
    """The stages an existing clue went through, as far as its old outcome tells."""
    outcome = row["outcome"] or {}
    disposition = outcome.get("disposition")
    task_id, status = row["id"], row["status"]
    first = {
        "task_id": task_id,
        "stage": "disposition",
        "started_at": row["received_at"],
        "due_at": row["resolve_due_at"],
        "submitted_at": row["submitted_at"] if disposition else None,
        "outcome": {"disposition": disposition} if disposition else None,
    }
    if status != "closed" or not disposition:
        bind.execute(sa.insert(_stages).values(**first))
        return {"stage": "disposition"}
    decided = row["verified_at"] or row["closed_at"]
    started = decided or row["received_at"]

    def record(**values: Any) -> None:
        bind.execute(sa.insert(_stages).values(decided_at=decided, decided_by="migration", **values))

    if disposition == "hold":  # 暂存待查 is not concluded: it comes back for review
        record(**first, result="held")
        review = decided + HOLD_REVIEW if decided else None
        return {"stage": "disposition", "status": "held", "closed_at": None, "close_reason": None,
                "review_due_at": review, "next_check_at": review}  # fmt: skip
    if disposition == "close_out":
        record(**first, result="concluded")
        return {"stage": "disposition"}
    case_filed = bool(outcome.get("case_filed"))
    record(**first, result=disposition)
    found = {"result": "case_filed" if case_filed else "clarified"}
    record(task_id=task_id, stage=disposition, started_at=started, submitted_at=decided, outcome=found,
           result="case" if case_filed else "concluded")  # fmt: skip
    if not case_filed:
        return {"stage": disposition}
    disciplined = {"disciplined_count": int(outcome.get("disciplined_count") or 0)}
    record(task_id=task_id, stage="case", started_at=started, submitted_at=decided, outcome=disciplined,
           result="concluded")  # fmt: skip
    return {"stage": "case"}


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_stage"))
        for column in ("clock_pauses", "verify_run", "resolve_run", "accept_run", "acknowledged_at",
                       "acknowledge_due_at", "verify_started_at", "resolve_started_at", "accept_started_at",
                       "review_due_at", "stage", "channel", "feedback_resolved"):  # fmt: skip
            batch_op.drop_column(column)
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_subject_unit_key"))
        batch_op.drop_index(batch_op.f("ix_events_subject_key"))
        batch_op.drop_column("subject_unit_key")
        batch_op.drop_column("subject_key")
    op.drop_table("clue_stages")
