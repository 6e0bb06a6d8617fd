"""Working days for the lifecycle's return window, on the same calendar as the deadlines.

A thin bridge until the time-limit policy (with its calendar overrides) is loaded everywhere:
it uses ``dispatcher.calendar.WorkCalendar`` without overrides and logs, once per year, when
it has to count Monday–Friday for a year the State Council calendar does not cover yet.
"""

from __future__ import annotations

import logging
from datetime import date

from dispatcher.calendar import WorkCalendar

log = logging.getLogger(__name__)
_CALENDAR = WorkCalendar()
_warned: set[int] = set()


def workdays_after(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when ``end <= start``)."""
    for year in _CALENDAR.missing_years(range(start.year, end.year + 1)):
        if year not in _warned:
            _warned.add(year)
            log.warning("no State Council calendar for %d: counting Monday–Friday as working days", year)
    return _CALENDAR.workdays_after(start, end)
