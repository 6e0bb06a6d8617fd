"""Database tables (SQLModel). The database is the source of truth; the queue is transport.

Times are stored as UTC. Statuses are ``str`` enums stored as their values, so the lifecycle
table and the database speak the same words.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel

from dispatcher.enums import DeadlineState, EventStatus

#: The largest id, version or count a client may send: 2^53 − 1, the largest integer every JSON
#: reader carries exactly (JavaScript's ``Number.MAX_SAFE_INTEGER``), far below what the databases
#: store (2^63 − 1). Anything larger is refused with ``422`` naming the field.
MAX_JSON_INT = 2**53 - 1


def empty_list() -> list[Any]:
    """A new ``[]``. A Python function, not the builtin ``list``: pydantic inspects a default
    factory's signature on every model built, and reading a builtin's costs a parse each time
    (a tenth of the routing worker's time)."""
    return []


def empty_dict() -> dict[str, Any]:
    """A new ``{}`` (see ``empty_list``)."""
    return {}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite has no time zones)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Source(SQLModel, table=True):
    """An upstream system allowed to publish events (信息来源)."""

    __tablename__ = "sources"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    kinds: str = Field(max_length=128, description="comma-separated event kinds it may publish")
    token_hash: str = Field(max_length=64, unique=True)
    rate_per_second: float
    burst: int
    active: bool = True
    created_at: datetime = utc_column()

    @property
    def kind_set(self) -> frozenset[str]:
        return frozenset(k for k in self.kinds.split(",") if k)


