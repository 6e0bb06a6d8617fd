"""Deadlines visible everywhere (issue 4 item 6): ``GET /tasks?overdue=true``, ``GET /tasks/stats``,
and the pages: supervision orders and extensions on the task page, late counts on the zone page.

Real HTTP against the test's database (SQLite and PostgreSQL). Late tasks are made by moving
their stored clocks into the past, as the sweep would find them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.db import unit_of_work
from dispatcher.models import Extension, SupervisionOrder
from dispatcher.org.model import Org
from dispatcher.wallclock import utcnow
from tests import factories
from tests.integration.tasking import Desk, error_of, open_desk
from tests.web_helpers import add_staff, web_login

HANDLER = "deng.xiaoming"  # 大兴镇纪委 (DXZ-JW), zone Z1
LEADER = "han.zhiyuan"  # 第一协作区组长
OTHER_LEADER = "qiao.mingde"  # 第二协作区组长
OTHER_UNIT = "tao.li"  # 丰登乡纪委 (FDX-JW), zone Z1
ONCALL = "gu.xiaomei"


@pytest.fixture
def desk(engine: sa.Engine, loaded_org: Org, api_url: str) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


def listing(desk: Desk, login: str, **params: Any) -> list[dict[str, Any]]:
    r = desk.http.get(f"{desk.api}/api/v1/tasks", params=params, headers=desk.who(login))
    assert r.status_code == 200, r.text
    tasks: list[dict[str, Any]] = r.json()["tasks"]
    return tasks


def stats(desk: Desk, login: str) -> dict[str, Any]:
    r = desk.http.get(f"{desk.api}/api/v1/tasks/stats", headers=desk.who(login))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def late_board(desk: Desk) -> dict[str, int]:
    """Five tasks of 大兴镇纪委 in each deadline situation, plus one of 丰登乡 that is late."""
    past = utcnow() - timedelta(days=1)
    on_time, warning, marked, unswept, escalated = desk.tasks([factories.complaint() for _ in range(5)])
    for task in (warning, marked, unswept, escalated):
        desk.ok(task, "accept", HANDLER)
    desk.set(warning, deadline_state="warning")
    desk.set(marked, deadline_state="overdue", resolve_due_at=past)
    desk.set(unswept, resolve_due_at=past)  # past due; the sweep has not come by yet
    desk.set(escalated, deadline_state="escalated", escalation_level=1, resolve_due_at=past)
    other = desk.task(factories.complaint(township="丰登乡"))
    desk.set(other, accept_due_at=past)  # dispatched, not accepted in time
    closed = desk.task()
    desk.set(closed, status="closed", deadline_state="overdue")  # closed work is never "overdue"
    return dict(on_time=on_time, warning=warning, marked=marked, unswept=unswept, escalated=escalated,
                other=other, closed=closed)  # fmt: skip


def test_every_listed_task_carries_its_deadline(desk: Desk) -> None:
    desk.task()
    for t in listing(desk, HANDLER):
        assert set(t["deadline"]) >= {"clock", "due_at", "seconds_left", "state", "label"}
        assert t["deadline"]["state"] == "on_time" and t["deadline"]["due_at"]


def test_overdue_lists_marked_escalated_and_past_due_tasks_only(desk: Desk) -> None:
    board = late_board(desk)

    late = {t["id"] for t in listing(desk, ONCALL, overdue="true")}
    rest = {t["id"] for t in listing(desk, ONCALL, overdue="false")}

    assert late == {board["marked"], board["unswept"], board["escalated"], board["other"]}
    assert rest == {board["on_time"], board["warning"], board["closed"]}
    shown = {t["id"]: t["deadline"]["state"] for t in listing(desk, ONCALL, overdue="true")}
    assert shown[board["unswept"]] == "overdue" and shown[board["escalated"]] == "escalated"
    # scoped like every listing
    assert {t["id"] for t in listing(desk, HANDLER, overdue="true")} == late - {board["other"]}
    assert {t["id"] for t in listing(desk, OTHER_UNIT, overdue="true")} == {board["other"]}
    assert listing(desk, OTHER_LEADER, overdue="true") == []
    assert {t["id"] for t in listing(desk, LEADER, overdue="true", unit="DXZ-JW")} == late - {board["other"]}
    error_of(desk.http.get(f"{desk.api}/api/v1/tasks?overdue=maybe", headers=desk.who(ONCALL)), 422)


def test_stats_count_open_tasks_by_deadline_state_per_zone_and_unit(desk: Desk) -> None:
    late_board(desk)

    everything = stats(desk, ONCALL)

    assert everything["states"] == ["on_time", "warning", "overdue", "escalated"]
    dxz = {"on_time": 1, "warning": 1, "overdue": 2, "escalated": 1, "total": 5}
    fdx = {"on_time": 0, "warning": 0, "overdue": 1, "escalated": 0, "total": 1}
    assert everything["units"] == {"DXZ-JW": dxz, "FDX-JW": fdx}
    assert everything["zones"] == {
        "Z1": {"on_time": 1, "warning": 1, "overdue": 3, "escalated": 1, "total": 6}
    }
    assert everything["total"]["total"] == 6  # the closed task is not open work
    assert {(r["zone"], r["unit"]) for r in everything["rows"]} == {("Z1", "DXZ-JW"), ("Z1", "FDX-JW")}
    # scoped by what the caller may see
    assert stats(desk, HANDLER)["units"] == {"DXZ-JW": dxz}
    assert stats(desk, OTHER_UNIT)["units"] == {"FDX-JW": fdx}
    assert stats(desk, LEADER)["zones"] == everything["zones"]
    other = stats(desk, OTHER_LEADER)
    assert other["zones"] == {} and other["total"]["total"] == 0


def test_the_new_routes_need_a_staff_credential(desk: Desk) -> None:
    for path in ("/api/v1/tasks/stats", "/api/v1/tasks?overdue=true"):
        for headers in ({}, desk.source, {"Authorization": "Bearer usr_nope"}):
            assert (
                error_of(desk.http.get(f"{desk.api}{path}", headers=headers), 401)["code"] == "unauthorized"
            )


# --- pages -------------------------------------------------------------------------------


def test_the_task_page_shows_supervision_orders_and_the_extension_forms(
    engine: sa.Engine, loaded_org: Org, desk: Desk
) -> None:
    task = desk.task()
    desk.ok(task, "accept", HANDLER)
    due = utcnow() - timedelta(days=3)
    desk.set(task, resolve_due_at=due, deadline_state="overdue")
    with unit_of_work(engine) as s:
        s.add(SupervisionOrder(task_id=task, step="resolve.overdue", late_unit="DXZ-JW", deadline=due,
                               days_over=3, notified="handler_unit", created_at=utcnow()))  # fmt: skip
        s.add(SupervisionOrder(task_id=task, step="resolve.escalated.1", late_unit="DXZ-JW", deadline=due,
                               days_over=3, notified="zone_leader", created_at=utcnow()))  # fmt: skip
    _, handler_pw = add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    _, leader_pw = add_staff(engine, loaded_org, LEADER, "SHI1", "zone_leader")
    handler, csrf = web_login(desk.api, "w.handler", handler_pw)

    page = handler.get(f"/tasks/{task}").text
    assert "督办单" in page and "办结超期" in page and "办结升级督办（第1级）" in page
    assert "协作区组长" in page and "承办单位" in page
    assert f'action="/tasks/{task}/extend"' in page and "申请延期" in page
    assert "/extensions/" not in page  # nothing to decide, and not the handler's to decide

    refused = handler.post(f"/tasks/{task}/extend", data={"days": "5", "reason": "补充材料"})  # no CSRF
    assert refused.status_code == 403 and "CSRF" in refused.text
    bad = handler.post(f"/tasks/{task}/extend", data={"csrf_token": csrf, "days": "99", "reason": "补充材料"})
    assert bad.status_code == 303 and "延期天数" in handler.get(f"/tasks/{task}").text
    r = handler.post(f"/tasks/{task}/extend", data={"csrf_token": csrf, "days": "20", "reason": "补充材料"})
    assert r.status_code == 303
    after = handler.get(f"/tasks/{task}").text
    assert "延期申请已提交" in after and "待审批" in after and "补充材料" in after
    assert f'action="/tasks/{task}/extend"' not in after  # one pending at a time
    with unit_of_work(engine) as s:
        (ext,) = s.exec(select(Extension).where(Extension.task_id == task)).all()
    assert (ext.status, ext.days, ext.requested_by) == ("pending", 20, "w.handler")

    leader, leader_csrf = web_login(desk.api, LEADER, leader_pw)
    board = leader.get(f"/tasks/{task}").text
    assert f"/tasks/{task}/extensions/{ext.id}/approve" in board
    assert f"/tasks/{task}/extensions/{ext.id}/refuse" in board
    assert f'action="/tasks/{task}/extend"' not in board
    r = leader.post(
        f"/tasks/{task}/extensions/{ext.id}/approve", data={"csrf_token": leader_csrf, "note": "同意"}
    )
    assert r.status_code == 303
    done = leader.get(f"/tasks/{task}").text
    assert "「批准延期」已完成" in done and "已批准" in done and "已延期" in done
    row = desk.row(task)
    assert row.extensions_used == 1 and row.resolve_due_at == due + timedelta(days=20)
    again = leader.post(f"/tasks/{task}/extensions/{ext.id}/refuse", data={"csrf_token": leader_csrf})
    assert again.status_code == 303 and "该申请已批准" in leader.get(f"/tasks/{task}").text


def test_the_zone_page_counts_overdue_and_escalated_per_unit(
    engine: sa.Engine, loaded_org: Org, desk: Desk
) -> None:
    board = late_board(desk)
    _, leader_pw = add_staff(engine, loaded_org, LEADER, "SHI1", "zone_leader")
    leader, _ = web_login(desk.api, LEADER, leader_pw)

    page = leader.get("/zone").text

    assert "超期" in page and "升级督办" in page
    assert (
        '<td class="late" data-late="overdue"><a href="/?unit=DXZ-JW&overdue=1" class="d-overdue">2</a>'
        in page
    )
    assert (
        '<td class="late" data-late="escalated"><a href="/?unit=DXZ-JW&overdue=1" class="d-overdue">1</a>'
        in page
    )
    assert (
        '<td class="late" data-late="overdue"><a href="/?unit=FDX-JW&overdue=1" class="d-overdue">1</a>'
        in page
    )
    inbox = leader.get("/?unit=DXZ-JW&overdue=1").text
    ledgers = {name: desk.row(task).ledger_no for name, task in board.items()}
    for name in ("marked", "unswept", "escalated"):
        assert ledgers[name] in inbox
    for name in ("on_time", "warning", "other"):
        assert ledgers[name] not in inbox
