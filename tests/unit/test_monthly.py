"""The monthly rhythm's pure parts: periods and when jobs fall due, the report's formulas, the ranking."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dispatcher.errors import ValidationFailed
from dispatcher.monthly.periods import Job, Period, due_periods, due_time
from dispatcher.monthly.policy import Ranking
from dispatcher.reports import figures as fig
from dispatcher.supervision.policy import DEFAULT_POLICY

TZ = ZoneInfo("Asia/Shanghai")
CAL = DEFAULT_POLICY.work_calendar()
SCHEDULES = DEFAULT_POLICY.schedules


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "26-10", "2026-1", "1999-12", "2026-10-01", "", " x"])
def test_a_period_is_a_month_like_2026_10_or_a_clear_error(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        Period.parse(text)
    assert caught.value.details == [{"path": "period", "message": "expected YYYY-MM"}]


def test_periods_shift_across_years_and_their_windows_are_months_in_the_policy_timezone() -> None:
    assert str(Period.parse("2026-01").shift(-1)) == "2025-12"
    assert str(Period(2026, 12).shift(1)) == "2027-01" and str(Period(2026, 10).shift(-12)) == "2025-10"
    assert Period(2026, 2).last_day.day == 28
    assert Period(2026, 10).end(TZ) == at("2026-11-01T00:00")


@pytest.mark.parametrize(
    ("job", "period", "due"),
    [
        (Job.report, "2026-10", "2026-11-01T01:00"),  # the 1st, for the month before
        (Job.report, "2026-12", "2027-01-01T01:00"),
        (Job.dispatch, "2026-10", "2026-10-08T08:30"),  # after the National Day holiday (1–7 October)
        (Job.dispatch, "2026-11", "2026-11-02T08:30"),  # 1 November is a Sunday
        (Job.training, "2026-02", "2026-02-02T08:30"),
        (Job.training, "2026-01", "2026-01-04T08:30"),  # a Sunday made a working day (调休)
    ],
)
def test_each_job_falls_due_on_its_day_of_the_state_council_calendar(job: Job, period: str, due: str) -> None:
    assert due_time(job, Period.parse(period), SCHEDULES, CAL, TZ) == at(due)


def test_a_scheduler_back_after_weeks_finds_every_period_missed_and_none_before_it_served() -> None:
    now = at("2026-11-02T09:00")
    assert due_periods(Job.report, now, SCHEDULES, CAL, TZ) == [Period(2026, m) for m in (7, 8, 9, 10)]
    since = at("2026-09-20T00:00")
    assert due_periods(Job.report, now, SCHEDULES, CAL, TZ, since=since) == [
        Period(2026, 9),
        Period(2026, 10),
    ]
    assert due_periods(Job.dispatch, at("2026-11-02T08:29"), SCHEDULES, CAL, TZ, since=since) == [
        Period(2026, 10)
    ]
    assert due_periods(Job.dispatch, at("2026-11-02T08:30"), SCHEDULES, CAL, TZ, since=since)[-1] == Period(
        2026, 11
    )
    strict = SCHEDULES.model_copy(update={"catch_up_months": 0})
    assert due_periods(Job.report, now, strict, CAL, TZ) == [Period(2026, 10)]  # the latest only


def test_job_names_are_the_clis_and_an_unknown_one_is_a_clear_error() -> None:
    assert [j.value for j in Job] == ["monthly-report", "monthly-dispatch", "monthly-training"]
    with pytest.raises(ValidationFailed, match="monthly-report, monthly-dispatch, monthly-training"):
        Job.parse("nightly")


COUNTS = {
    "received": 6, "closed": 5, "closed_on_time": 4, "handling_seconds": 35 * 86400, "responded_on_time": 5,
    "answers": 5, "resolved_asked": 4, "resolved_yes": 3, "satisfied": 4, "returned": 0, "reopened": 1,
    "extended": 1, "late_open": 1,
}  # fmt: skip


def test_the_rates_follow_design_7_and_divide_only_what_they_count() -> None:
    f = fig.request_figures(COUNTS, overdue_open=2)
    assert (f["completion_rate"], f["on_time_rate"], f["response_rate"]) == (0.8333, 0.8, 0.8333)
    assert f["resolution_rate"] == 0.75  # 3 of the 4 answers that said whether it was resolved
    assert f["satisfaction_rate"] == 0.8 and f["avg_handling_days"] == 7.0
    assert (f["late"], f["overdue_rate"], f["reopen_rate"], f["overdue_open"]) == (2, 0.3333, 0.1667, 2)
    empty = fig.request_figures(dict.fromkeys(COUNTS, 0))
    assert {k for k, v in empty.items() if v is None} == {
        "completion_rate", "on_time_rate", "avg_handling_days", "response_rate", "resolution_rate",
        "satisfaction_rate", "overdue_rate", "reopen_rate",
    }  # fmt: skip


def test_the_score_weighs_the_three_rates_and_takes_off_the_penalties() -> None:
    f = fig.request_figures(COUNTS)
    expected = round(100 * (0.30 * 0.8333 + 0.35 * 0.75 + 0.35 * 0.8) - 10 * 0.3333 - 10 * 0.1667, 2)
    assert fig.score(f, Ranking()) == expected
    assert fig.score(f, Ranking(min_answers=6)) is None  # 5 answers < 6: not ranked
    heavy = Ranking(weights={"response": 1.0, "resolution": 0.0, "satisfaction": 0.0})
    assert fig.score(f, heavy) == round(100 * 0.8333 - 10 * 0.3333 - 10 * 0.1667, 2)


def test_weights_must_add_up_to_one() -> None:
    with pytest.raises(ValueError, match="add up to 1"):
        Ranking(weights={"response": 0.5, "resolution": 0.5, "satisfaction": 0.5})


def test_the_ranking_shares_ranks_on_ties_and_lists_the_not_ranked_last() -> None:
    ranked = fig.rank({"B": 90.0, "A": 90.0, "C": 95.5, "D": None, "E": 10.0})
    assert [(s.unit, s.rank) for s in ranked] == [("C", 1), ("A", 2), ("B", 2), ("E", 4), ("D", None)]
