"""The time-limit policy file: defaults from DESIGN §1, validation with lines, calendar overrides."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dispatcher.errors import ConfigError
from dispatcher.supervision.calendar import CalendarSource
from dispatcher.supervision.deadlines import DayKind
from dispatcher.supervision.policy import DEFAULT_POLICY, check_policy_text, load_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"


def test_the_example_spells_out_the_defaults() -> None:
    policy, problems = check_policy_text(EXAMPLE.read_text(), str(EXAMPLE))
    assert problems == []
    assert policy == DEFAULT_POLICY


def test_defaults_follow_the_design() -> None:
    clocks = DEFAULT_POLICY.clocks
    assert (clocks["complaint"].accept.days, clocks["complaint"].resolve.days) == (1, 5)
    assert (clocks["enterprise_request"].accept.days, clocks["enterprise_request"].resolve.days) == (1, 10)
    assert clocks["clue"].resolve.kind is DayKind.calendar and clocks["clue"].resolve.days == 30
    assert clocks["clue"].feedback is None and clocks["clue"].case is not None
    assert DEFAULT_POLICY.warning_threshold == 0.75
    assert [s.to for s in DEFAULT_POLICY.escalation] == ["zone_leader", "commission"]
    assert DEFAULT_POLICY.extension.max_count == 1


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("warning_threshold: 1.5\n", 1, "warning_threshold"),
        ("clocks:\n  complaint:\n    resolve: {days: 0}\n", 3, "clocks.complaint.resolve.days"),
        ("clocks:\n  complaint:\n    resolve: {days: 5, kind: weekly}\n", 3, "clocks.complaint.resolve.kind"),
        ("timezone: Mars/Olympus\n", 1, "timezone"),
        ("office_hours:\n  start: '18:00'\n  end: '09:00'\n", 1, "office_hours"),
        ("escalation:\n  - {to: mayor, after: {days: 1}}\n", 2, "escalation[0].to"),
        ("surprise: 1\n", 1, "surprise"),
    ],
)
def test_problems_name_their_line_and_field(text: str, line: int, field: str) -> None:
    policy, problems = check_policy_text(text, "p.yaml")
    assert policy is None
    assert (problems[0].line, problems[0].field) == (line, field), problems


def test_calendar_overrides_cover_a_year_the_library_does_not_know() -> None:
    text = "calendar:\n  2099:\n    holidays: [2099-01-01]\n    workdays: [2099-01-03]\n"
    policy, problems = check_policy_text(text)
    assert policy is not None, problems
    calendar = policy.work_calendar()
    assert calendar.source(2099) is CalendarSource.policy
    assert not calendar.is_workday(date(2099, 1, 1)) and calendar.is_workday(date(2099, 1, 3))


def test_calendar_dates_must_belong_to_their_year() -> None:
    policy, problems = check_policy_text("calendar:\n  2099:\n    holidays: [2098-12-31]\n")
    assert policy is None and "another year" in problems[0].message


def test_no_file_means_the_defaults_and_a_bad_file_is_one_config_error(tmp_path: Path) -> None:
    assert load_policy(None) is DEFAULT_POLICY
    bad = tmp_path / "policy.yaml"
    bad.write_text("warning_threshold: 2\n")
    with pytest.raises(ConfigError, match=r"policy\.yaml: 1 problem") as caught:
        load_policy(bad)
    assert [d.split(": ", 2)[:2] for d in caught.value.details] == [[f"{bad}:1", "warning_threshold"]]


def test_the_feedback_window_comes_from_the_policy_unless_a_setting_overrides_it() -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    verified = datetime(2026, 11, 16, 10, 0, tzinfo=tz)
    from dispatcher.supervision.policy import ClockSpec, KindClocks

    clocks = {
        **DEFAULT_POLICY.clocks,
        "complaint": KindClocks(resolve=ClockSpec(days=5), feedback=ClockSpec(days=3)),
    }
    policy = DEFAULT_POLICY.model_copy(update={"clocks": clocks})
    assert policy.feedback_due("complaint", verified) == datetime(2026, 11, 19, 17, 30, tzinfo=tz)
    by_setting = policy.with_feedback_window(timedelta(hours=1))
    assert by_setting.feedback_due("complaint", verified) == verified + timedelta(hours=1)
    assert policy.with_feedback_window(None).feedback_due("complaint", verified) == policy.feedback_due(
        "complaint", verified
    )
