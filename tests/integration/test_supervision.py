"""Supervision on a real database (SQLite and PostgreSQL): the sweep, the actor, the clocks on moves.

Events go through the real intake API with a past ``received_at``; they are routed with
``routing.dispatch.dispatch_event`` (what the routing worker does) and worked with the staff API
or ``apply_move``. The supervision steps are taken by the scheduler's sweep (``supervision.service``)
with an in-process dramatiq worker (real Redis), or by ``supervision.orders.supervise`` directly on a
fixed clock. Every step must exist once per ``(task, step)``, however often and however many
sweepers run.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from dispatcher.db import unit_of_work, with_retries
from dispatcher.enums import TaskStatus as S
from dispatcher.models import Notification, SupervisionOrder, Task
from dispatcher.org.model import Org
from dispatcher.routing.dispatch import dispatch_event
from dispatcher.runtime import Runtime
from dispatcher.settings import Settings
from dispatcher.supervision.calendar import WorkCalendar
from dispatcher.supervision.orders import claim_due, supervise
from dispatcher.supervision.policy import DEFAULT_POLICY
from dispatcher.supervision.service import HOLD, sweep
from dispatcher.tasks.access import Actor
from dispatcher.tasks.lifecycle import Move
from dispatcher.tasks.moves import MoveRequest, apply_move
from dispatcher.wallclock import utcnow
from tests import factories
from tests.integration.tasking import Desk, open_desk
from tests.support import wait_for

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
POLICY = DEFAULT_POLICY.with_feedback_window(timedelta(days=7))

HANDLER = Actor(login="deng.xiaoming", role="handler", unit="DXZ-JW")  # 大兴镇纪委: complaints of 大兴镇
VERIFIER = Actor(login="fang.liqun", role="verifier", unit="SHI1")
LEADER = Actor(login="han.zhiyuan", role="zone_leader", unit="SHI1", zones=frozenset({"Z1"}))
SYSTEM = Actor.system("test")
ROOM, COMMISSION = "SHI1", "DFZF"  # zone 1's room (zone leader rung), the commission's office

#: The ladder of a clock whose deadline has passed when it is first seen: its warning is moot.
RESOLVE_STEPS = ["resolve.overdue", "resolve.escalated.1", "resolve.escalated.2"]
ACCEPT_STEPS = ["accept.overdue", "accept.escalated.1", "accept.escalated.2"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def workdays_before(today: date, workdays: int, when: time = time(12)) -> datetime:
    """The latest day with exactly ``workdays`` working days after it up to ``today``, at ``when``."""
    day = today
    while CAL.workdays_after(day, today) < workdays:
        day -= timedelta(days=1)
    return datetime.combine(day, when, tzinfo=TZ)


@pytest.fixture
def desk(api_url: str, engine: sa.Engine, loaded_org: Org) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


def import_event(desk: Desk, body: dict[str, Any], received_at: datetime) -> str:
    return desk.publish({**body, "received_at": received_at.isoformat()})


def routed(
    desk: Desk, body: dict[str, Any], received_at: datetime, *, dispatched: datetime | None = None
) -> int:
    """Import an event received at ``received_at`` and route it at ``dispatched`` (default: now)."""
    event_id = import_event(desk, body, received_at)
    with unit_of_work(desk.engine) as s:
        task = dispatch_event(s, event_id, now=dispatched or utcnow())
        assert task is not None and task.id is not None and task.status == S.dispatched
        return task.id


def move(
    engine: sa.Engine, org: Org, actor: Actor, task_id: int, now: datetime, move: Move, **kw: Any
) -> Task:
    with unit_of_work(engine) as s:
        return apply_move(s, actor, task_id, MoveRequest(move=move, **kw), now=now, org=org, policy=POLICY)


def sweep_and_supervise(engine: sa.Engine, org: Org, now: datetime) -> dict[int, list[str]]:
    """One sweep at ``now`` and the actor's work for every task it claimed: the steps taken per task."""
    with unit_of_work(engine) as s:
        ids = claim_due(s, now=now, hold=HOLD)
    taken = {}
    for task_id in ids:
        with unit_of_work(engine) as s:
            taken[task_id] = [
                t.order.step for t in supervise(s, task_id, now=now, policy=DEFAULT_POLICY, org=org)
            ]
    return taken


def orders(engine: sa.Engine, task_id: int | None = None) -> list[SupervisionOrder]:
    with unit_of_work(engine) as s:
        query = select(SupervisionOrder).order_by(col(SupervisionOrder.id))
        if task_id is not None:
            query = query.where(SupervisionOrder.task_id == task_id)
        return list(s.exec(query).all())