class User(SQLModel, table=True):
    """A member of staff (承办人, 审核人, 协作区组长, 值班, 管理员)."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=64, unique=True)
    unit_code: str = Field(max_length=64, index=True)
    #: The first of ``roles`` (kept for readers of the old single-role column).
    role: str = Field(max_length=32)
    #: Every role the person holds (DESIGN §8: a zone leader who also verifies).
    roles: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    token_hash: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=256)
    active: bool = True
    created_at: datetime = utc_column()


class WebSession(SQLModel, table=True):
    """A signed-in browser session, kept on the server so that logging out ends it for good."""

    __tablename__ = "web_sessions"

    #: SHA-256 of the session's random token (the cookie holds the token, never this table).
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = utc_column()
    expires_at: datetime = utc_column()
    ended_at: datetime | None = utc_column(nullable=True)
    address: str | None = Field(default=None, max_length=64)


class Event(SQLModel, table=True):
    """An accepted upstream event, with its outbox state (``relay_after``)."""

    __tablename__ = "events"
    __table_args__ = (sa.UniqueConstraint("source_id", "external_id", name="uq_events_source_external"),)

    id: str = Field(primary_key=True, max_length=32)
    source_id: int = Field(foreign_key="sources.id", index=True)
    external_id: str = Field(max_length=128)
    kind: str = Field(max_length=32, index=True)
    ledger_no: str = Field(max_length=32, unique=True)
    received_at: datetime = utc_column()
    accepted_at: datetime = utc_column(index=True)
    #: HMAC of the canonical body: tells a retry from a different event under the same key.
    content_hash: str = Field(max_length=64)
    #: The payload without personal identity (reporter, complainant, contact).
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    #: The identity fields, encrypted (Fernet) with a key derived from the secret key.
    identity_enc: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    status: str = Field(default=EventStatus.accepted, max_length=32, index=True)
    #: Outbox: when the relay should enqueue this event again if it is still not routed (NULL once routed).
    relay_after: datetime | None = utc_column(nullable=True, index=True)
    relay_attempts: int = 0
    routed_at: datetime | None = utc_column(nullable=True, index=True)
    #: 廉政档案: keyed hashes (never plain text) of the subject (name and unit) and of the unit an
    #: item is about, so that earlier items about the same person or unit can be found.
    subject_key: str | None = Field(default=None, max_length=64, index=True)
    subject_unit_key: str | None = Field(default=None, max_length=64, index=True)


class Task(SQLModel, table=True):
    """A unit of work for a handling unit (任务), or a triage item waiting for a person."""

    __tablename__ = "tasks"
    #: Covering indexes of the inbox's counts (``queries.state_tally``, migration 0008): each way a
    #: person sees tasks (their zone, their unit as handler or verifier) is counted from its index
    #: alone, the columns the other ways and the unit and zone filters test included.
    __table_args__ = (
        sa.Index("ix_tasks_zone_count", "zone_code", "status", "handler_unit"),
        sa.Index("ix_tasks_handler_count", "handler_unit", "status", "zone_code"),
        sa.Index("ix_tasks_verifier_count", "verifier_unit", "status", "handler_unit", "zone_code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: At most one task per event: a second delivery of the routing message creates nothing.
    event_id: str | None = Field(default=None, foreign_key="events.id", unique=True)
    kind: str = Field(max_length=32, index=True)
    ledger_no: str = Field(max_length=32, index=True)
    status: str = Field(max_length=32, index=True)
    zone_code: str | None = Field(default=None, max_length=64, index=True)
    township_code: str | None = Field(default=None, max_length=64)
    handler_unit: str | None = Field(default=None, max_length=64, index=True)
    verifier_unit: str | None = Field(default=None, max_length=64, index=True)
    #: Name of the routing rule that decided (``complaint_township``, ``cross_handling``, ``triage``…).
    rule: str = Field(max_length=64)
    #: Why, in words a zone leader can read.
    reason: str = Field(sa_column=Column(sa.Text, nullable=False))
    #: Staff logins that must never handle or verify this task (回避).
    recused_logins: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    received_at: datetime = utc_column(index=True)
    created_at: datetime = utc_column(index=True)
    dispatched_at: datetime | None = utc_column(nullable=True)
    updated_at: datetime = utc_column()
    #: Optimistic concurrency: every move bumps it; a stale writer loses.
    version: int = 1
    #: Who accepted it (接单人), once accepted.
    handler_login: str | None = Field(default=None, max_length=64)
    accepted_at: datetime | None = utc_column(nullable=True)
    #: 响应: the first acceptance, and whether it came by the accept deadline then in force (the
    #: monthly report's response rate; never changed afterwards).
    responded_at: datetime | None = utc_column(nullable=True)
    responded_on_time: bool | None = None
    #: Since when the current handling unit has the task (routing, designation, manual routing).
    handler_since: datetime | None = utc_column(nullable=True)
    submitted_at: datetime | None = utc_column(nullable=True)
    verified_at: datetime | None = utc_column(nullable=True)
    closed_at: datetime | None = utc_column(nullable=True, index=True)
    #: Why it closed: ``verified`` (clues), ``satisfied``, ``basically_satisfied``, ``no_response``.
    close_reason: str | None = Field(default=None, max_length=32)
    #: The state a suspended task resumes to.
    suspended_from: str | None = Field(default=None, max_length=32)
    #: The submitted outcome (办理结果), validated per kind.
    outcome: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    #: The requester's answer (回访): ``satisfied | basically_satisfied | unsatisfied``.
    feedback_rating: str | None = Field(default=None, max_length=32)
    #: The requester's own answer whether the matter was resolved (解决); None: not said.
    feedback_resolved: bool | None = None
    #: When an unanswered feedback request closes the task as "no response".
    feedback_due_at: datetime | None = utc_column(nullable=True, index=True)
    #: 增派协助: units and staff a zone leader added to help.
    assisting_units: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    assisting_logins: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    #: What the item is about (the event's summary, a meeting's or training's subject): shown in
    #: lists and searched by ``GET /tasks?q=``.
    summary: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    #: The channel a complaint came by (``online | station | hotline``): clocks may differ by it.
    channel: str | None = Field(default=None, max_length=16)
    #: A clue's current stage (``enums.Stage``); None for other kinds.
    stage: str | None = Field(default=None, max_length=32, index=True)
    #: A held clue (暂存待查) comes back for review at this time.
    review_due_at: datetime | None = utc_column(nullable=True)
    # -- supervision clocks (限期督办) -----------------------------------------------------
    accept_due_at: datetime | None = utc_column(nullable=True)
    resolve_due_at: datetime | None = utc_column(nullable=True)
    verify_due_at: datetime | None = utc_column(nullable=True)
    #: When each clock's current run is deemed to have started (paused time excluded): the
    #: warning falls at the policy's share of the time from here.
    accept_started_at: datetime | None = utc_column(nullable=True)
    resolve_started_at: datetime | None = utc_column(nullable=True)
    verify_started_at: datetime | None = utc_column(nullable=True)
    #: 受理告知: by when a named reporter of a clue must be told it was accepted, and when it was.
    acknowledge_due_at: datetime | None = utc_column(nullable=True)
    acknowledged_at: datetime | None = utc_column(nullable=True)
    #: Which run of each clock this is (a redispatch, an approved extension, a clue's next stage,
    #: a resubmission start a new one): its steps are named ``resolve#<run>.…`` and taken once.
    accept_run: int = 1
    resolve_run: int = 1
    verify_run: int = 1
    #: ``on_time | warning | overdue | escalated``: the worst of the running clocks.
    deadline_state: str = Field(default=DeadlineState.on_time, max_length=16, index=True)
    escalation_level: int = 0
    extensions_used: int = 0
    #: While suspended: per paused clock, what it had left and had used (``supervision.clocks``).
    clock_pauses: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    #: The one column the deadline sweep reads: the next moment something may be due (NULL: nothing).
    next_check_at: datetime | None = utc_column(nullable=True, index=True)


class TaskHistory(SQLModel, table=True):
    """Append-only record of every move of a task: who, when, from, to, note."""

    __tablename__ = "task_history"
    __table_args__ = (sa.Index("ix_task_history_task_at", "task_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    at: datetime = utc_column()
    actor: str = Field(max_length=64)
    #: The move (``accept``, ``submit``…); ``dispatch`` for the routing worker's first entry.
    move: str = Field(default="dispatch", max_length=32)
    from_status: str | None = Field(default=None, max_length=32)
    to_status: str = Field(max_length=32)
    note: str = Field(default="", sa_column=Column(sa.Text, nullable=False))
    #: The task as the move left it, so a report can tell how it stood at any past moment: its
    #: handling unit, and the deadline of its most pressing running clock (NULL: none runs).
    handler_unit: str | None = Field(default=None, max_length=64)
    due_at: datetime | None = utc_column(nullable=True)


class FeedbackAnswer(SQLModel, table=True):
    """One answer of the requester (回访): a task reopened and asked again has several."""

    __tablename__ = "feedback_answers"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    answered_at: datetime = utc_column(index=True)
    rating: str = Field(max_length=32)
    #: 解决: the requester's own answer; None when the platform did not ask.
    resolved: bool | None = None


class SupervisionOrder(SQLModel, table=True):
    """督办单: one step of supervision (warning, overdue, escalation) of one task — each exactly once."""

    __tablename__ = "supervision_orders"
    __table_args__ = (sa.UniqueConstraint("task_id", "step", name="uq_supervision_task_step"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    #: ``<clock>.<step>``: ``accept.warning``, ``resolve.overdue``, ``resolve.escalated.2``…
    step: str = Field(max_length=48)
    late_unit: str | None = Field(default=None, max_length=64)
    deadline: datetime = utc_column()
    #: Whole days past the deadline when the order was made (0 for a warning).
    days_over: int = 0
    #: Who was told: ``handler_unit``, ``zone_leader`` or ``commission``.
    notified: str = Field(max_length=32)
    created_at: datetime = utc_column(index=True)


class ClueStage(SQLModel, table=True):
    """One run of a clue's stage (处置意见, 谈话函询, 初步核实, 审查调查, 上报): its clock, what the
    handler submitted and the verifier approved (审批), and where the clue went next."""

    __tablename__ = "clue_stages"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    stage: str = Field(max_length=32, index=True)
    started_at: datetime = utc_column()
    due_at: datetime | None = utc_column(nullable=True)
    #: The submission that was approved (the latest one while the stage is open).
    submitted_at: datetime | None = utc_column(nullable=True)
    outcome: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    decided_at: datetime | None = utc_column(nullable=True, index=True)
    decided_by: str | None = Field(default=None, max_length=64)
    #: Where the approval led: the next stage, ``held`` or ``concluded`` (None while open).
    result: str | None = Field(default=None, max_length=32)


class Extension(SQLModel, table=True):
    """延期申请: a handler asks, a zone leader approves or refuses."""

    __tablename__ = "extensions"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    days: int
    reason: str = Field(sa_column=Column(sa.Text, nullable=False))
    requested_by: str = Field(max_length=64)
    requested_at: datetime = utc_column()
    #: ``pending | approved | refused``
    status: str = Field(default="pending", max_length=16)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = utc_column(nullable=True)
    note: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))


class Notification(SQLModel, table=True):
    """Something a unit must know (分办, 退回, 验单不通过, 重办, 指定): in its inbox and to its webhook."""

    __tablename__ = "notifications"

    id: int | None = Field(default=None, primary_key=True)
    unit_code: str = Field(max_length=64, index=True)
    #: A notification for one person (the handler of a task that was verified, rejected…); NULL:
    #: for the whole unit.
    login: str | None = Field(default=None, max_length=64, index=True)
    #: The task it is about (NULL for news about no task: a monthly report is ready).
    task_id: int | None = Field(default=None, foreign_key="tasks.id", index=True)
    kind: str = Field(max_length=32)
    message: str = Field(sa_column=Column(sa.Text, nullable=False))
    #: Where the reader goes to see it, when it is not a task (``/reports/3``).
    link: str | None = Field(default=None, max_length=200)
    created_at: datetime = utc_column()
    read_at: datetime | None = utc_column(nullable=True)
    #: Webhook delivery: ``none`` (no webhook), ``pending``, ``delivered``, ``failed``.
    webhook_status: str = Field(default="none", max_length=16, index=True)
    webhook_attempts: int = 0
    webhook_error: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    #: When the webhook relay should step in if no attempt happened (NULL: a minute after creation).
    webhook_next_at: datetime | None = utc_column(nullable=True, index=True)


class IdentityReveal(SQLModel, table=True):
    """Every time someone looked at a reporter's or complainant's identity (查看身份信息 is logged)."""

    __tablename__ = "identity_reveals"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    login: str = Field(max_length=64)
    at: datetime = utc_column()
    reason: str = Field(sa_column=Column(sa.Text, nullable=False))


class LedgerCounter(SQLModel, table=True):
    """Last ledger number given per prefix and year (登记台账); numbers are never reused."""

    __tablename__ = "ledger_counters"

    prefix: str = Field(primary_key=True, max_length=8)
    year: int = Field(primary_key=True)
    value: int = 0


class OrgVersion(SQLModel, table=True):
    """A loaded org directory. The newest row is the one in force; older rows are the audit trail."""

    __tablename__ = "org_versions"

    id: int | None = Field(default=None, primary_key=True)
    loaded_at: datetime = utc_column()
    source_name: str = Field(max_length=512)
    sha256: str = Field(max_length=64)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


# -- the monthly rhythm (DESIGN §7) ----------------------------------------------------------------


class ScheduleRun(SQLModel, table=True):
    """One run of a monthly job for one period: ``(job, period)`` is unique, so it happens once."""

    __tablename__ = "schedule_runs"
    __table_args__ = (sa.UniqueConstraint("job", "period", name="uq_schedule_run_job_period"),)

    id: int | None = Field(default=None, primary_key=True)
    #: ``monthly-report | monthly-dispatch | monthly-training``
    job: str = Field(max_length=32)
    #: ``YYYY-MM``
    period: str = Field(max_length=7, index=True)
    #: ``pending`` (asked for, waiting for a worker) → ``running`` → ``succeeded | failed``
    state: str = Field(max_length=16, index=True)
    #: ``cron`` (its trigger fired), ``catch_up`` (found missed at a start), ``manual`` (the CLI)
    trigger: str = Field(max_length=16)
    requested_by: str = Field(max_length=64)
    requested_at: datetime = utc_column()
    started_at: datetime | None = utc_column(nullable=True)
    finished_at: datetime | None = utc_column(nullable=True)
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    #: What it made (``{"report_id": 3}``, ``{"tasks": 29}``).
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Report(SQLModel, table=True):
    """月度报告: the figures of one period as of the end of its windows, with its charts."""

    __tablename__ = "reports"

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=7, unique=True)
    generated_at: datetime = utc_column()
    #: Every figure, by zone, unit and in total (``reports.build``); the exports are made from it.
    data: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    #: name → SVG
    charts: dict[str, str] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))


class Meeting(SQLModel, table=True):
    """月度调度会: one zone's meeting of one period, its ``DD-`` task and its agenda."""

    __tablename__ = "meetings"
    __table_args__ = (sa.UniqueConstraint("zone_code", "period", name="uq_meeting_zone_period"),)

    id: int | None = Field(default=None, primary_key=True)
    zone_code: str = Field(max_length=64)
    period: str = Field(max_length=7)
    task_id: int = Field(foreign_key="tasks.id", unique=True)
    #: Sections of items, each naming its task (``monthly.agenda``); shown per reader.
    agenda: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = utc_column()


