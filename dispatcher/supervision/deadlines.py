"""Deadline arithmetic (限期): pure functions of a start time, a clock, the calendar and office hours.

Conventions (DESIGN §1 leaves them open; these are what a commission's clerk would expect):

- **Working-day clocks** ("resolve within 5 working days"): an item received on a working day
  before office hours end counts that day as day 0; one received after hours, or on a rest
  day, counts as received at the start of the next working day. The deadline is the end of
  office hours on the N-th working day after day 0. So a complaint received on Friday at
  18:00 with 1 working day to be accepted is due on Tuesday at 17:30, not on Monday.
- **Calendar-day clocks** ("conclude within 30 days"): the end (23:59:59) of the N-th day after
  the day received, in the policy's timezone; office hours do not matter.
- **Pauses** (suspension, a hearing): the time left is frozen when the clock stops — working
  days for working-day clocks, wall time for calendar clocks — and laid out again from the
  moment it restarts, so holidays inside a pause cost nothing.
- **Warnings** fall when ``threshold`` of the clock's own time is used: working time (office
  hours of working days) for working-day clocks, wall time for calendar clocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dispatcher.supervision.calendar import WorkCalendar


class DayKind(StrEnum):
    working = "working"  #: 工作日
    calendar = "calendar"  #: 自然日


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """限期: N working days or N calendar days."""

    days: int
    kind: DayKind = DayKind.working


@dataclass(frozen=True, slots=True)
class OfficeHours:
    start: time = time(8, 30)
    end: time = time(17, 30)

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError("office hours must start before they end")


END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True, slots=True)
class Frame:
    """Everything deadline arithmetic depends on besides the times themselves."""

    calendar: WorkCalendar
    tz: ZoneInfo
    hours: OfficeHours = OfficeHours()


def _at(day: date, when: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, when, tzinfo=tz)


def day_zero(received: datetime, frame: Frame) -> date:
    """The working day a received item starts counting from (see the module's conventions)."""
    local = received.astimezone(frame.tz)
    if frame.calendar.is_workday(local.date()) and local.time() < frame.hours.end:
        return local.date()
    return frame.calendar.next_workday(local.date())


def due_at(received: datetime, limit: TimeLimit, frame: Frame) -> datetime:
    """When ``limit`` runs out for an item received at ``received`` (see the module's conventions)."""
    if limit.kind is DayKind.calendar:
        local = received.astimezone(frame.tz).date()
        return _at(local + timedelta(days=limit.days), END_OF_DAY, frame.tz)
    last = frame.calendar.add_workdays(day_zero(received, frame), limit.days)
    return _at(last, frame.hours.end, frame.tz)


def working_seconds(start: datetime, end: datetime, frame: Frame) -> float:
    """Seconds of office hours on working days between ``start`` and ``end``."""
    if end <= start:
        return 0.0
    total = 0.0
    day = start.astimezone(frame.tz).date()
    last = end.astimezone(frame.tz).date()
    while day <= last:
        if frame.calendar.is_workday(day):
            opens, closes = _at(day, frame.hours.start, frame.tz), _at(day, frame.hours.end, frame.tz)
            lo, hi = max(opens, start), min(closes, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return total


def _after_working_seconds(start: datetime, seconds: float, frame: Frame) -> datetime:
    """The instant when ``seconds`` of office time have passed since ``start``."""
    day = start.astimezone(frame.tz).date()
    left = seconds
    while True:
        if frame.calendar.is_workday(day):
            opens = max(_at(day, frame.hours.start, frame.tz), start)
            closes = _at(day, frame.hours.end, frame.tz)
            span = (closes - opens).total_seconds()
            if span > 0:
                if left <= span:
                    return opens + timedelta(seconds=left)
                left -= span
        day += timedelta(days=1)


def working_before(end: datetime, seconds: float, frame: Frame) -> datetime:
    """The instant ``seconds`` of office time before ``end`` (the inverse of counting forward)."""
    day = end.astimezone(frame.tz).date()
    left = seconds
    while True:
        if frame.calendar.is_workday(day):
            opens = _at(day, frame.hours.start, frame.tz)
            closes = min(_at(day, frame.hours.end, frame.tz), end)
            span = (closes - opens).total_seconds()
            if span > 0:
                if left <= span:
                    return closes - timedelta(seconds=left)
                left -= span
        day -= timedelta(days=1)


def warning_at(started: datetime, due: datetime, kind: DayKind, threshold: float, frame: Frame) -> datetime:
    """When ``threshold`` (e.g. 0.75) of the time between ``started`` and ``due`` is used."""
    if not 0 < threshold < 1:
        raise ValueError("threshold must be between 0 and 1")
    if kind is DayKind.calendar:
        return started + (due - started) * threshold
    budget = working_seconds(started, due, frame)
    if budget <= 0:
        return due
    return _after_working_seconds(started, budget * threshold, frame)


@dataclass(frozen=True, slots=True)
class Remaining:
    """What is left of a stopped clock: working days (and the time of day) or wall time."""

    kind: DayKind
    workdays: int = 0
    wall: timedelta = timedelta(0)


def pause(due: datetime, at: datetime, kind: DayKind, frame: Frame) -> Remaining:
    """Stop the clock at ``at``; an overdue clock keeps what it owes as zero time left."""
    if kind is DayKind.calendar:
        return Remaining(kind, wall=max(due - at, timedelta(0)))
    start = day_zero(at, frame)
    end = due.astimezone(frame.tz).date()
    return Remaining(kind, workdays=frame.calendar.workdays_after(start, end) if end > start else 0)


def resume(remaining: Remaining, at: datetime, frame: Frame) -> datetime:
    """Restart a stopped clock at ``at``; the new deadline leaves the same time as was left."""
    if remaining.kind is DayKind.calendar:
        return at + remaining.wall
    last = frame.calendar.add_workdays(day_zero(at, frame), remaining.workdays)
    return _at(last, frame.hours.end, frame.tz)


def extend(due: datetime, days: int, kind: DayKind, frame: Frame) -> datetime:
    """延期: push a deadline by ``days`` of the clock's own kind."""
    if days <= 0:
        raise ValueError("an extension is at least one day")
    if kind is DayKind.calendar:
        return due + timedelta(days=days)
    local = due.astimezone(frame.tz)
    return _at(frame.calendar.add_workdays(local.date(), days), local.time(), frame.tz)