def steps(engine: sa.Engine, task_id: int) -> list[str]:
    return sorted(o.step for o in orders(engine, task_id))


def supervision_notes(engine: sa.Engine, task_id: int | None = None) -> list[tuple[int, str, str]]:
    """(task, unit, kind) of every supervision notification, sorted."""
    with unit_of_work(engine) as s:
        query = select(Notification).where(col(Notification.kind).startswith("supervision."))
        if task_id is not None:
            query = query.where(Notification.task_id == task_id)
        return sorted((n.task_id, n.unit_code, n.kind) for n in s.exec(query).all())


def row(engine: sa.Engine, task_id: int) -> Task:
    with unit_of_work(engine) as s:
        task = s.get(Task, task_id)
        assert task is not None
        return task


def assert_each_step_once(engine: sa.Engine) -> None:
    counted = Counter((o.task_id, o.step) for o in orders(engine))
    assert counted and max(counted.values()) == 1, counted
    notes = Counter((task_id, kind) for task_id, _, kind in supervision_notes(engine))
    states = Counter((o.task_id, "supervision." + o.step.split(".")[1]) for o in orders(engine))
    assert notes == states  # one notification per order: nothing told twice


# --- events with a past received_at, swept by the scheduler's job and the worker --------------------


def test_past_events_become_warning_overdue_escalated_at_the_next_sweep_exactly_once(
    desk: Desk,
    engine: sa.Engine,
    loaded_org: Org,
    settings: Settings,
    runtime: Runtime,
    request: pytest.FixtureRequest,
) -> None:
    now = utcnow()
    today = now.astimezone(TZ).date()
    # 20 working days ago, accepted now: the resolve clock (5 working days) is long past every rung
    late = routed(desk, factories.complaint(), workdays_before(today, 20))
    desk.ok(late, "accept", "deng.xiaoming")
    # 2 working days ago: 2 of 5 working days used, nothing due
    fresh = routed(desk, factories.complaint(), workdays_before(today, 2))
    desk.ok(fresh, "accept", "deng.xiaoming")
    # an enterprise request 9 working days ago (10 to resolve): past 75 %, not yet due
    nearly = routed(desk, factories.enterprise_request(), workdays_before(today, 9))
    desk.ok(nearly, "accept", "chai.xiaofeng")
    # a clue received 31 calendar days ago (30 to conclude): overdue since midnight, the first rung
    # falls at the end of the next working day
    clue = routed(desk, factories.clue(), now - timedelta(days=31))
    move(engine, loaded_org, SYSTEM, clue, now, Move.accept)
    # received 20 working days ago and never accepted: both clocks run from receipt, whole ladders
    received = workdays_before(today, 20)
    unaccepted = routed(desk, factories.complaint(), received, dispatched=received)

    request.getfixturevalue("worker")  # started once the tasks are routed here (at the times chosen)
    assert sweep(runtime) == 4  # every task with a running clock that has something due; `fresh` is not
    expected = {
        late: RESOLVE_STEPS,  # no warning: it would come after the deadline it warns of
        nearly: ["resolve.warning"],
        clue: ["resolve.overdue"],
        unaccepted: ACCEPT_STEPS + RESOLVE_STEPS,
    }
    total = sum(map(len, expected.values()))
    wait_for(lambda: len(orders(engine)) >= total, timeout=30, what=f"{total} supervision orders")
    wait_for(
        lambda: all(row(engine, t).next_check_at != now + HOLD for t in expected), timeout=10,
        what="the actor to set every next check",
    )  # fmt: skip
    for task_id, names in expected.items():
        assert steps(engine, task_id) == sorted(names), task_id
    assert steps(engine, fresh) == []

    states = {t: (row(engine, t).deadline_state, row(engine, t).escalation_level) for t in expected}
    assert states == {
        late: ("escalated", 2), nearly: ("warning", 0), clue: ("overdue", 0), unaccepted: ("escalated", 2)
    }  # fmt: skip
    assert (row(engine, fresh).deadline_state, row(engine, fresh).escalation_level) == ("on_time", 0)

    # who was told: the handler of warnings and of a late resolution, the zone's room of a late
    # acceptance and the first rung, the commission's office of the second
    assert supervision_notes(engine, late) == sorted([
        (late, "DXZ-JW", "supervision.overdue"), (late, ROOM, "supervision.escalated"),
        (late, COMMISSION, "supervision.escalated"),
    ])  # fmt: skip
    assert supervision_notes(engine, unaccepted) == sorted([
        (unaccepted, ROOM, "supervision.overdue"), (unaccepted, ROOM, "supervision.escalated"),
        (unaccepted, COMMISSION, "supervision.escalated"),
        (unaccepted, "DXZ-JW", "supervision.overdue"), (unaccepted, ROOM, "supervision.escalated"),
        (unaccepted, COMMISSION, "supervision.escalated"),
    ])  # fmt: skip
    assert supervision_notes(engine, nearly) == [(nearly, "RSJ", "supervision.warning")]
    assert supervision_notes(engine, clue) == [(clue, "CGJD-JW", "supervision.overdue")]
    by_step = {(o.task_id, o.step): o for o in orders(engine)}
    order = by_step[(late, "resolve.escalated.2")]
    assert order.late_unit == "DXZ-JW" and order.notified == "commission"
    assert order.deadline == row(engine, late).resolve_due_at
    assert order.days_over >= 15  # 15 working days at least, in calendar days
    assert by_step[(late, "resolve.overdue")].notified == "handler_unit"
    assert by_step[(unaccepted, "accept.overdue")].notified == "zone_leader"

    # the next checks: nothing left for the fully escalated, the pending step for the others
    assert row(engine, late).next_check_at is None and row(engine, unaccepted).next_check_at is None
    assert row(engine, nearly).next_check_at == row(engine, nearly).resolve_due_at
    assert row(engine, clue).next_check_at is not None and row(engine, clue).next_check_at > now
    assert row(engine, fresh).next_check_at is not None and row(engine, fresh).next_check_at > now

    # again and again: the sweep finds nothing due, the actor run by hand takes nothing twice
    before = (len(orders(engine)), len(supervision_notes(engine)))
    assert sweep(runtime) == 0
    for task_id in [*expected, fresh]:
        with unit_of_work(engine) as s:
            assert supervise(s, task_id, now=utcnow(), policy=DEFAULT_POLICY, org=loaded_org) == []
    assert (len(orders(engine)), len(supervision_notes(engine))) == before
    assert_each_step_once(engine)

    # the API shows the state the sweep recorded
    deadline = desk.get(late, "deng.xiaoming").json()["deadline"]
    assert deadline["state"] == "escalated" and deadline["escalation_level"] == 2


