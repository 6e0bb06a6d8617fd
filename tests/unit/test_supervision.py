"""Supervision (限期督办), the pure part: which clock runs, when each step falls, the next check.

Everything runs on a fixed clock with the default policy (DESIGN §1): warning at 75% of the
clock's working time, overdue at the deadline, escalated.1 (zone leader) one working day after
the deadline, escalated.2 (commission) two working days after that.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dispatcher.enums import RUNNING_CLOCKS
from dispatcher.enums import TaskStatus as S
from dispatcher.models import Task
from dispatcher.supervision.clocks import (
    RunningClock as Running,
)
from dispatcher.supervision.clocks import (
    Step,
    clock_changes,
    next_check,
    running_clocks,
    schedule,
    standing,
)
from dispatcher.supervision.deadlines import DayKind
from dispatcher.supervision.policy import DEFAULT_POLICY, TimePolicy

TZ = ZoneInfo("Asia/Shanghai")
FRAME = DEFAULT_POLICY.frame()
W, C = DayKind.working, DayKind.calendar

RECEIVED = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)  # a Monday with no holiday near it
DISPATCHED = RECEIVED + timedelta(minutes=5)
ACCEPT_DUE = datetime(2026, 3, 3, 17, 30, tzinfo=TZ)
RESOLVE_DUE = datetime(2026, 3, 9, 17, 30, tzinfo=TZ)
SUBMITTED = datetime(2026, 3, 5, 9, 0, tzinfo=TZ)
VERIFY_DUE = datetime(2026, 3, 9, 17, 30, tzinfo=TZ)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def make_task(**overrides: Any) -> Task:
    """A task as the database holds it after dispatch (no id: nothing is read from a session)."""
    values: dict[str, Any] = {
        "kind": "complaint",
        "ledger_no": "TS-2026-000001",
        "status": S.dispatched,
        "rule": "complaint_township",
        "reason": "test",
        "zone_code": "Z1",
        "handler_unit": "DXZ-JW",
        "verifier_unit": "SHI1",
        "received_at": RECEIVED,
        "created_at": DISPATCHED,
        "dispatched_at": DISPATCHED,
        "updated_at": DISPATCHED,
        "accept_due_at": ACCEPT_DUE,
        "resolve_due_at": RESOLVE_DUE,
        "verify_due_at": None,
    }
    values.update(overrides)
    return Task(**values)


# --- running_clocks: which clocks run in each state ---------------------------------------------

ACCEPT = ("accept", RECEIVED, ACCEPT_DUE, W)
RESOLVE = ("resolve", RECEIVED, RESOLVE_DUE, W)


@pytest.mark.parametrize(
    ("status", "overrides", "expected"),
    [
        # dispatched: the accept and the resolve clock run side by side, both from receipt
        (S.dispatched, {}, [ACCEPT, RESOLVE]),
        (S.accepted, {}, [RESOLVE]),
        (S.rejected, {}, [RESOLVE]),
        (S.reopened, {}, [RESOLVE]),
        (
            S.submitted,
            {"submitted_at": SUBMITTED, "verify_due_at": VERIFY_DUE, "verify_started_at": SUBMITTED},
            [("verify", SUBMITTED, VERIFY_DUE, W)],
        ),
        # no verify start (an old row): the verify clock starts at submission, else the last update
        (S.submitted, {"verify_due_at": VERIFY_DUE}, [("verify", DISPATCHED, VERIFY_DUE, W)]),
        # a redispatch's accept clock counts from its own start
        (S.dispatched, {"accept_started_at": DISPATCHED}, [("accept", DISPATCHED, ACCEPT_DUE, W), RESOLVE]),
        # a clue's resolve clock is counted in calendar days (30 日)
        (S.accepted, {"kind": "clue"}, [("resolve", RECEIVED, RESOLVE_DUE, C)]),
        # a named reporter's acknowledgement runs beside them until it is given
        (S.dispatched, {"kind": "clue", "acknowledge_due_at": VERIFY_DUE},
         [("accept", RECEIVED, ACCEPT_DUE, W), ("resolve", RECEIVED, RESOLVE_DUE, C),
          ("acknowledge", RECEIVED, VERIFY_DUE, W)]),
        (S.accepted, {"kind": "clue", "acknowledge_due_at": VERIFY_DUE, "acknowledged_at": DISPATCHED},
         [("resolve", RECEIVED, RESOLVE_DUE, C)]),
        # no clock runs while a person decides, the requester answers, the clock is paused, or after close
        (S.triage, {}, []),
        (S.returned, {}, []),
        (S.awaiting_feedback, {}, []),
        (S.suspended, {}, []),
        (S.closed, {}, []),
        (S.held, {}, []),
        # a clock whose deadline was never set: nothing to supervise
        (S.dispatched, {"accept_due_at": None}, [RESOLVE]),
        (S.accepted, {"resolve_due_at": None}, []),
        (S.submitted, {"verify_due_at": None}, []),
    ],
)  # fmt: skip
def test_the_clocks_running_in_each_state(
    status: S, overrides: dict[str, Any], expected: list[tuple[str, datetime, datetime, DayKind]]
) -> None:
    clocks = running_clocks(make_task(status=status, **overrides), DEFAULT_POLICY)
    assert clocks == [Running(*e) for e in expected]  # type: ignore[arg-type]


def test_every_state_a_clock_runs_in_is_a_working_state() -> None:
    assert set(RUNNING_CLOCKS) == {S.dispatched, S.accepted, S.rejected, S.reopened, S.submitted}


# --- schedule: warning, overdue and the escalation ladder ----------------------------------------


def steps_of(name: str, started: datetime, due: datetime, kind: DayKind = W) -> list[tuple[Any, ...]]:
    return [
        (s.name, s.at, s.state, s.level, s.notify, s.deadline)
        for s in schedule(Running(name, started, due, kind), DEFAULT_POLICY, FRAME)
    ]


# (clock, started, due, kind, [(step, at, notify)]): state and level follow from the step's name
SCHEDULES = [
    pytest.param(
        # complaint received Monday 10:00, 5 working days to resolve: due Monday next week 17:30.
        # Working time 7.5 h + 5 × 9 h = 52.5 h; 75 % = 39.375 h → Friday 13:22:30.
        "resolve", RECEIVED, RESOLVE_DUE, W,
        [("resolve.warning", "2026-03-06 13:22:30", "handler_unit"),
         ("resolve.overdue", "2026-03-09 17:30", "handler_unit"),
         ("resolve.escalated.1", "2026-03-10 17:30", "zone_leader"),
         ("resolve.escalated.2", "2026-03-12 17:30", "commission")],
        id="complaint-received-monday-10h",
    ),
    pytest.param(
        # accept within 1 working day of dispatch (Monday 10:00): Tuesday 17:30; an item not
        # accepted in time is the zone leader's to designate elsewhere (overdue notifies them).
        "accept", RECEIVED, ACCEPT_DUE, W,
        [("accept.warning", "2026-03-03 13:22:30", "handler_unit"),
         ("accept.overdue", "2026-03-03 17:30", "zone_leader"),
         ("accept.escalated.1", "2026-03-04 17:30", "zone_leader"),
         ("accept.escalated.2", "2026-03-06 17:30", "commission")],
        id="accept-clock-overdue-goes-to-the-zone-leader",
    ),
    pytest.param(
        # received Wednesday 30 September 16:00, the eve of National Day (1–7 October off,
        # Saturday 10 October a make-up workday): 5 working days are 8, 9, 10, 12, 13 October.
        "resolve", at("2026-09-30 16:00"), at("2026-10-13 17:30"), W,
        [("resolve.warning", "2026-10-12 14:52:30", "handler_unit"),
         ("resolve.overdue", "2026-10-13 17:30", "handler_unit"),
         ("resolve.escalated.1", "2026-10-14 17:30", "zone_leader"),
         ("resolve.escalated.2", "2026-10-16 17:30", "commission")],
        id="national-day-eve",
    ),
    pytest.param(
        # the same eve, after office hours: day 0 is 8 October; the holiday week costs no time
        "resolve", at("2026-09-30 18:00"), at("2026-10-14 17:30"), W,
        [("resolve.warning", "2026-10-13 13:00", "handler_unit"),
         ("resolve.overdue", "2026-10-14 17:30", "handler_unit"),
         ("resolve.escalated.1", "2026-10-15 17:30", "zone_leader"),
         ("resolve.escalated.2", "2026-10-19 17:30", "commission")],
        id="national-day-eve-after-hours",
    ),
    pytest.param(
        # accept clock due on the last working day before the holiday: the ladder skips the week
        "accept", at("2026-09-29 09:00"), at("2026-09-30 17:30"), W,
        [("accept.warning", "2026-09-30 13:07:30", "handler_unit"),
         ("accept.overdue", "2026-09-30 17:30", "zone_leader"),
         ("accept.escalated.1", "2026-10-08 17:30", "zone_leader"),
         ("accept.escalated.2", "2026-10-10 17:30", "commission")],
        id="escalation-across-national-day-lands-on-the-make-up-saturday",
    ),
    pytest.param(
        # due Friday 9 October: the next working day is the make-up Saturday
        "accept", at("2026-10-08 09:00"), at("2026-10-09 17:30"), W,
        [("accept.warning", "2026-10-09 13:07:30", "handler_unit"),
         ("accept.overdue", "2026-10-09 17:30", "zone_leader"),
         ("accept.escalated.1", "2026-10-10 17:30", "zone_leader"),
         ("accept.escalated.2", "2026-10-13 17:30", "commission")],
        id="first-rung-on-the-make-up-saturday",
    ),
    pytest.param(
        # a clue's 30 calendar days: the warning at 75 % of the wall time; escalation still in
        # working days (the ladder's own unit), counted from the deadline's day and time
        "resolve", at("2026-09-01 10:00"), at("2026-10-01 23:59:59"), C,
        [("resolve.warning", "2026-09-24 08:29:59.250000", "handler_unit"),
         ("resolve.overdue", "2026-10-01 23:59:59", "handler_unit"),
         ("resolve.escalated.1", "2026-10-08 23:59:59", "zone_leader"),
         ("resolve.escalated.2", "2026-10-10 23:59:59", "commission")],
        id="clue-calendar-days-over-national-day",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("clock", "started", "due", "kind", "expected"), SCHEDULES)
def test_schedule_of_a_clock(
    clock: str, started: datetime, due: datetime, kind: DayKind, expected: list[tuple[str, str, str]]
) -> None:
    states = {"warning": ("warning", 0), "overdue": ("overdue", 0)}
    want = []
    for name, when, notify in expected:
        tail = name.split(".", 1)[1]
        state, level = states.get(tail) or ("escalated", int(tail.rsplit(".", 1)[1]))
        want.append((name, at(when), state, level, notify, due))
    assert steps_of(clock, started, due, kind) == want


def test_steps_are_in_time_order_and_the_warning_never_after_the_deadline() -> None:
    # a clock whose whole budget lies outside office hours: the warning falls at the deadline
    due = at("2026-03-02 17:30")
    steps = schedule(Running("accept", at("2026-03-02 17:30"), due, W), DEFAULT_POLICY, FRAME)
    assert steps[0].at == due
    for param in SCHEDULES:
        clock, started, due, kind, _ = param.values
        ats = [s.at for s in schedule(Running(clock, started, due, kind), DEFAULT_POLICY, FRAME)]  # type: ignore[arg-type]
        assert ats == sorted(ats)


def test_the_ladder_follows_the_policy() -> None:
    policy = TimePolicy.model_validate(
        {
            "warning_threshold": 0.5,
            "escalation": [
                {"to": "zone_leader", "after": {"days": 2, "kind": "working"}},
                {"to": "zone_leader", "after": {"days": 3, "kind": "calendar"}},
                {"to": "commission", "after": {"days": 1, "kind": "working"}},
            ],
        }
    )
    steps = schedule(Running("resolve", RECEIVED, RESOLVE_DUE, W), policy, policy.frame())
    assert [(s.name, s.at, s.notify, s.level) for s in steps] == [
        ("resolve.warning", at("2026-03-05 09:15"), "handler_unit", 0),  # 26.25 h of 52.5 h
        ("resolve.overdue", RESOLVE_DUE, "handler_unit", 0),
        ("resolve.escalated.1", at("2026-03-11 17:30"), "zone_leader", 1),
        ("resolve.escalated.2", at("2026-03-14 17:30"), "zone_leader", 2),  # calendar days: a Saturday
        ("resolve.escalated.3", at("2026-03-16 17:30"), "commission", 3),
    ]


def test_no_ladder_means_warning_and_overdue_only() -> None:
    policy = TimePolicy.model_validate({"escalation": []})
    steps = schedule(Running("verify", SUBMITTED, VERIFY_DUE, W), policy, policy.frame())
    assert [s.name for s in steps] == ["verify.warning", "verify.overdue"]


# --- next_check ----------------------------------------------------------------------------------

MONDAY = schedule(Running("resolve", RECEIVED, RESOLVE_DUE, W), DEFAULT_POLICY, FRAME)


@pytest.mark.parametrize(
    ("done", "expected"),
    [
        (set(), at("2026-03-06 13:22:30")),
        ({"resolve.warning"}, RESOLVE_DUE),
        ({"resolve.warning", "resolve.overdue"}, at("2026-03-10 17:30")),
        ({"resolve.warning", "resolve.overdue", "resolve.escalated.1"}, at("2026-03-12 17:30")),
        ({"resolve.warning", "resolve.overdue", "resolve.escalated.1", "resolve.escalated.2"}, None),
        # out of order (a step taken by another sweeper): the earliest pending step still wins
        ({"resolve.overdue"}, at("2026-03-06 13:22:30")),
        # steps of another clock don't count for this one
        ({"accept.warning", "accept.overdue", "accept.escalated.1", "accept.escalated.2"},
         at("2026-03-06 13:22:30")),
    ],
)  # fmt: skip
def test_next_check_is_the_earliest_step_not_taken(done: set[str], expected: datetime | None) -> None:
    assert next_check(MONDAY, done, RECEIVED) == expected


def test_next_check_of_no_steps_is_none() -> None:
    assert next_check([], set(), RECEIVED) is None
    later = RECEIVED + timedelta(hours=1)
    warning = Step("x.warning", RECEIVED, "warning", 0, "handler_unit", later)  # type: ignore[arg-type]
    assert next_check([warning], set(), RECEIVED) == RECEIVED


def test_a_warning_is_never_waited_for_once_its_deadline_has_passed() -> None:
    late = at("2026-03-09 18:00")  # Monday evening: the resolve deadline (17:30) has passed
    assert next_check(MONDAY, set(), late) == RESOLVE_DUE  # the overdue step, already due
    assert MONDAY[0].moot(late) and not MONDAY[0].moot(RESOLVE_DUE - timedelta(seconds=1))


# --- clock_changes: what each move does to the clocks (a task not yet stored: no session read) ----


def changes(task: Task, target: str, now: datetime, **kw: Any) -> dict[str, Any]:
    return clock_changes(None, task, target, now=now, policy=DEFAULT_POLICY, **kw)  # type: ignore[arg-type]


def test_dispatch_starts_the_accept_and_resolve_clocks() -> None:
    task = make_task(accept_due_at=None, resolve_due_at=None)
    got = changes(task, S.dispatched, DISPATCHED)
    assert got["accept_due_at"] == ACCEPT_DUE  # counted from receipt, not from dispatch
    assert got["resolve_due_at"] == RESOLVE_DUE
    assert (got["accept_started_at"], got["resolve_started_at"]) == (RECEIVED, RECEIVED)
    assert got["next_check_at"] == at("2026-03-03 13:22:30")  # 75 % of 16.5 h from 10:00


def test_an_item_imported_late_is_late_at_dispatch_and_its_warnings_are_moot() -> None:
    received = at("2026-01-26 10:00")  # long before Monday 9 March (Spring Festival between)
    task = make_task(received_at=received, accept_due_at=None, resolve_due_at=None)
    now = at("2026-03-09 10:00")
    got = changes(task, S.dispatched, now)
    assert got["accept_due_at"] < now and got["resolve_due_at"] < now
    assert got["deadline_state"] == "overdue"  # by the time alone; the sweep takes the steps next
    assert got["next_check_at"] < now  # the next sweep finds it due at once
    probe = task.model_copy(update={**got, "status": S.dispatched})
    steps = [s for c in running_clocks(probe, DEFAULT_POLICY) for s in schedule(c, DEFAULT_POLICY, FRAME)]
    due_now = [s.name for s in steps if s.at <= now and not s.moot(now)]
    expected = [
        f"{c}.{step}" for c in ("accept", "resolve") for step in ("overdue", "escalated.1", "escalated.2")
    ]
    assert sorted(due_now) == sorted(expected)


def test_triage_starts_no_clock() -> None:
    task = make_task(status=S.triage, accept_due_at=None, resolve_due_at=None, dispatched_at=None)
    got = changes(task, S.triage, DISPATCHED)
    assert "accept_due_at" not in got and "resolve_due_at" not in got
    assert got["next_check_at"] is None


def test_accept_moves_from_the_accept_clock_to_the_resolve_clock() -> None:
    task = make_task(deadline_state="warning")
    got = changes(task, S.accepted, at("2026-03-03 15:00"))
    assert "accept_due_at" not in got and "resolve_due_at" not in got  # the resolve clock runs since receipt
    assert got["deadline_state"] == "on_time" and got["escalation_level"] == 0
    assert got["next_check_at"] == at("2026-03-06 13:22:30")


def test_submit_starts_the_verify_clock() -> None:
    task = make_task(status=S.accepted)
    got = changes(task, S.submitted, at("2026-03-05 09:00"))
    assert got["verify_due_at"] == at("2026-03-09 17:30")  # 2 working days from Thursday
    assert got["deadline_state"] == "on_time"
    # 9:00–17:30 Thu, Fri, Mon: 8.5 + 9 + 9 = 26.5 h; 75 % = 19.875 h → Monday 10:52:30
    assert got["next_check_at"] == at("2026-03-09 10:52:30")


@pytest.mark.parametrize("target", [S.closed, S.awaiting_feedback, S.returned])
def test_leaving_the_clocks_clears_the_next_check(target: S) -> None:
    task = make_task(status=S.submitted, submitted_at=SUBMITTED, verify_due_at=VERIFY_DUE)
    assert changes(task, target, at("2026-03-06 09:00"))["next_check_at"] is None


@pytest.mark.parametrize(
    ("suspended", "resumed", "left", "new_due"),
    [
        # suspended Wednesday 10:00 with the deadline Monday 17:30: 3 working days left (Thu, Fri, Mon)
        (at("2026-03-04 10:00"), at("2026-03-11 10:00"), 3, at("2026-03-16 17:30")),
        # paused across National Day: the holiday inside the pause costs nothing
        (at("2026-09-28 10:00"), at("2026-10-09 09:00"), 3, at("2026-10-13 17:30")),  # Sat 10, Mon 12, Tue 13
        # already overdue when suspended: nothing left, due again at the end of the resume day
        (at("2026-03-10 10:00"), at("2026-03-12 10:00"), 0, at("2026-03-12 17:30")),
    ],
)
def test_suspend_freezes_what_is_left_and_resume_lays_it_out_again(
    suspended: datetime, resumed: datetime, left: int, new_due: datetime
) -> None:
    due = RESOLVE_DUE if suspended.month == 3 else at("2026-10-08 17:30")
    task = make_task(status=S.accepted, resolve_due_at=due)
    paused = changes(task, S.suspended, suspended)
    assert paused["clock_pauses"]["resolve"]["workdays"] == left
    assert paused["next_check_at"] is None  # a paused clock is not swept
    task = make_task(
        status=S.suspended, suspended_from=S.accepted, resolve_due_at=due, clock_pauses=paused["clock_pauses"]
    )
    back = changes(task, S.accepted, resumed)
    assert back["resolve_due_at"] == new_due
    assert back["clock_pauses"] is None
    assert back["next_check_at"] is not None and back["next_check_at"] <= new_due


def test_a_task_suspended_before_acceptance_pauses_both_its_clocks() -> None:
    paused = changes(make_task(), S.suspended, at("2026-03-03 09:00"))
    assert set(paused["clock_pauses"]) == {"accept", "resolve"}
    task = make_task(status=S.suspended, suspended_from=S.dispatched, clock_pauses=paused["clock_pauses"])
    back = changes(task, S.dispatched, at("2026-03-10 09:00"))
    assert (back["accept_due_at"], back["resolve_due_at"]) == (at("2026-03-10 17:30"), at("2026-03-16 17:30"))


def test_a_calendar_clock_pauses_its_wall_time() -> None:
    due = at("2026-10-01 23:59:59")
    task = make_task(kind="clue", status=S.accepted, received_at=at("2026-09-01 10:00"), resolve_due_at=due)
    paused = changes(task, S.suspended, at("2026-09-21 23:59:59"))
    assert paused["clock_pauses"]["resolve"]["seconds"] == timedelta(days=10).total_seconds()
    task = make_task(
        kind="clue", status=S.suspended, suspended_from=S.accepted, received_at=at("2026-09-01 10:00"),
        resolve_due_at=due, clock_pauses=paused["clock_pauses"],
    )  # fmt: skip
    assert changes(task, S.accepted, at("2026-10-05 12:00"))["resolve_due_at"] == at("2026-10-15 12:00")


def test_designation_restarts_the_accept_clock_but_not_the_resolve_clock() -> None:
    task = make_task(deadline_state="escalated", escalation_level=2)
    now = at("2026-03-09 09:00")
    got = changes(task, S.dispatched, now, redispatched=True)
    assert (got["accept_due_at"], got["accept_started_at"], got["accept_run"]) == (
        at("2026-03-10 17:30"),
        now,
        2,
    )
    # the resolve clock runs on from receipt: due tonight, past its warning
    assert got["deadline_state"] == "warning" and got["escalation_level"] == 0
    assert got["next_check_at"] == at("2026-03-06 13:22:30")  # the resolve warning, due at the next sweep


def test_a_designated_task_names_its_new_accept_steps_apart() -> None:
    first = schedule(Running("accept", RECEIVED, ACCEPT_DUE, W), DEFAULT_POLICY, FRAME)
    second = schedule(Running("accept", RECEIVED, ACCEPT_DUE, W, run=2), DEFAULT_POLICY, FRAME)
    assert [s.name for s in second] == [
        "accept#2.warning",
        "accept#2.overdue",
        "accept#2.escalated.1",
        "accept#2.escalated.2",
    ]
    assert [(s.at, s.notify, s.state, s.level) for s in first] == [
        (s.at, s.notify, s.state, s.level) for s in second
    ]
    assert next_check(second, {s.name for s in first}, RECEIVED) == first[0].at  # the first run's don't count


# --- standing: how the task stands, from the time and the steps taken -----------------------------

TAKEN = {"resolve.warning", "resolve.overdue", "resolve.escalated.1"}


@pytest.mark.parametrize(
    ("clock", "done", "now", "expected"),
    [
        (Running("resolve", RECEIVED, RESOLVE_DUE, W), set(), at("2026-03-03 09:00"), ("on_time", 0)),
        (Running("resolve", RECEIVED, RESOLVE_DUE, W), set(), at("2026-03-06 14:00"), ("warning", 0)),
        (Running("resolve", RECEIVED, RESOLVE_DUE, W), set(), at("2026-03-10 09:00"), ("overdue", 0)),
        (Running("resolve", RECEIVED, RESOLVE_DUE, W), TAKEN, at("2026-03-11 09:00"), ("escalated", 1)),
        # reopened with the same past deadline: the escalation reached stays (it dropped to 0 before)
        (Running("resolve", RECEIVED, RESOLVE_DUE, W), TAKEN, at("2026-04-01 09:00"), ("escalated", 1)),
        # an extension (a new run) whose deadline lies ahead: the earlier run's escalation is lifted
        (Running("resolve", RECEIVED, at("2026-03-20 17:30"), W, run=2), TAKEN, at("2026-03-11 09:00"),
         ("on_time", 0)),
        # …but one whose new deadline has passed too keeps it
        (Running("resolve", RECEIVED, at("2026-03-10 17:30"), W, run=2), TAKEN, at("2026-03-11 09:00"),
         ("escalated", 1)),
        # steps of another clock do not count for this one
        (Running("verify", SUBMITTED, VERIFY_DUE, W), TAKEN, at("2026-03-06 09:00"), ("on_time", 0)),
    ],
)  # fmt: skip
def test_standing_is_the_worst_of_the_time_and_the_steps_taken(
    clock: Running, done: set[str], now: datetime, expected: tuple[str, int]
) -> None:
    assert standing([clock], done, now=now, policy=DEFAULT_POLICY) == expected
