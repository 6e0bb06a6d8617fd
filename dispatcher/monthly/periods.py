"""Periods (``YYYY-MM``), their windows, and when each monthly job falls due (DESIGN §7).

A job's period is the month it is about: the report of ``2026-10`` is made on 1 November; the
meeting and the training of ``2026-11`` are held from the first working day of November. When a
period falls due is the first time its cron fires at or after the period's anchor (the 1st of the
month after it for the report, the 1st of the month itself for the others), skipping days that
are not the month's first working day where the schedule says so. Catching up is then simple:
every period that fell due before now, and has no run, is due.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from dispatcher.errors import ValidationFailed
from dispatcher.monthly.policy import JobSchedule, Schedules
from dispatcher.supervision.calendar import WorkCalendar

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


class Job(StrEnum):
    """The monthly jobs, by the names the CLI and the runs table use."""

    report = "monthly-report"  #: 一月一报告: the report of the previous month
    dispatch = "monthly-dispatch"  #: 一月一调度: the meeting task per zone, with its agenda
    training = "monthly-training"  #: 一月一培训: the training task per unit

    @classmethod
    def parse(cls, text: str) -> Job:
        try:
            return cls(text)
        except ValueError:
            known = ", ".join(j.value for j in cls)
            raise ValidationFailed(
                f"unknown job {text!r}; the jobs are {known}", details=[{"path": "job", "message": "unknown"}]
            ) from None


@dataclass(frozen=True, slots=True, order=True)
class Period:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """``YYYY-MM``, from 2000-01 to 2999-12; anything else is ``ValidationFailed``."""
        match = _PERIOD.match(text.strip()) if isinstance(text, str) else None
        if match is None or not (1 <= int(match[2]) <= 12) or int(match[1]) < 2000:
            raise ValidationFailed(
                f"period {text!r} is not a month like 2026-10 (YYYY-MM, 2000 or later)",
                details=[{"path": "period", "message": "expected YYYY-MM"}],
            )
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def shift(self, months: int) -> Period:
        index = self.year * 12 + (self.month - 1) + months
        return Period(index // 12, index % 12 + 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.shift(1).first_day - timedelta(days=1)

    def start(self, tz: ZoneInfo) -> datetime:
        """The first moment of the month in ``tz``."""
        return datetime(self.year, self.month, 1, tzinfo=tz)

    def end(self, tz: ZoneInfo) -> datetime:
        """The first moment after the month (windows are ``[start, end)``)."""
        return self.shift(1).start(tz)

    def year_start(self, tz: ZoneInfo) -> datetime:
        return datetime(self.year, 1, 1, tzinfo=tz)


def schedule_of(schedules: Schedules, job: Job) -> JobSchedule:
    return {
        Job.report: schedules.monthly_report,
        Job.dispatch: schedules.monthly_dispatch,
        Job.training: schedules.monthly_training,
    }[job]


def first_workday(period: Period, calendar: WorkCalendar) -> date:
    return calendar.next_workday(period.first_day)


def due_time(
    job: Job, period: Period, schedules: Schedules, calendar: WorkCalendar, tz: ZoneInfo
) -> datetime | None:
    """When ``job`` of ``period`` falls due (None: its cron never fires in the month it should)."""
    spec = schedule_of(schedules, job)
    month = period.shift(1) if job is Job.report else period
    trigger = CronTrigger.from_crontab(spec.cron, timezone=tz)
    fire = trigger.get_next_fire_time(None, month.start(tz))
    while fire is not None and Period.of(fire.date()) == month:
        if not spec.first_working_day or fire.date() == first_workday(month, calendar):
            return fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return None


def due_periods(
    job: Job,
    now: datetime,
    schedules: Schedules,
    calendar: WorkCalendar,
    tz: ZoneInfo,
    *,
    since: datetime | None = None,
) -> list[Period]:
    """The periods of ``job`` that fell due by ``now`` (and not before ``since``, when the system
    came into service: nothing was missed before it), oldest first: the latest one and up to
    ``catch_up_months`` before it, so a scheduler that was down catches up."""
    today = Period.of(now.astimezone(tz).date())
    newest = today.shift(-1) if job is Job.report else today
    periods = []
    for back in range(schedules.catch_up_months + 2):
        period = newest.shift(-back)
        due = due_time(job, period, schedules, calendar, tz)
        if due is not None and due <= now and (since is None or due >= since):
            periods.append(period)
        if len(periods) > schedules.catch_up_months:
            break
    return sorted(periods)
