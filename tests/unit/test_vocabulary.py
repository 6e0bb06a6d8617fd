"""One place each: the stored words are defined once, and every one a person reads has its label."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dispatcher.bootstrap import policy_for
from dispatcher.enums import (
    EVENT_KINDS,
    RUNNING_CLOCKS,
    WORKING,
    ClockName,
    DeadlineState,
    Role,
    TaskKind,
    TaskStatus,
)
from dispatcher.errors import ConfigError
from dispatcher.settings import Settings
from dispatcher.tasks.lifecycle import STAFF_MOVES, Move
from dispatcher.web import labels
from events.schemas import EventKind


def test_the_kinds_upstream_publishes_are_the_task_kinds_that_come_from_events() -> None:
    assert [k.value for k in EventKind] == [k.value for k in EVENT_KINDS]


def test_every_kind_has_its_own_ledger_prefix_and_only_requests_ask_for_feedback() -> None:
    """DESIGN §4's five ledgers; a meeting's follow-up decisions are numbered in the meeting's (DD-)."""
    prefixes = {k: k.ledger_prefix for k in TaskKind}
    assert set(prefixes.values()) == {"XS", "TS", "QY", "DD", "PX"}
    shared = [k for k in TaskKind if list(prefixes.values()).count(prefixes[k]) > 1]
    assert set(shared) == {TaskKind.monthly_dispatch, TaskKind.follow_up}
    assert {k for k in TaskKind if k.asks_feedback} == {TaskKind.complaint, TaskKind.enterprise_request}


def test_only_the_resolve_clock_runs_where_the_handler_works() -> None:
    assert {TaskStatus.accepted, TaskStatus.rejected, TaskStatus.reopened} == WORKING
    running = {c for clocks in RUNNING_CLOCKS.values() for c in clocks}
    assert running == set(ClockName) - {ClockName.acknowledge}  # that one runs while a reporter waits
    assert TaskStatus.suspended not in RUNNING_CLOCKS and TaskStatus.closed not in RUNNING_CLOCKS


@pytest.mark.parametrize(
    ("table", "words"),
    [
        (labels.KINDS, TaskKind),
        (labels.STATES, TaskStatus),
        (labels.ROLES, Role),
        (labels.DEADLINE_STATES, DeadlineState),
        (labels.CLOCKS, ClockName),
        (labels.MOVES, Move),
    ],
)
def test_the_label_table_words_every_stored_code(table: dict[str, str], words: type) -> None:
    assert {w.value for w in words} <= set(table), {w.value for w in words} - set(table)
    assert all(table[w.value].strip() for w in words)


def test_the_staff_moves_are_routes_of_the_lifecycle_and_the_requesters_are_not() -> None:
    assert set(STAFF_MOVES.values()) <= set(Move)
    assert not {Move.feedback_close, Move.feedback_reopen, Move.feedback_expire} & set(STAFF_MOVES.values())


def test_supervision_notifications_are_labelled_by_their_step() -> None:
    for step, word in labels.STEPS.items():
        assert labels.NOTIFICATION_KINDS[f"supervision.{step}"] == word
    assert labels.step_label("resolve.escalated.2") == "办结升级督办（第2级）"
    assert labels.step_label("accept#2.warning") == "接单（第2次）临期预警"


def test_the_pages_word_the_time_left_the_api_gives_in_codes() -> None:
    running = {"clock": "resolve", "seconds_left": 2 * 86_400 + 3 * 3600 + 59, "state": "on_time"}
    assert labels.deadline_text(running, "accepted") == "办结剩余2天3小时"
    late = {"clock": "accept", "seconds_left": -5 * 60, "state": "overdue"}
    assert labels.deadline_text(late, "dispatched") == "接单超期5分"
    assert labels.deadline_text({"clock": None, "seconds_left": None}, "suspended") == "已暂停"


def _settings(tmp_path: Path, policy: str | None, **kw: object) -> Settings:
    path = None
    if policy is not None:
        path = tmp_path / "policy.yaml"
        path.write_text(policy, encoding="utf-8")
    return Settings(data_dir=tmp_path, policy_file=path, **kw)  # type: ignore[arg-type]


def test_one_timezone_a_policy_without_one_takes_the_setting(tmp_path: Path) -> None:
    policy = policy_for(_settings(tmp_path, "warning_threshold: 0.5\n", timezone="Asia/Urumqi"))
    assert (policy.timezone, policy.warning_threshold) == ("Asia/Urumqi", 0.5)
    assert policy_for(_settings(tmp_path, None, timezone="Asia/Urumqi")).timezone == "Asia/Urumqi"


def test_a_policy_naming_another_timezone_than_the_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DISPATCH_TIMEZONE"):
        policy_for(_settings(tmp_path, "timezone: Asia/Urumqi\n", timezone="Asia/Shanghai"))
    same = policy_for(_settings(tmp_path, "timezone: Asia/Shanghai\n", timezone="Asia/Shanghai"))
    assert same.timezone == "Asia/Shanghai"


def test_the_feedback_window_setting_overrides_every_kinds_feedback_clock(tmp_path: Path) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    now = datetime(2026, 11, 16, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    policy = policy_for(_settings(tmp_path, None, feedback_window_days=0.5))
    assert policy.feedback_due("complaint", now) == now + timedelta(hours=12)
    assert policy_for(_settings(tmp_path, None)).feedback_due("complaint", now) > now + timedelta(days=6)


def test_an_unknown_timezone_setting_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        Settings(timezone="Mars/Olympus")