def test_two_sweepers_racing_take_each_step_once(
    desk: Desk,
    engine: sa.Engine,
    loaded_org: Org,
    settings: Settings,
    runtime: Runtime,
    request: pytest.FixtureRequest,
) -> None:
    today = utcnow().astimezone(TZ).date()
    ids = []
    for n in range(6):
        received = workdays_before(today, 20 + n)
        ids.append(routed(desk, factories.complaint(), received, dispatched=received))  # both ladders
        ids.append(routed(desk, factories.complaint(), received))  # the resolve ladder once accepted
        move(engine, loaded_org, HANDLER, ids[-1], utcnow(), Move.accept)

    request.getfixturevalue("worker")
    barrier = threading.Barrier(4)
    claimed: list[int] = []
    errors: list[BaseException] = []

    def sweeper(i: int) -> None:
        try:
            barrier.wait(10)
            claimed.append(sweep(runtime))
        except BaseException as exc:
            errors.append(exc)

    def supervisor() -> None:  # a second actor on the same tasks at the same time, its own sessions
        try:
            barrier.wait(10)
            for task_id in ids:
                with_retries(
                    engine,
                    lambda s, t=task_id: supervise(s, t, now=utcnow(), policy=DEFAULT_POLICY, org=loaded_org),
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sweeper, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=supervisor) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sum(claimed) <= len(ids)  # a task claimed by one sweep is held from the other

    total = sum(6 if i % 2 == 0 else 3 for i in range(len(ids)))
    wait_for(lambda: len(orders(engine)) >= total, timeout=30, what=f"{total} orders")
    # let the workers finish the sweeps' messages, then look: nothing doubled
    wait_for(
        lambda: all(row(engine, t).next_check_at is None for t in ids), timeout=30, what="every ladder done"
    )
    assert len(orders(engine)) == total
    assert_each_step_once(engine)
    for i, task_id in enumerate(ids):
        assert steps(engine, task_id) == sorted(ACCEPT_STEPS + RESOLVE_STEPS if i % 2 == 0 else RESOLVE_STEPS)
        assert (row(engine, task_id).deadline_state, row(engine, task_id).escalation_level) == (
            "escalated",
            2,
        )


