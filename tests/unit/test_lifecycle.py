"""The lifecycle table: every move from every state, and a state machine over random sequences."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from dispatcher.enums import TaskStatus as S
from dispatcher.tasks.lifecycle import TRANSITIONS, IllegalMove, Move, allowed_moves, next_status

HAPPY_COMPLAINT = [
    (S.dispatched, Move.accept, S.accepted),
    (S.accepted, Move.progress, S.accepted),
    (S.accepted, Move.submit, S.submitted),
    (S.submitted, Move.verify, S.awaiting_feedback),
    (S.awaiting_feedback, Move.feedback_close, S.closed),
]


@pytest.mark.parametrize(("current", "move", "expected"), HAPPY_COMPLAINT)
def test_a_complaint_goes_from_dispatch_to_closure_through_feedback(
    current: S, move: Move, expected: S
) -> None:
    assert next_status(current, move, kind="complaint") is expected


@pytest.mark.parametrize(
    ("current", "move", "kind", "expected"),
    [
        (S.submitted, Move.verify, "clue", S.closed),
        (S.submitted, Move.verify, "enterprise_request", S.awaiting_feedback),
        (S.submitted, Move.reject, "complaint", S.rejected),
        (S.rejected, Move.submit, "complaint", S.submitted),
        (S.awaiting_feedback, Move.feedback_reopen, "complaint", S.reopened),
        (S.reopened, Move.submit, "complaint", S.submitted),
        (S.awaiting_feedback, Move.feedback_expire, "complaint", S.closed),
        (S.dispatched, Move.return_, "clue", S.returned),
        (S.accepted, Move.return_, "clue", S.returned),
        (S.returned, Move.route, "clue", S.dispatched),
        (S.triage, Move.route, "complaint", S.dispatched),
        (S.accepted, Move.designate, "clue", S.dispatched),
        (S.accepted, Move.suspend, "clue", S.suspended),
        (S.suspended, Move.progress, "clue", S.suspended),
        (S.accepted, Move.co_handle, "clue", S.accepted),
    ],
)
def test_each_move_leads_where_the_design_says(current: S, move: Move, kind: str, expected: S) -> None:
    assert next_status(current, move, kind=kind) is expected


def test_resume_returns_to_the_state_the_task_was_suspended_from() -> None:
    assert next_status(S.suspended, Move.resume, kind="clue", resume_to=S.rejected) is S.rejected
    with pytest.raises(IllegalMove):
        next_status(S.suspended, Move.resume, kind="clue", resume_to=None)


def test_nothing_moves_a_closed_task() -> None:
    assert allowed_moves(S.closed) == []
    with pytest.raises(IllegalMove) as refused:
        next_status(S.closed, Move.accept, kind="complaint")
    assert refused.value.details == {"current": "closed", "allowed": []}


def test_an_illegal_move_names_the_current_state_and_the_allowed_moves() -> None:
    with pytest.raises(IllegalMove) as refused:
        next_status(S.dispatched, Move.submit, kind="complaint")
    assert "dispatched" in refused.value.message
    allowed = {"accept", "return", "designate", "suspend", "co_handle", "recuse"}
    assert set(refused.value.details["allowed"]) == allowed


@pytest.mark.parametrize("move", list(Move))
@pytest.mark.parametrize("current", list(S))
def test_every_pair_is_either_in_the_table_or_refused(move: Move, current: S) -> None:
    if current in TRANSITIONS[move] and move is not Move.resume:
        assert next_status(current, move, kind="complaint") in S
    elif move is not Move.resume:
        with pytest.raises(IllegalMove):
            next_status(current, move, kind="complaint")


class Lifecycle(RuleBasedStateMachine):
    """Random sequences of moves: the state stays in the table and the history explains it."""

    def __init__(self) -> None:
        super().__init__()
        self.kind = "complaint"
        self.status = S.triage
        self.resume_to: S | None = None
        self.history: list[tuple[S, Move, S]] = []

    @rule(kind=st.sampled_from(["clue", "complaint", "enterprise_request"]))
    def pick_kind(self, kind: str) -> None:
        if not self.history:
            self.kind = kind

    @precondition(lambda self: self.status is not S.closed)
    @rule(move=st.sampled_from(list(Move)))
    def apply(self, move: Move) -> None:
        before = self.status
        try:
            after = next_status(before, move, kind=self.kind, resume_to=self.resume_to)
        except IllegalMove as exc:
            assert move not in allowed_moves(before) or move is Move.resume
            assert exc.details["current"] == before.value
            return
        assert move in allowed_moves(before)
        if move is Move.suspend:
            self.resume_to = before
        self.status = after
        self.history.append((before, move, after))

    @invariant()
    def history_matches_the_state(self) -> None:
        expected = self.history[-1][2] if self.history else S.triage
        assert self.status is expected
        for (_, _, to), (frm, _, _) in zip(self.history, self.history[1:], strict=False):
            assert to is frm

    @invariant()
    def clues_never_wait_for_feedback(self) -> None:
        if self.kind == "clue":
            assert self.status is not S.awaiting_feedback


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
