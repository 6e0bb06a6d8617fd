"""The monthly pages over real HTTP with a signed-in session: the reports, the agenda and its
decision form, the training's attendance form (the browser test takes their pictures)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dispatcher.bootstrap import build_runtime
from dispatcher.db import unit_of_work
from dispatcher.monthly.periods import Job, Period
from dispatcher.monthly.service import run_now
from dispatcher.org.model import Org
from dispatcher.settings import Settings
from tests.integration.tasking import open_desk
from tests.integration.test_monthly_report import feed_october
from tests.web_helpers import add_staff, web_login

TZ = ZoneInfo("Asia/Shanghai")


def test_the_monthly_pages_render_and_their_forms_act(
    engine: sa.Engine, loaded_org: Org, api_url: str, settings: Settings
) -> None:
    with open_desk(api_url, engine) as desk:
        feed_october(desk, loaded_org)
    rt = build_runtime(settings)
    for job, period, when in (
        (Job.report, "2026-10", "2026-11-01T01:00"),
        (Job.dispatch, "2026-11", "2026-11-02T09:00"),
        (Job.training, "2026-11", "2026-11-02T09:00"),
    ):
        run_now(
            replace(rt, now=lambda when=when: datetime.fromisoformat(when).replace(tzinfo=TZ)),
            job,
            Period.parse(period),
            by="test",
        )
    with unit_of_work(engine) as s:
        meeting = s.execute(sa.text("SELECT task_id FROM meetings WHERE zone_code = 'Z1'")).scalar_one()
        training = s.execute(
            sa.text("SELECT task_id FROM trainings WHERE unit_code = 'CGJD-JW'")
        ).scalar_one()
        report = s.execute(sa.text("SELECT id FROM reports")).scalar_one()
    _, password = add_staff(engine, loaded_org, "han.zhiyuan", "SHI1", "zone_leader")
    client, csrf = web_login(api_url, "han.zhiyuan", password)

    listed = client.get("/reports")
    assert listed.status_code == 200 and "2026-10" in listed.text and "已完成" in listed.text
    page = client.get(f"/reports/{report}")
    assert page.status_code == 200 and "2026年10月 月度工作报告" in page.text
    assert f'src="/reports/{report}/charts/trend.svg"' in page.text and "<svg" not in page.text
    chart = client.get(f"/reports/{report}/charts/trend.svg")
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    assert "近12个月受理与办结" in chart.text  # text stays text: the reader's CJK font shows it
    assert client.get(f"/reports/{report}/charts/nope.svg").status_code == 404
    assert client.get("/reports/999999").status_code == 404

    agenda = client.get(f"/tasks/{meeting}")
    assert agenda.status_code == 200
    assert "超期及升级督办事项" in agenda.text and "记录决定事项" in agenda.text
    decided = client.post(
        f"/tasks/{meeting}/decisions",
        data={"csrf_token": csrf, "text": "城关街道纪工委协办积压投诉", "owner_unit": "CGJD-JW", "due": ""},
    )
    assert decided.status_code == 303
    after = client.get(f"/tasks/{meeting}").text
    assert "决定事项已记录" in after and "城关街道纪工委协办积压投诉" in after
    bad = client.post(
        f"/tasks/{meeting}/decisions",
        data={"csrf_token": csrf, "text": "x", "owner_unit": "NOPE", "due": "tomorrow"},
    )
    assert bad.status_code == 303 and "记录决定事项未完成" in client.get(f"/tasks/{meeting}").text
    assert client.post(f"/tasks/{meeting}/decisions", data={"text": "x"}).status_code == 403  # no CSRF token

    _, handler_password = add_staff(engine, loaded_org, "xu.dongsheng", "CGJD-JW", "handler")
    handler, handler_csrf = web_login(api_url, "xu.dongsheng", handler_password)
    marked = handler.post(
        f"/tasks/{training}/attendance",
        data={"csrf_token": handler_csrf, "logins": ["xu.dongsheng", "ren.jing"]},
    )
    assert marked.status_code == 303
    text = handler.get(f"/tasks/{training}").text
    assert "签到已保存" in text and "实到 2 / 应到 3 人" in text