def test_the_sweep_reads_only_due_tasks(desk: Desk, engine: sa.Engine, loaded_org: Org) -> None:
    t0 = at("2026-03-02 10:00")  # Monday
    due, later, paused = (routed(desk, factories.complaint(), t0, dispatched=t0) for _ in range(3))
    move(engine, loaded_org, HANDLER, paused, t0, Move.suspend, reason="暂存待查")
    before = {t: row(engine, t).next_check_at for t in (due, later, paused)}
    assert before[paused] is None
    assert before[due] == at("2026-03-03 13:22:30")  # accept warning (75 % of Monday 10:00 → Tuesday 17:30)
    desk.set(later, next_check_at=at("2026-03-20 09:00"))

    now = at("2026-03-03 14:00")
    with unit_of_work(engine) as s:
        assert claim_due(s, now=now, hold=HOLD) == [due]
    assert row(engine, due).next_check_at == now + HOLD  # held: a sweep right after does not take it again
    assert row(engine, later).next_check_at == at("2026-03-20 09:00")
    assert row(engine, paused).next_check_at is None
    with unit_of_work(engine) as s:
        assert claim_due(s, now=now + timedelta(minutes=1), hold=HOLD) == []
    # the actor's message lost: the task comes due again after the hold
    with unit_of_work(engine) as s:
        assert claim_due(s, now=now + HOLD, hold=HOLD) == [due]
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            plan = "\n".join(
                r[0] for r in conn.execute(
                    sa.text("EXPLAIN SELECT id FROM tasks WHERE next_check_at <= now() "
                            "ORDER BY next_check_at LIMIT 1000")
                )
            )  # fmt: skip
        assert "next_check_at" in plan


# --- the ladder and the clocks, step by step on a fixed clock ----------------------------------------


def test_the_ladder_step_by_step_each_step_once(desk: Desk, engine: sa.Engine, loaded_org: Org) -> None:
    t0 = at("2026-03-02 10:00")  # a complaint received Monday 10:00, accepted at once
    task_id = routed(desk, factories.complaint(), t0, dispatched=t0)
    accepted = move(engine, loaded_org, HANDLER, task_id, t0 + timedelta(minutes=30), Move.accept)
    assert accepted.resolve_due_at == at("2026-03-09 17:30")
    assert accepted.next_check_at == at("2026-03-06 13:22:30")

    timeline = [
        (at("2026-03-06 13:00"), [], "on_time", 0, at("2026-03-06 13:22:30")),
        (at("2026-03-06 13:22:30"), ["resolve.warning"], "warning", 0, at("2026-03-09 17:30")),
        (at("2026-03-09 17:29"), [], "warning", 0, at("2026-03-09 17:30")),
        (at("2026-03-09 17:31"), ["resolve.overdue"], "overdue", 0, at("2026-03-10 17:30")),
        (at("2026-03-10 17:30"), ["resolve.escalated.1"], "escalated", 1, at("2026-03-12 17:30")),
        (at("2026-03-13 09:00"), ["resolve.escalated.2"], "escalated", 2, None),
        (at("2026-03-20 09:00"), [], "escalated", 2, None),
    ]
    for now, taken, state, level, next_at in timeline:
        if taken:
            assert sweep_and_supervise(engine, loaded_org, now) == {task_id: taken}, now
        else:
            assert sweep_and_supervise(engine, loaded_org, now) == {}, now
        task = row(engine, task_id)
        assert (task.deadline_state, task.escalation_level, task.next_check_at) == (state, level, next_at), (
            now
        )
        # the actor again at the same moment (a redelivered message) takes nothing
        with unit_of_work(engine) as s:
            assert supervise(s, task_id, now=now, policy=DEFAULT_POLICY, org=loaded_org) == []
    assert steps(engine, task_id) == sorted(["resolve.warning", *RESOLVE_STEPS])  # warned in time
    assert [(u, k) for _, u, k in supervision_notes(engine, task_id)] == sorted([
        ("DXZ-JW", "supervision.warning"), ("DXZ-JW", "supervision.overdue"),
        (ROOM, "supervision.escalated"), (COMMISSION, "supervision.escalated"),
    ])  # fmt: skip
    days_over = {o.step: o.days_over for o in orders(engine, task_id)}
    assert days_over == {"resolve.warning": 0, "resolve.overdue": 0, "resolve.escalated.1": 1,
                         "resolve.escalated.2": 3}  # fmt: skip


