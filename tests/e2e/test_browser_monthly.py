"""The monthly report, the dispatch meeting's agenda and the training in headless Chromium, at laptop
and phone sizes (screenshots in ``test-artifacts/screenshots/``, named ``monthly-…``).

October 2026 is fed as in ``tests/integration/test_monthly_report.py``; the report of October, the
meetings and trainings of November are made by the monthly jobs' own code; a zone leader reads
the report (its charts are images the page loads), opens the agenda and records a decision; a
handler signs in to a training.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dispatcher.bootstrap import build_runtime
from dispatcher.db import unit_of_work
from dispatcher.monthly.periods import Job, Period
from dispatcher.monthly.service import run_now
from dispatcher.org.model import Org
from dispatcher.settings import Settings
from tests.e2e.test_browser import LAPTOP, PHONE, Shots, browser, log_in  # noqa: F401 - the fixture
from tests.integration.tasking import open_desk
from tests.integration.test_monthly_report import feed_october
from tests.web_helpers import add_staff

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
TZ = ZoneInfo("Asia/Shanghai")


def _images_loaded(page: Any) -> list[int]:
    return page.eval_on_selector_all("figure.chart img", "imgs => imgs.map(i => i.naturalWidth)")


def test_the_report_agenda_and_training_pages_read_well_on_a_laptop_and_a_phone(
    browser: Any,  # noqa: F811
    engine: sa.Engine,
    loaded_org: Org,
    api_url: str,
    settings: Settings,
) -> None:
    shots = Shots(f"monthly-{engine.dialect.name}")
    with open_desk(api_url, engine) as desk:
        feed_october(desk, loaded_org)
    rt = build_runtime(settings)
    for job, period, when in (
        (Job.report, "2026-10", "2026-11-01T01:00"),
        (Job.dispatch, "2026-11", "2026-11-02T08:30"),
        (Job.training, "2026-11", "2026-11-02T08:30"),
    ):
        fixed = replace(rt, now=lambda when=when: datetime.fromisoformat(when).replace(tzinfo=TZ))
        did, _ = run_now(fixed, job, Period.parse(period), by="test")
        assert did
    with unit_of_work(engine) as s:
        meeting = s.execute(sa.text("SELECT task_id FROM meetings WHERE zone_code = 'Z1'")).scalar_one()
        training = s.execute(
            sa.text("SELECT task_id FROM trainings WHERE unit_code = 'CGJD-JW'")
        ).scalar_one()
    _, leader_password = add_staff(engine, loaded_org, "han.zhiyuan", "SHI1", "zone_leader")
    _, handler_password = add_staff(engine, loaded_org, "xu.dongsheng", "CGJD-JW", "handler")

    page = log_in(browser, api_url, "han.zhiyuan", leader_password, LAPTOP)
    page.click("nav >> text=月度报告")
    page.wait_for_url(f"{api_url}/reports")
    assert "2026-10" in page.inner_text("#reports") and "已完成" in page.inner_text("#runs")
    shots(page, "reports-list")
    page.click("#reports >> text=2026-10")
    page.wait_for_selector("figure.chart img")
    page.wait_for_load_state("load")  # images included
    widths = _images_loaded(page)
    assert len(widths) == 5 and all(w > 0 for w in widths), widths  # every chart drawn and served
    text = page.inner_text("article.report")
    assert "2026年10月 月度工作报告" in text and "不参与排名" in text and "大兴镇纪委" in text
    assert "赵德明" not in page.content()
    shots(page, "report-laptop")

    page.goto(f"/tasks/{meeting}")
    agenda = page.inner_text("#agenda")
    assert "上月决定事项落实情况" in agenda and "超期及升级督办事项" in agenda
    shots(page, "agenda-laptop")
    page.fill("#agenda textarea[name=text]", "请城关街道纪工委协助大兴镇纪委办理积压投诉")
    page.select_option("#agenda select[name=owner_unit]", "CGJD-JW")
    page.click("#agenda button:has-text('记录决定')")
    page.wait_for_selector(".flash.ok")
    assert "请城关街道纪工委协助大兴镇纪委办理积压投诉" in page.inner_text("#decisions")
    shots(page, "agenda-decided")
    page.context.close()

    page = log_in(browser, api_url, "han.zhiyuan", leader_password, PHONE)
    page.goto("/reports")
    page.click("#reports >> text=2026-10")
    page.wait_for_load_state("load")  # images included
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, width  # wide tables scroll inside their box, not the page
    shots(page, "report-phone")
    page.goto(f"/tasks/{meeting}")
    shots(page, "agenda-phone")
    page.context.close()

    page = log_in(browser, api_url, "xu.dongsheng", handler_password, PHONE)
    page.goto(f"/tasks/{training}")
    assert "培训专题" in page.inner_text("#training")
    page.check("#training input[value='xu.dongsheng']")  # the organiser ticks who came
    page.check("#training input[value='ren.jing']")
    page.click("#training button:has-text('保存签到')")
    page.wait_for_selector(".flash.ok")
    assert "实到 2 / 应到 3 人" in page.inner_text("#training")
    shots(page, "training-phone")
    page.context.close()
    assert all(p.stat().st_size > 0 for p in shots.taken)
