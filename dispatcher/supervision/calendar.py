"""The working-day calendar (工作日历): the State Council's, with policy overrides, never a silent guess.

``chinese-calendar`` carries the State Council's holidays and make-up workdays (调休) for
the years published when it was released. Next year's calendar is announced each November;
until a release of the library has it, the policy file may list that year's holidays and
make-up workdays. For a year known to neither, the calendar falls back to Monday–Friday and
reports the year in ``missing_years`` so the system can say so loudly (``/readyz``, the on-call
banner, a log line at every start).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

import chinese_calendar


class CalendarSource(StrEnum):
    state_council = "state_council"  #: chinese-calendar's published data
    policy = "policy"  #: holidays and make-up workdays from the policy file
    weekends_only = "weekends_only"  #: no data: Monday–Friday, with a loud warning


@dataclass(frozen=True, slots=True)
class YearOverride:
    """A year's calendar as the policy file states it (usually the year just announced)."""

    holidays: frozenset[date] = frozenset()
    #: Make-up working days (调休上班) that fall on weekends.
    workdays: frozenset[date] = frozenset()


@lru_cache(maxsize=64)
def _library_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


@lru_cache(maxsize=8192)
def _state_council_workday(day: date) -> bool:
    """The library's answer, remembered: it validates its date on every call, and every deadline
    asks about dozens of days (a tenth of the routing worker's time before this cache)."""
    return bool(chinese_calendar.is_workday(day))


@dataclass(frozen=True)
class WorkCalendar:
    """Working days; policy overrides win over the library for the years they name."""

    overrides: Mapping[int, YearOverride] = field(default_factory=dict)

    def source(self, year: int) -> CalendarSource:
        if year in self.overrides:
            return CalendarSource.policy
        if _library_knows(year):
            return CalendarSource.state_council
        return CalendarSource.weekends_only

    def missing_years(self, years: Iterable[int]) -> list[int]:
        """The years among ``years`` counted as weekends-only: the caller must warn about them."""
        return sorted({y for y in years if self.source(y) is CalendarSource.weekends_only})

    def is_workday(self, day: date) -> bool:
        source = self.source(day.year)
        if source is CalendarSource.policy:
            override = self.overrides[day.year]
            if day in override.workdays:
                return True
            if day in override.holidays:
                return False
            return day.weekday() < 5
        if source is CalendarSource.state_council:
            return _state_council_workday(day)
        return day.weekday() < 5

    def next_workday(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        day += timedelta(days=1)
        while not self.is_workday(day):
            day += timedelta(days=1)
        return day

    def add_workdays(self, day: date, count: int) -> date:
        """The ``count``-th working day after ``day`` (``day`` itself when ``count`` is 0)."""
        if count < 0:
            raise ValueError("count must not be negative")
        for _ in range(count):
            day = self.next_workday(day)
        return day

    def workdays_after(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when ``end <= start``)."""
        count, day = 0, start + timedelta(days=1)
        while day <= end:
            count += self.is_workday(day)
            day += timedelta(days=1)
        return count