def test_suspend_stops_the_clock_and_resume_restarts_it_with_the_time_left(
    desk: Desk, engine: sa.Engine, loaded_org: Org
) -> None:
    t0 = at("2026-03-02 10:00")
    task_id = routed(desk, factories.complaint(), t0, dispatched=t0)
    move(engine, loaded_org, HANDLER, task_id, t0, Move.accept)
    # Wednesday 10:00: 3 working days left (Thursday, Friday, Monday)
    suspended = move(
        engine, loaded_org, HANDLER, task_id, at("2026-03-04 10:00"), Move.suspend, reason="听证"
    )
    assert suspended.status == S.suspended and suspended.next_check_at is None
    assert suspended.clock_pauses is not None and suspended.clock_pauses["resolve"]["workdays"] == 3
    # weeks pass while paused: the sweep never sees it, the actor takes nothing
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-30 10:00")) == {}
    with unit_of_work(engine) as s:
        assert supervise(s, task_id, now=at("2026-03-30 10:00"), policy=DEFAULT_POLICY, org=loaded_org) == []
    assert steps(engine, task_id) == []

    # resumed on Monday 6 April 10:00, a holiday (Qingming: 4–6 April 2026 off): day 0 is Tuesday 7,
    # then Wed 8, Thu 9, Fri 10 → due Friday
    resumed = move(engine, loaded_org, HANDLER, task_id, at("2026-04-06 10:00"), Move.resume)
    assert resumed.status == S.accepted
    assert resumed.resolve_due_at == at("2026-04-10 17:30")
    assert resumed.clock_pauses is None and resumed.next_check_at is not None
    assert resumed.next_check_at <= at("2026-04-10 17:30")
    # the old deadline has long passed: not overdue, the paused weeks did not count
    sweep_and_supervise(engine, loaded_org, at("2026-04-10 17:29"))
    assert "resolve.overdue" not in steps(engine, task_id)
    assert sweep_and_supervise(engine, loaded_org, at("2026-04-10 17:31")) == {task_id: ["resolve.overdue"]}
    assert steps(engine, task_id) == ["resolve.overdue", "resolve.warning"]
    assert row(engine, task_id).deadline_state == "overdue"


def test_a_resumed_clock_warns_at_75_percent_of_its_own_time(
    desk: Desk, engine: sa.Engine, loaded_org: Org
) -> None:
    t0 = at("2026-03-02 10:00")
    task_id = routed(desk, factories.complaint(), t0, dispatched=t0)
    move(engine, loaded_org, HANDLER, task_id, t0, Move.accept)
    move(engine, loaded_org, HANDLER, task_id, at("2026-03-03 10:00"), Move.suspend, reason="听证")
    # a month paused, 4 of 5 working days still left: 25 % used, far from a warning
    resumed = move(engine, loaded_org, HANDLER, task_id, at("2026-04-01 10:00"), Move.resume)
    assert resumed.next_check_at is not None and resumed.next_check_at > at("2026-04-01 10:00")
    assert sweep_and_supervise(engine, loaded_org, at("2026-04-01 10:05")) == {}


def test_accept_submit_and_close_move_the_clocks(desk: Desk, engine: sa.Engine, loaded_org: Org) -> None:
    t0 = at("2026-03-02 10:00")
    task_id = routed(desk, factories.complaint(), t0, dispatched=t0)
    task = row(engine, task_id)
    assert (task.accept_due_at, task.resolve_due_at) == (at("2026-03-03 17:30"), at("2026-03-09 17:30"))
    assert task.next_check_at == at("2026-03-03 13:22:30")
    # late to accept: the accept clock is overdue (the zone leader is told); its warning, first
    # seen after the deadline it warns of, is never issued
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-04 09:00")) == {task_id: ["accept.overdue"]}
    assert row(engine, task_id).deadline_state == "overdue"

    # accepted: the resolve clock runs (from receipt), the state starts over
    task = move(engine, loaded_org, HANDLER, task_id, at("2026-03-04 10:00"), Move.accept)
    assert (task.deadline_state, task.escalation_level) == ("on_time", 0)
    assert task.next_check_at == at("2026-03-06 13:22:30")
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-04 17:35")) == {}  # accept.escalated.1 is moot

    # submitted Thursday 09:00: the verify clock (2 working days) runs, the resolve clock stops
    task = move(
        engine, loaded_org, HANDLER, task_id, at("2026-03-05 09:00"), Move.submit,
        outcome={"resolved": True, "reply": "已核实并督促发放到位。"},
    )  # fmt: skip
    assert task.verify_due_at == at("2026-03-09 17:30")
    assert task.next_check_at == at("2026-03-09 10:52:30")  # 75 % of 26.5 working hours
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-10 09:00")) == {task_id: ["verify.overdue"]}
    assert (row(engine, task_id).deadline_state, row(engine, task_id).next_check_at) == (
        "overdue",
        at("2026-03-10 17:30"),
    )

    # verified: waiting for the requester's feedback runs no clock, nothing is swept any more
    task = move(engine, loaded_org, VERIFIER, task_id, at("2026-03-10 10:00"), Move.verify)
    assert task.status == S.awaiting_feedback and task.next_check_at is None
    assert sweep_and_supervise(engine, loaded_org, at("2026-04-30 10:00")) == {}
    assert steps(engine, task_id) == sorted(["accept.overdue", "verify.overdue"])
    assert [(u, k) for _, u, k in supervision_notes(engine, task_id)] == sorted([
        (ROOM, "supervision.overdue"), ("DXZ-JW", "supervision.overdue"),
    ])  # fmt: skip


