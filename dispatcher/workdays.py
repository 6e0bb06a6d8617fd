"""Working days (工作日) by the State Council calendar, with make-up workdays (调休).

``chinese-calendar`` knows the years the State Council has published; for a year it does not
know yet we fall back to Monday–Friday and say so (``known_year``), never silently. The full
calendar with policy overrides and loud warnings arrives with time-limited supervision.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import chinese_calendar

log = logging.getLogger(__name__)


def known_year(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def is_workday(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        log.warning("no State Council calendar for %d: counting Monday–Friday as working days", day.year)
        return day.weekday() < 5


def workdays_after(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when ``end <= start``)."""
    count, day = 0, start + timedelta(days=1)
    while day <= end:
        count += is_workday(day)
        day += timedelta(days=1)
    return count
