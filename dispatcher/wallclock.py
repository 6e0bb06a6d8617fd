"""The wall clock, read in one place: everything else takes the time as an argument.

``Now`` is what a process passes around (``Runtime.now``); tests pass a fixed one. Not to be
confused with a task's supervision clocks (accept, resolve, verify: ``supervision.clocks``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Now = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def known_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows (validators call it); else ``ValueError``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def span_parts(seconds: float) -> tuple[int, int, int]:
    """A length of time as whole days, hours and minutes (the sign dropped), for wording time left."""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return days, hours, mins