def test_closing_clears_the_next_check(desk: Desk, engine: sa.Engine, loaded_org: Org) -> None:
    t0 = at("2026-03-02 10:00")
    task_id = routed(desk, factories.clue(), t0, dispatched=t0)  # 予以了结: concluded on approval
    move(engine, loaded_org, SYSTEM, task_id, t0, Move.accept)
    outcome = {"disposition": "close_out"}
    move(engine, loaded_org, SYSTEM, task_id, at("2026-03-03 10:00"), Move.submit, outcome=outcome)
    assert row(engine, task_id).next_check_at is not None
    task = move(engine, loaded_org, SYSTEM, task_id, at("2026-03-04 10:00"), Move.verify)
    assert task.status == S.closed and task.next_check_at is None
    assert sweep_and_supervise(engine, loaded_org, at("2026-06-01 10:00")) == {}
    assert steps(engine, task_id) == []


def test_designation_restarts_the_accept_clock(desk: Desk, engine: sa.Engine, loaded_org: Org) -> None:
    t0 = at("2026-03-02 10:00")
    task_id = routed(desk, factories.complaint(), t0, dispatched=t0)
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-05 09:00")) == {
        task_id: ["accept.overdue", "accept.escalated.1"]
    }
    assert (row(engine, task_id).deadline_state, row(engine, task_id).escalation_level) == ("escalated", 1)

    # the zone leader designates another township: a fresh accept clock for the new unit
    task = move(
        engine, loaded_org, LEADER, task_id, at("2026-03-05 10:00"), Move.designate, unit="FDX-JW",
        reason="原承办单位未按期接单，指定丰登乡纪委办理",
    )  # fmt: skip
    assert task.status == S.dispatched and task.handler_unit == "FDX-JW"
    assert task.accept_due_at == at("2026-03-06 17:30")
    assert (task.deadline_state, task.escalation_level) == ("on_time", 0)
    assert task.next_check_at == at("2026-03-06 13:22:30")
    assert task.resolve_due_at == at("2026-03-09 17:30")  # the resolve clock still runs from receipt
    # before the new deadline nothing happens, however often the sweep runs
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-06 09:00")) == {}
    assert row(engine, task_id).deadline_state == "on_time"
    # the new unit does not accept either: its own accept ladder (a second run of steps, each
    # once), the zone leader told again; the resolve clock, running since receipt, warns meanwhile
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-09 09:00")) == {
        task_id: ["resolve.warning", "accept#2.overdue"]
    }
    with unit_of_work(engine) as s:
        assert supervise(s, task_id, now=at("2026-03-09 09:00"), policy=DEFAULT_POLICY, org=loaded_org) == []
    task = row(engine, task_id)
    # late again, past the new deadline too: the escalation the task reached stays (DESIGN §6)
    assert (task.deadline_state, task.escalation_level) == ("escalated", 1)
    assert task.next_check_at == at("2026-03-09 17:30")  # accept#2.escalated.1 and resolve.overdue
    new = [(o.step, o.late_unit, o.notified) for o in orders(engine, task_id)][2:]
    assert new == [
        ("resolve.warning", "FDX-JW", "handler_unit"),
        ("accept#2.overdue", "FDX-JW", "zone_leader"),
    ]
    notes = supervision_notes(engine, task_id)
    assert (task_id, "FDX-JW", "supervision.warning") in notes
    assert notes.count((task_id, ROOM, "supervision.overdue")) == 2  # once per round
    # accepted by the new unit: the resolve clock (already past its warning) takes over
    task = move(engine, loaded_org, Actor(login="tao.li", role="handler", unit="FDX-JW"), task_id,
                at("2026-03-09 10:00"), Move.accept)  # fmt: skip
    assert task.status == S.accepted and task.next_check_at == at("2026-03-09 17:30")  # resolve.overdue