class MeetingDecision(SQLModel, table=True):
    """A decision taken at a dispatch meeting: a follow-up task with an owner and a deadline."""

    __tablename__ = "meeting_decisions"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    text: str = Field(sa_column=Column(sa.Text, nullable=False))
    owner_unit: str = Field(max_length=64)
    due_at: datetime = utc_column()
    #: The task the decision is about, if any.
    about_task_id: int | None = Field(default=None, foreign_key="tasks.id")
    follow_up_task_id: int = Field(foreign_key="tasks.id", unique=True)
    decided_by: str = Field(max_length=64)
    decided_at: datetime = utc_column()


class Training(SQLModel, table=True):
    """月度培训: one unit's training of one period, its ``PX-`` task, topic and expected staff."""

    __tablename__ = "trainings"
    __table_args__ = (sa.UniqueConstraint("unit_code", "period", name="uq_training_unit_period"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_code: str = Field(max_length=64)
    period: str = Field(max_length=7, index=True)
    task_id: int = Field(foreign_key="tasks.id", unique=True)
    topic: str = Field(max_length=200)
    #: Drawn from last month's most frequent rejection, return and reopen reasons (None: nothing stood out).
    suggested_topic: str | None = Field(default=None, max_length=300)
    expected: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = utc_column()


class TrainingAttendance(SQLModel, table=True):
    """Who attended a training (签到), marked by themselves or by a handler of the unit."""

    __tablename__ = "training_attendance"
    __table_args__ = (sa.UniqueConstraint("training_id", "login", name="uq_training_attendance"),)

    id: int | None = Field(default=None, primary_key=True)
    training_id: int = Field(foreign_key="trainings.id", index=True)
    login: str = Field(max_length=64)
    present: bool = True
    marked_by: str = Field(max_length=64)
    marked_at: datetime = utc_column()


class NotificationRead(SQLModel, table=True):
    """Who has read which notification (a unit's notification is read person by person)."""

    __tablename__ = "notification_reads"
    __table_args__ = (sa.UniqueConstraint("notification_id", "login", name="uq_notification_read"),)

    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notifications.id", index=True)
    login: str = Field(max_length=64, index=True)
    read_at: datetime = utc_column()


class Attachment(SQLModel, table=True):
    """Evidence on a task (照片、文书): in the database, so every API replica and every backup has it."""

    __tablename__ = "attachments"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    filename: str = Field(max_length=255)
    #: Sniffed from the content (the name and the client's claim are not believed).
    media_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime = utc_column()


class AttachmentDownload(SQLModel, table=True):
    """Every download of an attachment: who and when."""

    __tablename__ = "attachment_downloads"

    id: int | None = Field(default=None, primary_key=True)
    attachment_id: int = Field(foreign_key="attachments.id", index=True)
    login: str = Field(max_length=64)
    at: datetime = utc_column()


class OncallAction(SQLModel, table=True):
    """What on-call staff did (retry a dead letter, purge one, retry a webhook, route by hand): who, when."""

    __tablename__ = "oncall_actions"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column(index=True)
    login: str = Field(max_length=64)
    #: ``dead_letter.retry | dead_letter.retry_all | dead_letter.purge | webhook.retry``
    action: str = Field(max_length=32)
    #: What it was done to (a message id, a notification id), or empty for "all".
    target: str = Field(default="", max_length=64)
    #: The outcome in words (``3 条已重新入队``).
    detail: str = Field(default="", max_length=500)


class AlertState(SQLModel, table=True):
    """Whether an alert rule is firing now; changed by compare-and-set, so a start or an end is
    announced once however many processes check (and a restart does not announce it again)."""

    __tablename__ = "alert_states"

    rule: str = Field(primary_key=True, max_length=32)
    firing: bool = False
    since: datetime | None = utc_column(nullable=True)
    message: str = Field(default="", sa_column=Column(sa.Text, nullable=False, server_default=""))


class AlertEvent(SQLModel, table=True):
    """One start (``fired``) or end (``cleared``) of an alert, and its delivery to the on-call webhook."""

    __tablename__ = "alert_events"

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(max_length=32, index=True)
    #: ``fired | cleared``
    change: str = Field(max_length=8)
    at: datetime = utc_column(index=True)
    message: str = Field(sa_column=Column(sa.Text, nullable=False))
    #: ``none`` (no webhook configured), ``pending``, ``delivered``, ``failed``
    delivery: str = Field(default="none", max_length=16, index=True)
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    next_try_at: datetime | None = utc_column(nullable=True)
