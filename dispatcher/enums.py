"""The words the database stores and the API speaks: one ``str`` enum per concept, one place each.

Every value is stored as it is written here (the lifecycle table, the queries and the API compare
the same strings). Chinese names for people are the web layer's (``dispatcher.web.labels``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class TaskKind(StrEnum):
    """What a task is about. The first three arrive from upstream (``events.schemas.EventKind``)."""

    clue = "clue"  #: 问题线索
    complaint = "complaint"  #: 群众投诉
    enterprise_request = "enterprise_request"  #: 企业诉求
    monthly_dispatch = "monthly_dispatch"  #: 月度调度会 (一月一调度)
    training = "training"  #: 月度培训 (一月一培训)
    follow_up = "follow_up"  #: 调度会决定事项: a meeting decision, with an owner and a deadline

    @property
    def ledger_prefix(self) -> str:
        """台账编号 prefix (DESIGN §4): ``XS-2026-000042``."""
        return _LEDGER_PREFIX[self]

    @property
    def asks_feedback(self) -> bool:
        """Whether a requester is asked for satisfaction (回访) after verification; the rest close."""
        return self in (TaskKind.complaint, TaskKind.enterprise_request)


_LEDGER_PREFIX: Mapping[TaskKind, str] = MappingProxyType(
    {
        TaskKind.clue: "XS",  # 线索
        TaskKind.complaint: "TS",  # 投诉
        TaskKind.enterprise_request: "QY",  # 企业
        TaskKind.monthly_dispatch: "DD",  # 调度
        TaskKind.training: "PX",  # 培训
        TaskKind.follow_up: "DD",  # 调度会决定事项 share the meeting's ledger
    }
)

#: The kinds upstream systems publish (the intake contract, DESIGN §4).
EVENT_KINDS: tuple[TaskKind, ...] = (TaskKind.clue, TaskKind.complaint, TaskKind.enterprise_request)


class Role(StrEnum):
    """What a staff member may do (DESIGN §8)."""

    handler = "handler"  #: 承办人: works the own unit's tasks
    verifier = "verifier"  #: 审核人: verifies the tasks the own unit verifies
    zone_leader = "zone_leader"  #: 协作区组长: the zones one leads
    oncall = "oncall"  #: 值班: the queue, triage, dead letters; personal data masked
    admin = "admin"  #: 管理员


class EventStatus(StrEnum):
    accepted = "accepted"  #: stored and queued, not yet routed (the outbox holds it)
    dispatched = "dispatched"  #: routed to a unit: a task exists
    triage = "triage"  #: routing could not decide: a triage task waits for a person


class TaskStatus(StrEnum):
    triage = "triage"  #: 待分办: waits for manual routing
    dispatched = "dispatched"  #: 已分办: sent to the handling unit
    accepted = "accepted"  #: 已接单
    submitted = "submitted"  #: 已办结待验: result submitted, waits for the verifier
    awaiting_feedback = "awaiting_feedback"  #: 待回访: verified, waits for the requester
    closed = "closed"  #: 已销号
    returned = "returned"  #: 已退回: the unit returned it as wrongly routed
    rejected = "rejected"  #: 验单不通过: back to the handler
    reopened = "reopened"  #: 不满意重办
    suspended = "suspended"  #: 中止: clock paused (a hearing, an audit awaited)
    held = "held"  #: 暂存待查: a clue whose disposition is "hold"; comes back for review, not closed


#: Statuses in which a task still counts as open work for its handling unit (rule 6, lists).
OPEN_TASK_STATUSES: tuple[TaskStatus, ...] = tuple(
    s for s in TaskStatus if s not in (TaskStatus.closed, TaskStatus.held)
)


class Stage(StrEnum):
    """The stages of a clue (监督执纪工作规则: four dispositions), each a supervised run of the lifecycle."""

    disposition = "disposition"  #: 处置意见: one of the four dispositions, within a month of receipt
    talk_letter = "talk_letter"  #: 谈话函询
    preliminary_verification = "preliminary_verification"  #: 初步核实
    case = "case"  #: 审查调查: after a case is filed (立案)
    referral = "referral"  #: 上报: beyond the county's jurisdiction, transferred to the higher commission


class ClockName(StrEnum):
    """The time limits of a task (限期), each with its own deadline column; all count from
    ``received_at`` but a redispatch's accept clock and a later clue stage's resolve clock."""

    accept = "accept"  #: 接单: from receipt to acceptance
    resolve = "resolve"  #: 办结: from receipt (a clue: from its stage's start) to submission
    verify = "verify"  #: 验单: from submission to verification
    acknowledge = "acknowledge"  #: 受理告知: a named reporter of a clue is told it was accepted


#: The clocks that run (and are watched) in each state; the others run none (triage waits for a
#: person, feedback has its own window, a suspended clock is paused, a closed task is done).
#: Once dispatched, the accept and the resolve clock run side by side: an item imported late is
#: already late. The acknowledge clock runs beside them until the reporter is told (``clocks``).
RUNNING_CLOCKS: Mapping[TaskStatus, tuple[ClockName, ...]] = MappingProxyType(
    {
        TaskStatus.dispatched: (ClockName.accept, ClockName.resolve),
        TaskStatus.accepted: (ClockName.resolve,),
        TaskStatus.rejected: (ClockName.resolve,),
        TaskStatus.reopened: (ClockName.resolve,),
        TaskStatus.submitted: (ClockName.verify,),
    }
)


def states_running(clock: ClockName) -> frozenset[TaskStatus]:
    """The states in which ``clock`` runs."""
    if clock is ClockName.acknowledge:
        return frozenset({TaskStatus.dispatched, *states_running(ClockName.resolve)})
    return frozenset(s for s, names in RUNNING_CLOCKS.items() if clock in names)


#: Where the handler is working: only the resolve clock runs, the moves of an accepted task apply
#: and an extension (延期) may be asked for.
WORKING: frozenset[TaskStatus] = frozenset(s for s, n in RUNNING_CLOCKS.items() if n == (ClockName.resolve,))


class DeadlineState(StrEnum):
    """How the running clocks stand, worst first last (``tasks.deadline_state``); tables show this order."""

    on_time = "on_time"  #: 正常
    warning = "warning"  #: 临期: the policy's share of the time is used (default 75%)
    overdue = "overdue"  #: 超期
    escalated = "escalated"  #: 升级督办: overdue and taken up the ladder

    @property
    def severity(self) -> int:
        return list(DeadlineState).index(self)


def worst(*states: DeadlineState) -> DeadlineState:
    """The most severe of ``states`` (on time when none)."""
    return max(states, key=lambda s: s.severity, default=DeadlineState.on_time)
