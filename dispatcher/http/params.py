"""Parameters every route shares: ids and offsets bounded to what the databases store.

An id beyond 2^53 − 1 (``MAX_JSON_INT``, the largest integer every JSON client keeps exactly;
the databases stop at 2^63 − 1) cannot name anything: it is refused with ``422`` naming the
parameter, never passed to the database to overflow there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from dispatcher.models import MAX_JSON_INT as MAX_INT

Id = Annotated[int, Path(ge=1, le=MAX_INT, description="an id (1 … 2^53 − 1)")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="rows to skip")]


def form_int(value: object, *, low: int = 0, high: int = MAX_INT) -> int | None:
    """A form field as an integer within ``low … high``, or None: ASCII digits only (``²`` and
    ``٣`` are digits to Python's ``isdigit`` but not numbers a person typed), and never a number of
    thousands of digits (``int()`` of one is slow and overflows the database)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("-")
    if not digits or len(digits) > 19 or not (digits.isascii() and digits.isdigit()):
        return None
    number = sign * int(digits)
    return number if low <= number <= high else None
