"""The workbench in headless Chromium (issue 11): the inbox's search, sorting and pages, attachments on
a task, and the zone leader's worklist — on a laptop and on a phone, screenshots of each step in
``test-artifacts/screenshots/`` (``<backend>-workbench-NN-<step>.png``)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher.db import unit_of_work
from dispatcher.org.model import Org
from tests import factories
from tests.e2e.test_browser import LAPTOP, PHONE, Shots, browser, log_in
from tests.integration.tasking import open_desk
from tests.web_helpers import add_staff

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
__all__ = ["browser"]  # the fixture, shared with test_browser

#: The smallest valid PNG (1×1, transparent): what a phone's photo is, to the type check.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
SUMMARIES = [
    "村道硬化工程质量差，路面开裂",
    "自来水管网改造后水压不足",
    "低保评定优亲厚友",
    "征地补偿款迟迟未到位",
]


def _set(engine: sa.Engine, task_id: int, **columns: Any) -> None:
    with unit_of_work(engine) as s:
        sets = ", ".join(f"{k} = :{k}" for k in columns)
        s.execute(sa.text(f"UPDATE tasks SET {sets} WHERE id = :id"), {**columns, "id": task_id})


def _rows(page: Any) -> list[str]:
    """The ledger numbers of the list, top to bottom."""
    return [str(x) for x in page.locator("#tasks tbody tr td:first-child a").all_inner_texts()]


def test_search_sort_pages_and_attachments_for_a_handler(
    browser: Any, engine: sa.Engine, loaded_org: Org, api_url: str
) -> None:
    shots = Shots(f"{engine.dialect.name}-workbench")
    _, password = add_staff(engine, loaded_org, "deng.xiaoming", "DXZ-JW", "handler")
    with open_desk(api_url, engine) as desk:
        ids = desk.tasks([factories.complaint(summary=SUMMARIES[i % 4] + f"（第{i}件）") for i in range(56)])
        ledger = {task_id: desk.row(task_id).ledger_no for task_id in ids}
    _set(engine, ids[10], deadline_state="escalated")
    _set(engine, ids[20], deadline_state="overdue")
    _set(engine, ids[30], status="closed")

    page = log_in(browser, api_url, "deng.xiaoming", password, LAPTOP)
    assert "共 56 件" in page.inner_text("h1")
    rows = _rows(page)
    assert rows[:2] == [ledger[ids[10]], ledger[ids[20]]] and len(rows) == 50  # most urgent first, 50 a page
    assert page.locator("#tasks tbody tr.row-late").count() == 2
    assert "已分办 55" in page.inner_text("#state-tabs") and "已办结 1" in page.inner_text("#state-tabs")
    shots(page, "inbox-most-urgent-first")

    page.click("a[rel=next]")  # the last page: the closed task at the bottom
    page.wait_for_url(re.compile(r"page=2"))
    assert "第 2 / 2 页" in page.inner_text(".pager") and _rows(page)[-1] == ledger[ids[30]]
    shots(page, "inbox-page-2")

    page.fill("input[name=q]", "水压")  # a two-character word
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r"q=%E6%B0%B4%E5%8E%8B"))
    assert len(_rows(page)) == 14 and "共 14 件" in page.inner_text("h1")
    assert all("水压" in s for s in page.locator("#tasks td.summary").all_inner_texts())
    shots(page, "inbox-search")

    page.fill("input[name=q]", "")
    page.select_option("select[name=sort]", "newest")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r"sort=newest"))
    assert _rows(page)[0] == ledger[ids[-1]]
    shots(page, "inbox-newest-first")

    # Attachments: a photo goes up and is listed; a text file calling itself a photo does not.
    page.goto(f"/tasks/{ids[0]}")
    photo = {"name": "现场照片.png", "mimeType": "image/png", "buffer": PNG}
    page.set_input_files("#attachments input[type=file]", files=[photo])
    page.click("#attachments button:has-text('上传')")
    page.wait_for_selector(".flash.ok")
    assert "现场照片.png" in page.inner_text("#attachments")
    shots(page, "task-attachment-uploaded")
    fake = {"name": "假照片.png", "mimeType": "image/png", "buffer": b"just some text, not a picture"}
    page.set_input_files("#attachments input[type=file]", files=[fake])
    page.click("#attachments button:has-text('上传')")
    refused = page.inner_text(".flash.error:not(.calendar)")
    assert "文件类型不支持" in refused, refused
    assert "假照片.png" not in page.inner_text("#attachments")
    shots(page, "task-attachment-refused")
    with page.expect_download() as download:
        page.click("#attachments a:has-text('现场照片.png')")
    assert download.value.suggested_filename == "现场照片.png"
    page.context.close()

    # On a phone: the same list, one column, the search still at the top.
    phone = log_in(browser, api_url, "deng.xiaoming", password, PHONE)
    phone.fill("input[name=q]", "低保评定")
    phone.click("#filters button[type=submit]")
    phone.wait_for_url(re.compile(r"q="))
    assert len(_rows(phone)) == 14
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
    shots(phone, "phone-inbox-search")
    phone.context.close()


def test_the_zone_leaders_worklist_in_the_browser(
    browser: Any, engine: sa.Engine, loaded_org: Org, api_url: str
) -> None:
    shots = Shots(f"{engine.dialect.name}-workbench-zone")
    token, _ = add_staff(engine, loaded_org, "deng.xiaoming", "DXZ-JW", "handler")
    _, password = add_staff(engine, loaded_org, "han.zhiyuan", "SHI1", "zone_leader")
    with open_desk(api_url, engine) as desk:
        desk._staff["deng.xiaoming"] = {"Authorization": f"Bearer {token}"}
        asked = desk.task(factories.complaint(summary="村道硬化工程质量差，需现场复核"))
        desk.ok(asked, "accept", "deng.xiaoming")
        r = desk.http.post(f"{api_url}/api/v1/tasks/{asked}/extend", json={"days": 5, "reason": "需现场复核"},
                           headers=desk.who("deng.xiaoming"))  # fmt: skip
        assert r.status_code == 200, r.text
        lost = desk.task(factories.complaint(summary="路灯损坏无人维修"))
        desk.ok(lost, "return", "deng.xiaoming", reason="不属本镇管辖")
        late = desk.task(factories.complaint(summary="低保名单公示不及时"))
        ledger = {t: desk.row(t).ledger_no for t in (asked, lost, late)}
    _set(engine, late, deadline_state="overdue")

    phone = log_in(browser, api_url, "han.zhiyuan", password, PHONE)
    phone.goto("/zone")
    assert ledger[late] in phone.inner_text("#worklist-overdue")
    assert ledger[asked] in phone.inner_text("#worklist-extensions")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the worklist scrolls sideways on a phone ({width}px)"
    shots(phone, "phone-worklist")
    phone.context.close()

    page = log_in(browser, api_url, "han.zhiyuan", password, LAPTOP)
    page.goto("/zone")
    assert ledger[asked] in page.inner_text("#worklist-extensions")
    assert "路灯损坏无人维修" in page.inner_text("#worklist-triage")
    assert "退回理由：不属本镇管辖" in page.inner_text("#worklist-triage")
    assert ledger[late] in page.inner_text("#worklist-overdue")
    shots(page, "worklist")

    page.click("#worklist-extensions button:has-text('批准')")
    page.wait_for_url(f"{api_url}/zone")
    page.wait_for_selector(".flash.ok")
    assert "没有待审批的延期申请" in page.inner_text("#worklist-extensions")
    shots(page, "extension-approved")

    row = page.locator("#worklist-triage tr", has_text=ledger[lost])
    row.locator("select[name=unit]").select_option("FDX-JW")
    row.locator("input[name=reason]").fill("属丰登乡管辖，改由丰登乡纪委办理")
    row.locator("button:has-text('分办')").click()
    page.wait_for_url(f"{api_url}/zone")
    page.wait_for_selector(".flash.ok")
    assert "没有待分办的事项" in page.inner_text("#worklist-triage")
    shots(page, "triage-routed")
    page.context.close()
