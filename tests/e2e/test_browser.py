"""A complaint worked to closure in headless Chromium: handler accepts and submits, verifier verifies,
the requester's feedback closes it. Screenshots of every step go to ``test-artifacts/screenshots/``.

Runs Debian's ``chromium`` through Playwright's sync API (``executable_path``): browsers cannot be
downloaded here. Without ``/usr/bin/chromium`` the test is skipped, unless
``DISPATCH_TEST_REQUIRE_SERVICES=1`` (CI), where a missing browser fails the run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dispatcher.org.model import Org
from tests import factories
from tests.support import ROOT, wait_for
from tests.web_helpers import add_staff, publish

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE = os.environ.get("DISPATCH_TEST_REQUIRE_SERVICES") == "1"
SHOTS = ROOT / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: Flags for a headless browser in a container with no network to call home to.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if REQUIRE:
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); Playwright cannot download browsers")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Shots:
    """Numbered full-page screenshots of one run, named after the database backend."""

    def __init__(self, prefix: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.taken: list[Path] = []

    def __call__(self, page: Any, name: str) -> None:
        path = SHOTS / f"{self.prefix}-{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)


def log_in(
    browser: Any, base: str, login: str, password: str, viewport: dict[str, int], shots: Shots | None = None
) -> Any:
    context = browser.new_context(base_url=base, viewport=viewport, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    if shots is not None:
        shots(page, "login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    page.click("button:has-text('登录')")
    page.wait_for_url(f"{base}/")
    return page


def test_a_complaint_is_accepted_submitted_verified_and_closed_in_the_browser(
    browser: Any, engine: sa.Engine, loaded_org: Org, api_url: str, worker: object
) -> None:
    shots = Shots(engine.dialect.name)
    _, handler_password = add_staff(engine, loaded_org, "deng.xiaoming", "DXZ-JW", "handler")
    _, verifier_password = add_staff(engine, loaded_org, "fang.liqun", "SHI1", "verifier")
    source = factories.source_token(engine)
    event_id = publish(api_url, source)
    headers = {"Authorization": f"Bearer {source}"}

    def routed() -> Any:
        event = httpx.get(f"{api_url}/api/v1/events/{event_id}", headers=headers, timeout=10).json()
        return event if event["task"] else None

    event = wait_for(routed, timeout=20, what="the worker to route the complaint")
    task, ledger_no = event["task"], event["ledger_no"]
    task_url = f"{api_url}/tasks/{task['id']}"

    # The handler of 大兴镇纪委 logs in, opens the task, accepts it and submits the outcome.
    page = log_in(browser, api_url, "deng.xiaoming", handler_password, LAPTOP, shots)
    shots(page, "handler-inbox")
    page.click(f"text={ledger_no}")
    page.wait_for_url(task_url)
    assert page.inner_text("#task-state") == "已分办"
    assert "138****5678" in page.content() and "13812345678" not in page.content()
    shots(page, "task-dispatched")
    page.click("#moves button:has-text('接单')")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("#task-state") == "已接单"
    shots(page, "task-accepted")
    page.check("input[name=resolved][value=true]")
    page.fill("textarea[name=reply]", "经核实，惠民补贴已于本周发放到位。")
    page.click("button:has-text('确认办结报送')")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("#task-state") == "已报送待验"
    shots(page, "task-submitted")
    page.context.close()

    # The verifier of 第一纪检监察室 finds it in the queue and verifies it.
    page = log_in(browser, api_url, "fang.liqun", verifier_password, LAPTOP)
    page.goto("/verify")
    shots(page, "verifier-queue")
    page.click(f"text={ledger_no}")
    page.click("button:has-text('确认验单通过')")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("#task-state") == "待回访"
    shots(page, "task-verified")

    # The requester's platform relays the feedback: satisfied closes the task.
    r = httpx.post(
        f"{api_url}/api/v1/events/{event_id}/feedback", json={"rating": "satisfied"}, headers=headers
    )
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text

    page.reload()
    assert page.inner_text("#task-state") == "已办结"
    history = [row.split("\t") for row in page.inner_text("#history tbody").splitlines()]
    assert [row[1] for row in history] == ["分办", "接单", "办结报送", "验单通过", "回访办结"]
    assert not page.query_selector("#moves form")  # nothing left to do
    shots(page, "task-closed-laptop")
    page.context.close()

    # The same pages on a phone.
    page = log_in(browser, api_url, "deng.xiaoming", handler_password, PHONE)
    page.click("#state-tabs a:has-text('已办结')")  # a tab per state, with its count
    page.wait_for_url(re.compile(r".*[?&]status=closed.*"))
    assert ledger_no in page.inner_text("#task-list")
    shots(page, "handler-inbox-phone")
    page.goto(f"/tasks/{task['id']}")
    assert page.inner_text("#task-state") == "已办结"
    shots(page, "task-closed-phone")
    page.context.close()

    assert all(p.stat().st_size > 0 for p in shots.taken)
