"""The on-call console in headless Chromium (issue 9): the live figures and alerts, a triage item
routed with one click, a dead letter retried from the page and its event dispatched — on a laptop
and on a phone, screenshots in ``test-artifacts/screenshots/`` (``<backend>-oncall-NN-<step>.png``)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.db import unit_of_work
from dispatcher.models import Task
from dispatcher.oncall.service import check_alerts
from dispatcher.org.model import Org
from dispatcher.routing.dispatch import dispatch_event
from dispatcher.runtime import Runtime
from dispatcher.wallclock import utcnow
from tests import factories
from tests.e2e.test_browser import LAPTOP, PHONE, Shots, browser, log_in
from tests.integration.test_oncall import _dead_letter
from tests.support import wait_for
from tests.web_helpers import add_staff, publish

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
__all__ = ["browser"]  # the fixture, shared with test_browser


def _task_of(engine: sa.Engine, event_id: str) -> Task | None:
    with unit_of_work(engine, read_only=True) as s:
        return s.exec(select(Task).where(Task.event_id == event_id)).first()


def test_oncall_routes_triage_and_retries_a_dead_letter_in_the_browser(
    browser: Any, engine: sa.Engine, loaded_org: Org, api_url: str, broker: Any, runtime: Runtime,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    shots = Shots(f"{engine.dialect.name}-oncall")
    _, password = add_staff(engine, loaded_org, "zhou.zhiban", "SHI1", "oncall")
    source = factories.source_token(engine)
    stuck = publish(api_url, source)  # no worker yet: its message is the one that dies
    letter = _dead_letter(broker)
    odd = publish(api_url, source, factories.complaint(summary="路灯损坏无人维修"))
    _dead_letter(broker)
    with unit_of_work(engine) as s:  # routing failed on it: it waits in triage for a person
        dispatch_event(s, odd, now=utcnow(), failure="KeyError")
    check_alerts(runtime)

    page = log_in(browser, api_url, "zhou.zhiban", password, LAPTOP)
    page.goto("/queue")
    figures = page.inner_text("#queue-figures")
    assert "死信" in figures and "待分办" in figures and "存活工作进程" in figures
    assert "告警 · 死信" in page.inner_text("#queue-live")
    assert "路灯损坏无人维修" in page.inner_text("#oncall-triage")
    shots(page, "queue-laptop")

    page.click("#oncall-triage button:has-text('分办')")  # the first unit rule 5 allows, one click
    page.wait_for_url(f"{api_url}/queue")
    assert "没有待分办的事项" in page.inner_text("#oncall-triage")
    task = _task_of(engine, odd)
    assert task is not None and task.status == "dispatched" and task.handler_unit

    page.goto("/dead-letters")
    assert "事件路由" in page.inner_text("#dead-letters") and stuck in page.content()
    shots(page, "dead-letters")
    page.click(f"#dl-{letter} button:has-text('重试')")
    page.wait_for_url(f"{api_url}/dead-letters")
    assert "已重新入队" in page.inner_text("main") and "重试死信" in page.inner_text("#oncall-actions")
    request.getfixturevalue("worker")
    wait_for(lambda: _task_of(engine, stuck), timeout=20, what="the retried event dispatched")
    shots(page, "dead-letter-retried")

    phone = log_in(browser, api_url, "zhou.zhiban", password, PHONE)
    phone.goto("/queue")
    phone.wait_for_timeout(300)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, width  # wide tables scroll inside their box, not the page
    shots(phone, "queue-phone")
    page.goto("/alerts")
    assert "死信" in page.inner_text("#alert-rules")
    shots(page, "alerts")
