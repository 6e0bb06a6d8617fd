"""The report's formulas (DESIGN §7), as plain functions over counts: no database here.

The queries (``reports.queries``) count per (kind, zone, unit); these functions add counts up
and turn them into rates, so a zone's or the total's rate is computed from its own sums, never
averaged from its units' rates. Rates are fractions (0.8333), rounded to 4 places (two decimals
of a percent); ``None`` when there is nothing to divide by.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dispatcher.monthly.policy import Ranking

#: What the queries count for complaints and enterprise requests, per group.
REQUEST_COUNTS = (
    "received",  # received_at in the window
    "closed",  # of those, closed by the end of the window
    "closed_on_time",  # of the closed, submitted by their resolve-by deadline
    "handling_seconds",  # sum over the closed of closed_at − received_at
    "responded_on_time",  # of the received, first accepted by their accept-by deadline (and by the end)
    "answers",  # feedback answers given by the end of the window
    "resolved_asked",  # of those, answers where the requester was asked 解决 (resolved not null)
    "resolved_yes",  # of those, resolved = true
    "satisfied",  # answers satisfied or basically satisfied
    "returned",  # tasks returned (退回) by the end
    "reopened",  # tasks reopened after an unsatisfied answer by the end
    "extended",  # tasks with an approved extension by the end
    "late_open",  # of the received, open at the end and past due
)

#: What the queries count for clues, per group.
CLUE_COUNTS = (
    "received",
    "dispositions",
    "disposition_talk_letter",
    "disposition_preliminary_verification",
    "disposition_hold",
    "disposition_close_out",
    "dispositions_on_time",
    "talk_letters",
    "verifications",
    "cases_filed",
    "concluded",
    "people_disciplined",
    "sanction_party",
    "sanction_government",
    "sanction_organizational",
    "form_first",
    "form_second",
    "form_third",
    "form_fourth",
    "amount_recovered",
)


def rate(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def add_up(rows: Iterable[Mapping[str, Any]], names: Iterable[str]) -> dict[str, float]:
    """Sums of the counts ``names`` over ``rows`` (missing counts are 0)."""
    names = tuple(names)
    total = dict.fromkeys(names, 0.0)
    for row in rows:
        for name in names:
            total[name] += float(row.get(name) or 0)
    return {k: (int(v) if float(v).is_integer() else round(v, 2)) for k, v in total.items()}


def request_figures(counts: Mapping[str, Any], overdue_open: int = 0) -> dict[str, Any]:
    """The figures of DESIGN §7 for one group of complaints and enterprise requests."""
    received, closed = counts["received"], counts["closed"]
    late = (closed - counts["closed_on_time"]) + counts["late_open"]
    return {
        **{k: counts[k] for k in REQUEST_COUNTS if k != "handling_seconds"},
        "completion_rate": rate(closed, received),
        "on_time_rate": rate(counts["closed_on_time"], closed),
        "avg_handling_days": round(counts["handling_seconds"] / 86400 / closed, 1) if closed else None,
        "response_rate": rate(counts["responded_on_time"], received),
        "resolution_rate": rate(counts["resolved_yes"], counts["resolved_asked"]),
        "satisfaction_rate": rate(counts["satisfied"], counts["answers"]),
        "late": late,
        "overdue_rate": rate(late, received),
        "reopen_rate": rate(counts["reopened"], received),
        "overdue_open": overdue_open,
    }


def clue_figures(counts: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **dict(counts),
        "disposition_on_time_rate": rate(counts["dispositions_on_time"], counts["dispositions"]),
    }


def change(now: float | None, before: float | None) -> float | None:
    """Now minus a year earlier (or the previous period); None where either is unknown."""
    if now is None or before is None:
        return None
    return round(now - before, 4)


@dataclass(frozen=True, slots=True)
class Scored:
    unit: str
    score: float | None  #: None: not ranked (too few answers)
    rank: int | None


def score(figures: Mapping[str, Any], policy: Ranking) -> float | None:
    """``100 × (w_response·response + w_resolution·resolution + w_satisfaction·satisfaction)
    − p_overdue·overdue_rate − p_reopen·reopen_rate``; None when the unit has fewer answers than
    the policy's minimum (it is then "not ranked"). A missing rate counts as 0 (a unit that asked
    nobody whether it was resolved gains nothing from resolution)."""
    if figures["answers"] < policy.min_answers:
        return None
    w, p = policy.weights, policy.penalties

    def r(name: str) -> float:
        value = figures.get(name)
        return float(value) if value is not None else 0.0

    value = 100 * (
        w.response * r("response_rate") + w.resolution * r("resolution_rate")
        + w.satisfaction * r("satisfaction_rate")
    ) - p.overdue * r("overdue_rate") - p.reopen * r("reopen_rate")  # fmt: skip
    return round(value, 2)


def rank(scores: Mapping[str, float | None]) -> list[Scored]:
    """Highest score first (ties share a rank, then by unit code); the not ranked after them."""
    ranked = sorted(((u, s) for u, s in scores.items() if s is not None), key=lambda x: (-x[1], x[0]))
    out, previous, position = [], None, 0
    for i, (unit, value) in enumerate(ranked, start=1):
        if value != previous:
            position, previous = i, value
        out.append(Scored(unit, value, position))
    out += [Scored(u, None, None) for u in sorted(u for u, s in scores.items() if s is None)]
    return out