def test_an_approved_extension_is_a_new_run_whose_warning_and_overdue_come_once_each(
    desk: Desk, engine: sa.Engine, loaded_org: Org
) -> None:
    from dispatcher.tasks import extensions
    from dispatcher.tasks.extensions import ExtensionRequest

    t0 = at("2026-03-02 10:00")  # Monday; 5 working days → due Monday 03-09 17:30
    task_id = routed(desk, factories.complaint(), t0, dispatched=t0)
    move(engine, loaded_org, HANDLER, task_id, t0, Move.accept)
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-10 09:00")) == {task_id: ["resolve.overdue"]}
    with unit_of_work(engine) as s:  # 10 more calendar days (the policy's extension kind) → 03-19 17:30
        ext = extensions.ask(
            s, HANDLER, task_id, ExtensionRequest(days=10, reason="需调取银行流水"),
            now=at("2026-03-10 09:30"), org=loaded_org, policy=POLICY,
        )  # fmt: skip
        assert ext.id is not None
        extensions.decide(
            s, LEADER, task_id, ext.id, approve=True, note="同意", now=at("2026-03-10 10:00"), org=loaded_org,
            policy=POLICY,
        )  # fmt: skip
    assert row(engine, task_id).resolve_due_at == at("2026-03-19 17:30")
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-12 09:00")) == {}
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-19 15:00")) == {task_id: ["resolve#2.warning"]}
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-20 09:00")) == {task_id: ["resolve#2.overdue"]}
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-20 09:05")) == {}
    assert row(engine, task_id).deadline_state == "overdue"


# --- DESIGN §6 (rewritten): clocks from received_at, watched from dispatch; the ladder per kind -------


def test_a_complaint_imported_late_is_warned_overdue_and_escalated_at_the_next_sweeps_each_once(
    desk: Desk, engine: sa.Engine, loaded_org: Org
) -> None:
    # received Monday 2 March 10:00, imported (and dispatched) Friday 6 March 14:00: the accept clock
    # (1 working day) is long past, the resolve clock (5) past its warning — late on arrival
    task_id = routed(desk, factories.complaint(), at("2026-03-02 10:00"), dispatched=at("2026-03-06 14:00"))
    task = row(engine, task_id)
    assert (task.accept_due_at, task.resolve_due_at) == (at("2026-03-03 17:30"), at("2026-03-09 17:30"))
    assert task.next_check_at is not None and task.next_check_at < at("2026-03-06 14:00")
    assert task.deadline_state == "overdue"  # not "on time" because it was only just dispatched

    timeline = [
        # the next sweep: the accept clock's overdue and first rung; the resolve warning (still ahead
        # of its deadline); the accept warning, after its deadline, never
        (
            at("2026-03-06 14:01"),
            ["accept.overdue", "accept.escalated.1", "resolve.warning"],
            ("escalated", 1),
        ),
        (at("2026-03-06 14:02"), [], ("escalated", 1)),
        (at("2026-03-09 17:31"), ["accept.escalated.2", "resolve.overdue"], ("escalated", 2)),
        (at("2026-03-10 17:31"), ["resolve.escalated.1"], ("escalated", 2)),
        (at("2026-03-12 17:31"), ["resolve.escalated.2"], ("escalated", 2)),
        (at("2026-03-20 09:00"), [], ("escalated", 2)),
    ]
    for now, taken, standing in timeline:
        assert sweep_and_supervise(engine, loaded_org, now) == ({task_id: taken} if taken else {}), now
        task = row(engine, task_id)
        assert (task.deadline_state, task.escalation_level) == standing, now
    assert "accept.warning" not in steps(engine, task_id)
    assert_each_step_once(engine)


