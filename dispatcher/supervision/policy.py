"""The time-limit policy (限期办理): clocks per kind, warning threshold, escalation, extensions,
office hours and calendar overrides — YAML, validated like the org file (DESIGN §1, §5, §6).

Defaults follow DESIGN §1; ``examples/policy.yaml`` spells them out. Where DESIGN is silent:
verification within 2 working days, a feedback window of 7 calendar days, escalation to the
zone leader as soon as a task is overdue and to the commission 2 working days later, office
hours 08:30–17:30 (items received after hours count from the next working day).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dispatcher.errors import ConfigError
from dispatcher.supervision.calendar import WorkCalendar, YearOverride
from dispatcher.supervision.deadlines import Clock, DayKind, Frame, OfficeHours
from dispatcher.yamlfile import FileProblem, check_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClockSpec(_Strict):
    days: Annotated[int, Field(ge=1, le=3650)]
    kind: DayKind = DayKind.working

    @property
    def clock(self) -> Clock:
        return Clock(self.days, self.kind)


def _w(days: int) -> ClockSpec:
    return ClockSpec(days=days)


def _c(days: int) -> ClockSpec:
    return ClockSpec(days=days, kind=DayKind.calendar)


class KindClocks(_Strict):
    """The clocks of one kind: accept-by, resolve-by, verify-by, the feedback window."""

    accept: ClockSpec = _w(1)
    resolve: ClockSpec
    verify: ClockSpec = _w(2)
    #: None: the kind has no requester to ask (clues).
    feedback: ClockSpec | None = _c(7)
    #: Clues only: the resolve clock once a case is filed (立案后 90 天).
    case: ClockSpec | None = None


class EscalationStep(_Strict):
    """One rung of the ladder: who is told, and how long after the previous rung (or the deadline)."""

    to: Literal["zone_leader", "commission"]
    after: ClockSpec


class ExtensionRule(_Strict):
    """延期: how many, how long, approved by whom; a reason is always required."""

    max_count: Annotated[int, Field(ge=0, le=5)] = 1
    max_days: Annotated[int, Field(ge=1, le=365)] = 30
    kind: DayKind = DayKind.calendar
    approver: Literal["zone_leader"] = "zone_leader"


class OfficeHoursSpec(_Strict):
    start: time = time(8, 30)
    end: time = time(17, 30)
    #: Items received after hours or on a rest day count from the next working day's start.
    after_hours: Literal["next_working_day"] = "next_working_day"

    @model_validator(mode="after")
    def _ordered(self) -> OfficeHoursSpec:
        if self.start >= self.end:
            raise ValueError("office hours must start before they end")
        return self


class CalendarYear(_Strict):
    """A year's State Council calendar, for years chinese-calendar does not know yet."""

    holidays: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()


KindName = Literal["complaint", "enterprise_request", "clue"]


def _default_clocks() -> dict[KindName, KindClocks]:
    return {
        "complaint": KindClocks(resolve=_w(5)),
        "enterprise_request": KindClocks(resolve=_w(10)),
        "clue": KindClocks(resolve=_c(30), feedback=None, case=_c(90)),
    }


class TimePolicy(_Strict):
    timezone: str = "Asia/Shanghai"
    office_hours: OfficeHoursSpec = OfficeHoursSpec()
    #: Share of a clock used when a task turns ``warning``.
    warning_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.75
    clocks: dict[KindName, KindClocks] = Field(default_factory=_default_clocks)
    escalation: tuple[EscalationStep, ...] = (
        EscalationStep(to="zone_leader", after=ClockSpec(days=1, kind=DayKind.working)),
        EscalationStep(to="commission", after=ClockSpec(days=2, kind=DayKind.working)),
    )
    extension: ExtensionRule = ExtensionRule()
    #: Seconds between two deadline sweeps (seconds in tests).
    sweep_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    calendar: dict[int, CalendarYear] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _every_kind_and_calendar_dates_in_their_year(self) -> TimePolicy:
        missing = {"complaint", "enterprise_request", "clue"} - set(self.clocks)
        if missing:
            raise ValueError(f"clocks missing for {', '.join(sorted(missing))}")
        for year, spec in self.calendar.items():
            stray = [d for d in (*spec.holidays, *spec.workdays) if d.year != year]
            if stray:
                raise ValueError(f"calendar {year} lists dates of another year: {', '.join(map(str, stray))}")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def work_calendar(self) -> WorkCalendar:
        return WorkCalendar(
            {y: YearOverride(frozenset(c.holidays), frozenset(c.workdays)) for y, c in self.calendar.items()}
        )

    def frame(self) -> Frame:
        return Frame(
            calendar=self.work_calendar(),
            tz=self.tz,
            hours=OfficeHours(self.office_hours.start, self.office_hours.end),
        )


DEFAULT_POLICY = TimePolicy()


def check_policy_text(text: str, filename: str = "<policy>") -> tuple[TimePolicy | None, list[FileProblem]]:
    return check_yaml(text, filename, TimePolicy, what="policy")


def load_policy(path: Path | None) -> TimePolicy:
    """The policy in ``path``, or the defaults when no file is configured."""
    if path is None:
        return DEFAULT_POLICY
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    policy, problems = check_policy_text(text, str(path))
    if policy is None:
        raise ConfigError(
            f"{path}: {len(problems)} problem(s)\n" + "\n".join(map(str, problems)),
            details=[str(p) for p in problems],
        )
    return policy


def calendar_gaps(policy: TimePolicy, today: date) -> list[int]:
    """Years a deadline set today could fall in that have no working-day calendar (loud fallback).

    The horizon is the longest clock of the policy (working days counted generously as two
    calendar days each), so next year is reported once deadlines can reach it.
    """
    longest = max(
        (spec.days * (2 if spec.kind is DayKind.working else 1))
        for clocks in policy.clocks.values()
        for spec in (clocks.accept, clocks.resolve, clocks.verify, clocks.feedback, clocks.case)
        if spec is not None
    )
    horizon = today + timedelta(days=longest)
    return policy.work_calendar().missing_years(range(today.year, horizon.year + 1))


def calendar_warning(policy: TimePolicy, today: date) -> str | None:
    """The sentence every start, ``/readyz`` and the on-call banner say when the calendar has gaps."""
    gaps = calendar_gaps(policy, today)
    if not gaps:
        return None
    years = "、".join(map(str, gaps))
    return (
        f"{years} 年的国务院节假日安排尚未载入：这些年份暂按周一至周五计算工作日。"
        f"请升级 chinese-calendar 或在时限政策文件 calendar: 中补录。"
        f" (no State Council calendar for {', '.join(map(str, gaps))}: counting Monday-Friday)"
    )


def announce_calendar(policy: TimePolicy, now: datetime) -> None:
    """Every process says it at start: a calendar gap is never a silent guess."""
    warning = calendar_warning(policy, now.astimezone(policy.tz).date())
    if warning:
        logging.getLogger("dispatcher.supervision.calendar").warning(warning)
