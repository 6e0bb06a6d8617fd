"""A year without a State Council calendar is said loudly: ``/readyz`` and ``dispatcher policy check``.

chinese-calendar knows the years published when it was released; the policy's horizon (its
longest clock) decides which years a deadline set today may reach. The API's clock is fixed
(``Services.now``) so the horizon is known whatever the date of the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from dispatcher.settings import Settings
from dispatcher.supervision.calendar import WorkCalendar
from tests.conftest import make_settings
from tests.integration.conftest import SharedServer
from tests.support import ROOT, child_env, dispatcher_cmd

LAST_KNOWN = max(y for y in range(2004, 2200) if WorkCalendar().missing_years([y]) == [])
MISSING = LAST_KNOWN + 1


def policy_file(tmp_path: Path, years: list[int]) -> Path:
    path = tmp_path / f"policy-{'-'.join(map(str, years)) or 'none'}.yaml"
    if years:
        path.write_text(
            "sweep_seconds: 1\ncalendar:\n"
            + "".join(f"  {y}:\n    holidays: [{y}-01-01]\n    workdays: []\n" for y in years),
            encoding="utf-8",
        )
    else:
        path.write_text("sweep_seconds: 1\n", encoding="utf-8")
    return path


@pytest.fixture
def serve(
    shared_server: SharedServer, tmp_path: Path, database_url: str, redis_url: str, broker_namespace: str
) -> Iterator[Callable[[datetime, list[int]], str]]:
    """The API with a fixed clock and a policy listing ``years`` under ``calendar:``."""
    stack: list[object] = []

    def start(now: datetime, years: list[int]) -> str:
        settings: Settings = make_settings(
            tmp_path, database_url, redis_url, broker_namespace, policy_file=policy_file(tmp_path, years)
        )
        context = shared_server.serving(settings)
        url = context.__enter__()
        stack.append(context)
        shared_server.app.state.services.now = lambda: now
        return url

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)  # type: ignore[attr-defined]


def readyz(url: str) -> dict[str, object]:
    r = httpx.get(f"{url}/readyz", timeout=10)
    assert r.status_code == 200, r.text  # a calendar gap warns; it does not make the API unready
    body: dict[str, object] = r.json()
    assert body["status"] == "ok", body
    return body


@pytest.mark.parametrize(
    ("now", "named"),
    [
        # deep in a year nobody has published
        (datetime(2099, 6, 1, 2, 0, tzinfo=UTC), [2099]),
        # December of the last known year: a clue's 90-day case clock reaches next year
        (datetime(LAST_KNOWN, 12, 1, 2, 0, tzinfo=UTC), [MISSING]),
    ],
    ids=["2099", "end-of-last-known-year"],
)
def test_readyz_warns_of_a_year_without_calendar(
    serve: Callable[[datetime, list[int]], str], now: datetime, named: list[int]
) -> None:
    body = readyz(serve(now, []))
    warnings = body.get("warnings")
    assert isinstance(warnings, list) and warnings, body
    text = " ".join(map(str, warnings))
    for year in named:
        assert str(year) in text, body


@pytest.mark.parametrize(
    ("now", "listed"),
    [
        (datetime(2099, 6, 1, 2, 0, tzinfo=UTC), [2099]),
        (datetime(LAST_KNOWN, 12, 1, 2, 0, tzinfo=UTC), [MISSING]),
        (datetime(LAST_KNOWN, 3, 1, 2, 0, tzinfo=UTC), []),  # the horizon stays in a known year
    ],
    ids=["2099-listed", "next-year-listed", "known-year"],
)
def test_readyz_is_quiet_when_the_policy_lists_the_year(
    serve: Callable[[datetime, list[int]], str], now: datetime, listed: list[int]
) -> None:
    body = readyz(serve(now, listed))
    assert not body.get("warnings"), body


# --- ``dispatcher policy check`` (a real subprocess; it reads today's date) ------------------------


def policy_check(path: Path, tmp_path: Path, today: str = "2099-06-01") -> str:
    """``dispatcher policy check`` as a real subprocess, as of ``today`` (a year no calendar knows)."""
    import subprocess

    done = subprocess.run(
        dispatcher_cmd("policy", "check", str(path), "--today", today),
        env=child_env(DISPATCH_DATA_DIR=str(tmp_path / "data")),
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_policy_check_warns_of_a_year_without_calendar_and_not_once_listed(tmp_path: Path) -> None:
    out = policy_check(policy_file(tmp_path, []), tmp_path)
    assert "ok" in out and "no State Council calendar for 2099" in out, out
    listed = policy_check(policy_file(tmp_path, [2099]), tmp_path)
    assert "warning" not in listed and "no State Council calendar" not in listed, listed


def test_policy_check_of_the_example_policy_warns_when_its_deadlines_reach_an_unknown_year(
    tmp_path: Path,
) -> None:
    last_known = max(y for y in range(2000, 2100) if WorkCalendar().source(y).value == "state_council")
    out = policy_check(ROOT / "examples" / "policy.yaml", tmp_path, today=f"{last_known}-12-01")
    assert f"no State Council calendar for {last_known + 1}" in out, out
    quiet = policy_check(ROOT / "examples" / "policy.yaml", tmp_path, today=f"{last_known}-03-01")
    assert "no State Council calendar" not in quiet, quiet