def test_a_reopened_task_keeps_the_escalation_its_past_deadline_reached(
    desk: Desk, engine: sa.Engine, loaded_org: Org
) -> None:
    t0 = at("2026-03-02 10:00")
    task_id = routed(desk, factories.complaint(), t0, dispatched=t0)
    move(engine, loaded_org, HANDLER, task_id, t0, Move.accept)
    assert (
        sweep_and_supervise(engine, loaded_org, at("2026-03-11 09:00"))[task_id][-1] == "resolve.escalated.1"
    )
    move(engine, loaded_org, HANDLER, task_id, at("2026-03-11 10:00"), Move.submit,
         outcome={"resolved": True, "reply": "已办结"})  # fmt: skip
    move(engine, loaded_org, VERIFIER, task_id, at("2026-03-11 11:00"), Move.verify)
    source = Actor.source("platform")
    reopened = move(engine, loaded_org, source, task_id, at("2026-03-11 12:00"), Move.feedback_reopen,
                    feedback={"rating": "unsatisfied", "resolved": False})  # fmt: skip
    # the same past deadline: the escalation stays where it was (it dropped to 0 before)
    assert (reopened.status, reopened.deadline_state, reopened.escalation_level) == (
        "reopened",
        "escalated",
        1,
    )
    assert reopened.feedback_resolved is False
    assert sweep_and_supervise(engine, loaded_org, at("2026-03-13 09:00")) == {
        task_id: ["resolve.escalated.2"]
    }


def test_the_commission_rung_follows_the_policy_per_kind(
    desk: Desk, engine: sa.Engine, loaded_org: Org
) -> None:
    t0 = at("2026-03-02 10:00")
    clue = routed(desk, factories.clue(), t0, dispatched=t0)
    complaint = routed(desk, factories.complaint(), t0, dispatched=t0)
    for task_id in (clue, complaint):
        move(engine, loaded_org, SYSTEM, task_id, t0, Move.accept)
    sweep_and_supervise(engine, loaded_org, at("2026-06-30 09:00"))
    rungs = {(t, u) for t, u, k in supervision_notes(engine) if k == "supervision.escalated"}
    # a late clue goes to case supervision (案件监督管理室), a late complaint to 党风政风监督室
    assert (clue, "AJGL") in rungs and (clue, COMMISSION) not in rungs
    assert (complaint, COMMISSION) in rungs and (complaint, "AJGL") not in rungs


def test_a_channel_with_its_own_clocks_in_the_policy_uses_them(desk: Desk, engine: sa.Engine) -> None:
    from dispatcher.supervision.policy import check_policy_text

    text = (
        "clocks:\n"
        "  complaint: {resolve: {days: 5}, channels: {hotline: {resolve: {days: 2}}}}\n"
        "  enterprise_request: {resolve: {days: 10}}\n"
        "  clue: {resolve: {days: 30, kind: calendar}}\n"
    )
    policy, problems = check_policy_text(text)
    assert policy is not None, problems
    t0 = at("2026-03-02 10:00")
    due = {}
    for channel in ("hotline", "online"):
        event_id = import_event(desk, factories.complaint(channel=channel), t0)
        with unit_of_work(desk.engine) as s:
            task = dispatch_event(s, event_id, now=t0, policy=policy)
            assert task is not None and task.channel == channel
            due[channel] = task.resolve_due_at
    assert due == {"hotline": at("2026-03-04 17:30"), "online": at("2026-03-09 17:30")}


def test_an_item_imported_25_working_days_late_is_escalated_at_the_first_sweep_before_anyone_accepts_it(
    api_url: str, engine: sa.Engine, loaded_org: Org, runtime: Runtime, request: pytest.FixtureRequest
) -> None:
    """Through the real intake API, the routing worker and the scheduler's sweep (real Redis)."""
    request.getfixturevalue("worker")
    with open_desk(api_url, engine) as desk:
        received = workdays_before(utcnow().astimezone(TZ).date(), 25)
        event_id = import_event(desk, factories.complaint(), received)  # routed by the worker
        task_id = wait_for(
            lambda: desk.http.get(f"{api_url}/api/v1/events/{event_id}", headers=desk.source).json()["task"],
            timeout=30, what="the worker to route the event",
        )["id"]  # fmt: skip
    assert row(engine, task_id).status == S.dispatched and row(engine, task_id).deadline_state == "overdue"
    assert sweep(runtime) == 1
    total = len(ACCEPT_STEPS + RESOLVE_STEPS)
    wait_for(lambda: len(orders(engine, task_id)) == total, timeout=30, what=f"{total} orders")
    assert steps(engine, task_id) == sorted(ACCEPT_STEPS + RESOLVE_STEPS)  # no warning after its deadline
    wait_for(lambda: row(engine, task_id).escalation_level == 2, timeout=10, what="the escalation recorded")
    assert sweep(runtime) == 0
