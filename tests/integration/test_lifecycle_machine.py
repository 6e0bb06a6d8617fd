"""A hypothesis state machine over ``apply_move`` on a real database.

Random people make random moves with random bodies; whatever happens, the stored state is one
the lifecycle table allows, the append-only history explains it step by step, and the
version counts the moves.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlmodel import col, select

from dispatcher.db import unit_of_work
from dispatcher.enums import TaskStatus
from dispatcher.errors import DispatchError
from dispatcher.models import Task, TaskHistory
from dispatcher.org.model import Org
from dispatcher.supervision.policy import DEFAULT_POLICY
from dispatcher.tasks.access import Actor
from dispatcher.tasks.lifecycle import TRANSITIONS, Move
from dispatcher.tasks.moves import MoveRequest, apply_move
from dispatcher.wallclock import utcnow

POLICY = DEFAULT_POLICY.with_feedback_window(timedelta(days=7))
OUTCOMES = {
    "complaint": {"resolved": True, "reply": "已解决"},
    "clue": {"disposition": "close_out", "case_filed": False, "disciplined_count": 0},
}
#: Every state some example reached: the machine must really walk the lifecycle.
REACHED: set[str] = set()
PEOPLE = {
    "handler": Actor(login="m-handler", role="handler", unit="DXZ-JW"),
    "other-handler": Actor(login="m-other", role="handler", unit="CGJD-JW"),
    "verifier": Actor(login="m-verifier", role="verifier", unit="SHI1"),
    "leader": Actor(login="m-leader", role="zone_leader", unit="SHI1", zones=frozenset({"Z1"})),
    "source": Actor(login="source:m", role="source"),
    "system": Actor.system("m"),
}


class TaskMachine(RuleBasedStateMachine):
    def __init__(self, engine: sa.Engine, org: Org) -> None:
        super().__init__()
        self.engine, self.org = engine, org
        self.kind = "complaint"
        with unit_of_work(engine) as s:
            now = utcnow()
            task = Task(
                kind=self.kind, ledger_no="TS-2026-999999", status=TaskStatus.dispatched, zone_code="Z1",
                township_code="DXZ", handler_unit="DXZ-JW", verifier_unit="SHI1", rule="test", reason="test",
                received_at=now, created_at=now, dispatched_at=now, updated_at=now,
            )  # fmt: skip
            s.add(task)
            s.flush()
            assert task.id is not None
            self.task_id = task.id
            s.add(TaskHistory(task_id=task.id, at=now, actor="test", to_status=task.status, note=""))

    @rule(
        move=st.sampled_from(list(Move)),
        who=st.sampled_from(sorted(PEOPLE)),
        reason=st.sampled_from([None, "", "原因"]),
        rating=st.sampled_from(["satisfied", "unsatisfied", "bad"]),
        unit=st.sampled_from([None, "DXZ-JW", "HSZ-JW", "NOPE"]),
    )
    def act(self, move: Move, who: str, reason: str | None, rating: str, unit: str | None) -> None:
        request = MoveRequest(
            move=move, reason=reason, note=reason, outcome=OUTCOMES[self.kind], unit=unit, units=("HSZ-JW",),
            feedback={"rating": rating},
        )  # fmt: skip
        try:
            with unit_of_work(self.engine) as s:
                apply_move(s, PEOPLE[who], self.task_id, request, now=utcnow(), org=self.org, policy=POLICY)
        except DispatchError:
            pass  # refused: nothing may have changed (checked by the invariants)

    @invariant()
    def history_explains_the_state(self) -> None:
        with unit_of_work(self.engine, read_only=True) as s:
            task = s.get(Task, self.task_id)
            assert task is not None
            rows = s.exec(
                select(TaskHistory).where(TaskHistory.task_id == self.task_id).order_by(col(TaskHistory.id))
            ).all()
        assert task.status in {t.value for t in TaskStatus}
        assert rows[-1].to_status == task.status
        for before, after in itertools.pairwise(rows):
            assert after.from_status == before.to_status
            move = Move(after.move)
            assert TaskStatus(before.to_status) in TRANSITIONS[move]
        assert task.version == len(rows)
        REACHED.add(task.status)
        assert (task.closed_at is not None) == (task.status == TaskStatus.closed)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_sequence_of_moves_leaves_the_table_or_the_history(engine: sa.Engine, loaded_org: Org) -> None:
    def machine() -> Any:
        with unit_of_work(engine) as s:  # each example starts from a clean table
            s.execute(sa.text("DELETE FROM notifications"))
            s.execute(sa.text("DELETE FROM feedback_answers"))
            s.execute(sa.text("DELETE FROM task_history"))
            s.execute(sa.text("DELETE FROM tasks"))
        return TaskMachine(engine, loaded_org)

    run_state_machine_as_test(
        machine, settings=settings(max_examples=40, stateful_step_count=25, deadline=None)
    )
