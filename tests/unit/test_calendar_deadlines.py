"""The working-day calendar and deadline arithmetic, with a fixed clock (no wall time read)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatcher.supervision.calendar import CalendarSource, WorkCalendar, YearOverride
from dispatcher.supervision.deadlines import (
    DayKind,
    Frame,
    OfficeHours,
    TimeLimit,
    day_zero,
    due_at,
    extend,
    pause,
    resume,
    warning_at,
    working_seconds,
)

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
FRAME = Frame(calendar=CAL, tz=TZ)
W, C = DayKind.working, DayKind.calendar


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.mark.parametrize(
    ("day", "workday"),
    [
        (date(2026, 9, 30), True),  # Wednesday before National Day
        (date(2026, 10, 1), False),  # National Day
        (date(2026, 10, 7), False),  # last day of the Golden Week
        (date(2026, 10, 10), True),  # make-up Saturday (调休上班)
        (date(2026, 10, 11), False),  # ordinary Sunday
        (date(2026, 2, 14), True),  # Spring Festival make-up Saturday
        (date(2026, 2, 16), False),  # Spring Festival
        (date(2026, 2, 28), True),  # make-up Saturday after Spring Festival
    ],
)
def test_the_state_council_calendar_decides_working_days(day: date, workday: bool) -> None:
    assert CAL.is_workday(day) is workday
    assert CAL.source(day.year) is CalendarSource.state_council


def test_a_year_without_data_falls_back_to_weekdays_and_says_so() -> None:
    assert CAL.source(2099) is CalendarSource.weekends_only
    assert CAL.missing_years([2026, 2099, 2099]) == [2099]
    assert CAL.is_workday(date(2099, 1, 1)) is True  # a Thursday: no holiday data, counted as working
    assert CAL.is_workday(date(2099, 1, 3)) is False  # Saturday


def test_policy_overrides_give_a_new_year_its_holidays_and_make_up_days() -> None:
    cal = WorkCalendar(
        {2099: YearOverride(holidays=frozenset({date(2099, 1, 1)}), workdays=frozenset({date(2099, 1, 3)}))}
    )
    assert cal.source(2099) is CalendarSource.policy
    assert cal.missing_years([2099]) == []
    assert cal.is_workday(date(2099, 1, 1)) is False
    assert cal.is_workday(date(2099, 1, 3)) is True
    assert cal.is_workday(date(2099, 1, 5)) is True  # an ordinary Monday


@pytest.mark.parametrize(
    ("received", "clock", "due"),
    [
        # an ordinary week: received in office hours counts that day as day 0
        ("2026-11-16 10:00", TimeLimit(1), "2026-11-17 17:30"),
        ("2026-11-16 10:00", TimeLimit(5), "2026-11-23 17:30"),
        # received on Friday after hours or at the weekend: day 0 is Monday
        ("2026-11-20 18:00", TimeLimit(1), "2026-11-24 17:30"),
        ("2026-11-21 09:00", TimeLimit(1), "2026-11-24 17:30"),
        ("2026-11-20 17:29", TimeLimit(1), "2026-11-23 17:30"),
        # the eve of National Day: the Golden Week does not count, the make-up Saturday does
        ("2026-09-30 16:00", TimeLimit(1), "2026-10-08 17:30"),
        ("2026-09-30 18:00", TimeLimit(1), "2026-10-09 17:30"),
        ("2026-09-30 16:00", TimeLimit(3), "2026-10-10 17:30"),
        ("2026-09-30 16:00", TimeLimit(5), "2026-10-13 17:30"),
        # Spring Festival 2026 with its make-up Saturdays (2-14 and 2-28)
        ("2026-02-13 10:00", TimeLimit(1), "2026-02-14 17:30"),
        ("2026-02-13 10:00", TimeLimit(2), "2026-02-24 17:30"),
        ("2026-02-14 18:00", TimeLimit(1), "2026-02-25 17:30"),
        # calendar-day clocks ignore working days and office hours
        ("2026-09-30 16:00", TimeLimit(30, C), "2026-10-30 23:59:59"),
        ("2026-11-21 23:00", TimeLimit(1, C), "2026-11-22 23:59:59"),
    ],
)
def test_deadlines(received: str, clock: TimeLimit, due: str) -> None:
    assert due_at(at(received), clock, FRAME) == at(due)


def test_day_zero_uses_the_policy_timezone_not_utc() -> None:
    # 2026-11-20 09:30 UTC is 17:30 in Shanghai: office hours are over, day 0 is Monday
    assert day_zero(datetime(2026, 11, 20, 9, 30, tzinfo=ZoneInfo("UTC")), FRAME) == date(2026, 11, 23)


def test_office_hours_are_configurable() -> None:
    frame = Frame(calendar=CAL, tz=TZ, hours=OfficeHours(time(9), time(18)))
    assert due_at(at("2026-11-16 17:45"), TimeLimit(1), frame) == at("2026-11-17 18:00")
    with pytest.raises(ValueError):
        OfficeHours(time(18), time(9))


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("2026-11-16 08:30", "2026-11-16 17:30", 9),
        ("2026-11-16 08:30", "2026-11-23 17:30", 6 * 9),  # Monday to next Monday
        ("2026-09-30 08:30", "2026-10-08 17:30", 2 * 9),  # across the Golden Week
        ("2026-11-21 00:00", "2026-11-22 23:59", 0),  # a weekend
    ],
)
def test_working_time_counts_office_hours_of_working_days(start: str, end: str, hours: float) -> None:
    assert working_seconds(at(start), at(end), FRAME) == hours * 3600


@pytest.mark.parametrize(
    ("started", "due", "kind", "warn"),
    [
        # Monday 08:30 to Friday 17:30: 45 office hours; 75% is 33.75 h = 3 days + 6 h 45 → Thursday 15:15
        ("2026-11-16 08:30", "2026-11-20 17:30", W, "2026-11-19 15:15"),
        # across National Day: 18 office hours (9-30 and 10-08); 75% = 13.5 h → 10-08 13:00
        ("2026-09-30 08:30", "2026-10-08 17:30", W, "2026-10-08 13:00"),
        ("2026-10-01 00:00", "2026-10-31 00:00", C, "2026-10-23 12:00"),
    ],
)
def test_the_warning_falls_when_three_quarters_of_the_clock_is_used(
    started: str, due: str, kind: DayKind, warn: str
) -> None:
    assert warning_at(at(started), at(due), kind, 0.75, FRAME) == at(warn)


def test_a_suspension_across_a_holiday_costs_no_working_days() -> None:
    # Monday 9-28: 9-29, 9-30, (Golden Week), 10-08, 10-09 and the make-up Saturday 10-10
    due = due_at(at("2026-09-28 10:00"), TimeLimit(5), FRAME)
    assert due == at("2026-10-10 17:30")
    left = pause(
        due, at("2026-09-29 10:00"), W, FRAME
    )  # suspended on Tuesday: 9-30, 10-08, 10-09, 10-10 left
    assert left.workdays == 4
    assert resume(left, at("2026-10-12 10:00"), FRAME) == at("2026-10-16 17:30")


def test_a_calendar_clock_pauses_in_wall_time() -> None:
    due = due_at(at("2026-11-01 10:00"), TimeLimit(30, C), FRAME)
    left = pause(due, at("2026-11-10 00:00"), C, FRAME)
    assert resume(left, at("2026-11-20 00:00"), FRAME) == due + timedelta(days=10)


def test_an_overdue_clock_resumes_still_due() -> None:
    left = pause(at("2026-11-16 17:30"), at("2026-11-18 10:00"), W, FRAME)
    assert left.workdays == 0
    assert resume(left, at("2026-11-19 10:00"), FRAME) == at("2026-11-19 17:30")


@pytest.mark.parametrize(
    ("due", "days", "kind", "extended"),
    [
        ("2026-09-30 17:30", 2, W, "2026-10-09 17:30"),
        ("2026-11-20 17:30", 30, C, "2026-12-20 17:30"),
    ],
)
def test_an_extension_moves_the_deadline_by_days_of_its_own_kind(
    due: str, days: int, kind: DayKind, extended: str
) -> None:
    assert extend(at(due), days, kind, FRAME) == at(extended)
    with pytest.raises(ValueError):
        extend(at(due), 0, kind, FRAME)


def test_a_task_shows_its_time_left_and_turns_overdue() -> None:
    from dispatcher.models import Task
    from dispatcher.supervision.policy import DEFAULT_POLICY
    from dispatcher.supervision.status import time_left
    from dispatcher.web.labels import deadline_text

    def resolve_deadline(task: Task, *, now: datetime) -> dict[str, object]:
        return time_left(task, policy=DEFAULT_POLICY, now=now)

    received = at("2026-11-16 10:00")  # a complaint: 5 working days → due Monday 11-23 17:30
    task = Task(kind="complaint", ledger_no="TS-2026-000001", status="accepted", rule="r", reason="r",
                received_at=received, created_at=received, updated_at=received)  # fmt: skip
    on_time = resolve_deadline(task, now=at("2026-11-17 10:00"))
    assert (on_time["state"], on_time["due_at"]) == ("on_time", at("2026-11-23 17:30").isoformat())
    assert on_time["label"].startswith("resolve due in 6d") and on_time["clock"] == "resolve"
    assert deadline_text(on_time, task.status).startswith("办结剩余6天")
    assert resolve_deadline(task, now=at("2026-11-23 09:00"))["state"] == "warning"
    late = resolve_deadline(task, now=at("2026-11-24 19:30"))
    assert (late["state"], late["label"]) == ("overdue", "resolve overdue by 1d 2h")
    assert deadline_text(late, task.status) == "办结超期1天2小时"
    task.status = "closed"
    closed = resolve_deadline(task, now=at("2026-11-24 19:30"))
    assert (closed["clock"], closed["label"]) == (None, "closed")
    assert deadline_text(closed, task.status) == "已办结"
