"""The task lifecycle, declared once as data (DESIGN §6).

States are ``TaskStatus`` — the same ``str`` enum the database stores. Every move names the
states it may start from and the state it leads to; ``next_status`` is the one place that
checks a move, and ``IllegalMove`` is the one refusal (the API answers it with ``409``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from dispatcher.enums import WORKING, TaskKind
from dispatcher.enums import TaskStatus as S
from dispatcher.errors import Conflict


class Move(StrEnum):
    route = "route"  #: 分办: a person routes a triage or returned item to a unit
    accept = "accept"  #: 接单
    return_ = "return"  #: 退回: the unit says it was routed wrongly (back to triage)
    progress = "progress"  #: 进展: a note; the state does not change
    submit = "submit"  #: 办结报送: the handler submits the outcome
    verify = "verify"  #: 验单: the verifier accepts the outcome
    reject = "reject"  #: 验单不通过: back to the handler
    feedback_close = "feedback_close"  #: 回访满意 / 基本满意
    feedback_reopen = "feedback_reopen"  #: 回访不满意: back to the handler
    feedback_expire = "feedback_expire"  #: 回访期满无回复: closed as "no response"
    suspend = "suspend"  #: 暂存待查 / 听证: the clock pauses
    resume = "resume"
    designate = "designate"  #: 指定办案: a zone leader names another unit
    co_handle = "co_handle"  #: 增派人员协助: assisting units or staff join; the state does not change
    recuse = "recuse"  #: 自行回避: a staff member declares a conflict and leaves the task
    review = "review"  #: 复查: a held clue (暂存待查) is taken up again, back to its disposition


#: Moves that leave the state as it is.
STAYS = frozenset({Move.progress, Move.co_handle})

_OPEN = frozenset(S) - {S.closed}

#: move → states it may start from → state it leads to (``None``: stays / decided at run time).
TRANSITIONS: Mapping[Move, Mapping[S, S | None]] = MappingProxyType(
    {
        Move.route: {S.triage: S.dispatched, S.returned: S.dispatched},
        Move.designate: {
            s: S.dispatched for s in (S.triage, S.returned, S.dispatched, *WORKING, S.suspended)
        },
        Move.accept: {S.dispatched: S.accepted},
        Move.return_: {S.dispatched: S.returned, S.accepted: S.returned},
        Move.progress: {s: None for s in (*WORKING, S.suspended)},
        Move.submit: {s: S.submitted for s in WORKING},
        Move.verify: {S.submitted: S.awaiting_feedback},  # clues: closed (see next_status)
        Move.reject: {S.submitted: S.rejected},
        Move.feedback_close: {S.awaiting_feedback: S.closed},
        Move.feedback_reopen: {S.awaiting_feedback: S.reopened},
        Move.feedback_expire: {S.awaiting_feedback: S.closed},
        Move.suspend: {s: S.suspended for s in (S.dispatched, *WORKING)},
        Move.resume: {S.suspended: None},  # back to the state it was suspended from
        Move.co_handle: {s: None for s in _OPEN - {S.triage, S.returned}},
        Move.recuse: {s: None for s in _OPEN},  # the task leaves the person's hands (decided at run time)
        Move.review: {S.held: S.accepted},
    }
)


#: Where a move's own effects may send a task instead of the table's target: a clue stage's
#: approval opens the next stage (accepted), holds it or concludes it; a referral closes on
#: submission; a recusal hands the task to another handler (dispatched) or the zone (returned).
DECIDED: Mapping[Move, frozenset[S]] = MappingProxyType(
    {
        Move.verify: frozenset({S.accepted, S.held, S.closed}),
        Move.submit: frozenset({S.closed}),
        Move.recuse: frozenset({S.dispatched, S.returned}),
    }
)


class IllegalMove(Conflict):
    """The move is not allowed from the task's current state."""

    code = "illegal_move"

    def __init__(self, move: Move, current: S) -> None:
        allowed = allowed_moves(current)
        super().__init__(
            f"cannot {move.value} a task that is {current.value}; allowed now: "
            + (", ".join(m.value for m in allowed) or "none"),
            details={"current": current.value, "allowed": [m.value for m in allowed]},
        )
        self.move = move
        self.current = current


def allowed_moves(current: S) -> list[Move]:
    return [move for move, sources in TRANSITIONS.items() if current in sources]


def next_status(
    current: S, move: Move, *, kind: str, resume_to: S | None = None, decided: S | None = None
) -> S:
    """The state ``move`` leads to from ``current``; raises ``IllegalMove`` if it is not allowed.

    ``decided``: what the move's own effects chose where the table leaves it open (a clue stage's
    approval opens the next stage, holds or concludes it; a referral closes on submission; a
    recusal hands the task on).
    """
    sources = TRANSITIONS[move]
    if current not in sources:
        raise IllegalMove(move, current)
    if move in STAYS:
        return current
    if move is Move.resume:
        if resume_to is None or resume_to not in TRANSITIONS[Move.suspend]:
            raise IllegalMove(move, current)
        return resume_to
    if decided is not None:
        if decided not in DECIDED.get(move, frozenset()):
            raise AssertionError(f"{move.value} cannot lead to {decided.value}")
        return decided
    if move is Move.recuse:
        return current
    if move is Move.verify and not TaskKind(kind).asks_feedback:  # no requester to ask: it closes
        return S.closed
    target = sources[current]
    assert target is not None
    return target


#: The staff API's path of each move (``POST /tasks/{id}/<path>``, DESIGN §9); the pages add ``route``.
STAFF_MOVES: Mapping[str, Move] = MappingProxyType(
    {
        "accept": Move.accept,
        "return": Move.return_,
        "progress": Move.progress,
        "submit": Move.submit,
        "verify": Move.verify,
        "reject": Move.reject,
        "suspend": Move.suspend,
        "resume": Move.resume,
        "designate": Move.designate,
        "assist": Move.co_handle,
        "recuse": Move.recuse,
        "review": Move.review,
    }
)
