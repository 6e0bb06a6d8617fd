"""The staff inbox over real HTTP: login, sessions, CSRF, unit scoping, moves through forms."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.db import unit_of_work
from dispatcher.models import IdentityReveal, Task
from dispatcher.org.model import Org
from tests import factories
from tests.web_helpers import add_staff, csrf_of, publish, route_now, web_login

PAGES = ["/", "/tasks/1", "/verify", "/zone", "/notifications"]


@pytest.fixture
def complaint_task(engine: sa.Engine, loaded_org: Org, api_url: str) -> int:
    """A complaint about 大兴镇, dispatched to 大兴镇纪委 (DXZ-JW) and verified by 第一纪检监察室 (SHI1)."""
    return route_now(engine, publish(api_url, factories.source_token(engine)))


def task_row(engine: sa.Engine, task_id: int) -> Task:
    with unit_of_work(engine) as s:
        task = s.get(Task, task_id)
        assert task is not None
        return task


def test_login_with_the_right_password_opens_the_inbox(
    engine: sa.Engine, loaded_org: Org, api_url: str, complaint_task: int
) -> None:
    _, password = add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    client, _ = web_login(api_url, "w.handler", password)

    page = client.get("/")

    assert page.status_code == 200 and "我的任务" in page.text
    assert task_row(engine, complaint_task).ledger_no in page.text
    assert "群众投诉" in page.text and "已分办" in page.text


def test_a_wrong_password_and_an_unknown_login_get_the_same_generic_refusal(
    engine: sa.Engine, loaded_org: Org, api_url: str
) -> None:
    add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    client = httpx.Client(base_url=api_url, timeout=30)
    token = csrf_of(client.get("/login").text)

    wrong = client.post("/login", data={"login": "w.handler", "password": "nope", "csrf_token": token})
    unknown = client.post("/login", data={"login": "nobody", "password": "nope", "csrf_token": token})

    for r in (wrong, unknown):
        assert r.status_code == 401 and "用户名或密码错误" in r.text
    assert client.get("/").status_code == 303


def test_repeated_failures_throttle_the_login_even_with_the_right_password(
    engine: sa.Engine, loaded_org: Org, api_url: str
) -> None:
    _, password = add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    client = httpx.Client(base_url=api_url, timeout=30)
    token = csrf_of(client.get("/login").text)
    for _ in range(5):
        client.post("/login", data={"login": "w.handler", "password": "guess", "csrf_token": token})

    r = client.post("/login", data={"login": "w.handler", "password": password, "csrf_token": token})

    assert r.status_code == 429 and "登录失败次数过多" in r.text


def test_logout_ends_the_session(engine: sa.Engine, loaded_org: Org, api_url: str) -> None:
    _, password = add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    client, csrf = web_login(api_url, "w.handler", password)

    r = client.post("/logout", data={"csrf_token": csrf})

    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/").status_code == 303
    assert client.get("/api/v1/tasks").status_code == 401


def test_a_cookie_saved_before_logout_no_longer_opens_anything(
    engine: sa.Engine, loaded_org: Org, api_url: str
) -> None:
    """A hostile test replayed a saved cookie after logout for 8 hours; the session now ends on the server."""
    _, password = add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    client, csrf = web_login(api_url, "w.handler", password)
    saved = dict(client.cookies)
    assert client.get("/").status_code == 200

    client.post("/logout", data={"csrf_token": csrf})

    replay = httpx.Client(base_url=api_url, timeout=30, cookies=saved)
    assert replay.get("/").status_code == 303  # to the login form
    assert replay.get("/api/v1/tasks").status_code == 401


def test_a_disabled_user_or_a_new_password_ends_the_open_sessions(
    engine: sa.Engine, loaded_org: Org, api_url: str
) -> None:
    from dispatcher.accounts.registry import reset_password, set_active
    from dispatcher.db import unit_of_work

    _, password = add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    first, _ = web_login(api_url, "w.handler", password)
    with unit_of_work(engine) as s:
        new = reset_password(s, "w.handler")
    assert first.get("/").status_code == 303
    second, _ = web_login(api_url, "w.handler", new)
    with unit_of_work(engine) as s:
        set_active(s, "w.handler", False)
    assert second.get("/").status_code == 303


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_to_the_login_without_a_session(api_url: str, path: str) -> None:
    r = httpx.get(f"{api_url}{path}", timeout=30)

    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")


def test_a_post_without_the_csrf_token_is_refused(
    engine: sa.Engine, loaded_org: Org, api_url: str, complaint_task: int
) -> None:
    _, password = add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    client, csrf = web_login(api_url, "w.handler", password)

    form = client.post(f"/tasks/{complaint_task}/moves/accept", data={"version": "1"})
    wrong = client.post(f"/tasks/{complaint_task}/moves/accept", data={"csrf_token": "forged"})
    api = client.post(f"/api/v1/tasks/{complaint_task}/accept")
    logout = client.post("/logout")

    assert form.status_code == wrong.status_code == 403 and "CSRF" in form.text
    assert api.status_code == 403 and api.json()["error"]["code"] == "forbidden"
    assert logout.status_code == 403
    assert task_row(engine, complaint_task).status == "dispatched"
    with_header = client.post(f"/api/v1/tasks/{complaint_task}/accept", headers={"X-CSRF-Token": csrf})
    assert with_header.status_code == 200 and with_header.json()["status"] == "accepted"


def test_another_units_task_page_is_not_found(
    engine: sa.Engine, loaded_org: Org, api_url: str, complaint_task: int
) -> None:
    _, password = add_staff(engine, loaded_org, "w.other", "FDX-JW", "handler")
    client, csrf = web_login(api_url, "w.other", password)

    page = client.get(f"/tasks/{complaint_task}")
    move = client.post(f"/tasks/{complaint_task}/moves/accept", data={"csrf_token": csrf})

    assert page.status_code == 404 and "任务不存在" in page.text
    assert move.status_code == 404
    assert task_row(engine, complaint_task).ledger_no not in client.get("/").text
    assert task_row(engine, complaint_task).status == "dispatched"


def test_a_move_through_the_web_form_changes_the_state_and_a_stale_one_is_refused_in_chinese(
    engine: sa.Engine, loaded_org: Org, api_url: str, complaint_task: int
) -> None:
    _, password = add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    client, csrf = web_login(api_url, "w.handler", password)
    page = client.get(f"/tasks/{complaint_task}").text
    assert f"/tasks/{complaint_task}/moves/accept" in page
    assert f"/tasks/{complaint_task}/moves/submit" not in page  # only the moves allowed now

    r = client.post(f"/tasks/{complaint_task}/moves/accept", data={"csrf_token": csrf, "version": "1"})

    assert r.status_code == 303 and r.headers["location"] == f"/tasks/{complaint_task}"
    after = client.get(f"/tasks/{complaint_task}").text
    assert "「接单」已完成" in after and "已接单" in after
    assert task_row(engine, complaint_task).status == "accepted"
    assert f"/tasks/{complaint_task}/moves/submit" in after

    again = client.post(f"/tasks/{complaint_task}/moves/accept", data={"csrf_token": csrf, "version": "1"})
    assert again.status_code == 303
    refused = client.get(f"/tasks/{complaint_task}").text
    assert "接单未完成" in refused and "Traceback" not in refused

    empty = {"csrf_token": csrf, "kind": "complaint", "resolved": "true"}
    client.post(f"/tasks/{complaint_task}/moves/submit", data=empty)
    assert "请检查答复内容" in client.get(f"/tasks/{complaint_task}").text
    done = {**empty, "reply": "补贴已发放到位"}
    client.post(f"/tasks/{complaint_task}/moves/submit", data=done)
    assert task_row(engine, complaint_task).status == "submitted"
    assert task_row(engine, complaint_task).outcome == {"resolved": True, "reply": "补贴已发放到位"}


def test_the_identity_is_masked_and_revealed_once_with_a_logged_reason(
    engine: sa.Engine, loaded_org: Org, api_url: str, complaint_task: int
) -> None:
    _, password = add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    client, csrf = web_login(api_url, "w.handler", password)
    page = client.get(f"/tasks/{complaint_task}").text
    assert "138****5678" in page and "13812345678" not in page and "李秀英" not in page

    shown = client.post(f"/tasks/{complaint_task}/identity", data={"csrf_token": csrf, "reason": "回访核实"})

    assert shown.status_code == 200 and "13812345678" in shown.text and "李秀英" in shown.text
    assert "13812345678" not in client.get(f"/tasks/{complaint_task}").text
    with unit_of_work(engine) as s:
        logged = s.exec(select(IdentityReveal)).all()
    assert [(r.task_id, r.login, r.reason) for r in logged] == [(complaint_task, "w.handler", "回访核实")]


def test_the_session_cookie_reads_the_staff_api_but_not_the_source_api(
    engine: sa.Engine, loaded_org: Org, api_url: str, complaint_task: int
) -> None:
    _, password = add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    client, csrf = web_login(api_url, "w.handler", password)

    tasks = client.get("/api/v1/tasks")
    event = client.post("/api/v1/events", json=factories.complaint(), headers={"X-CSRF-Token": csrf})

    assert tasks.status_code == 200
    assert [t["id"] for t in tasks.json()["tasks"]] == [complaint_task]
    assert event.status_code == 401


def test_a_zone_leader_routes_a_returned_task_from_the_zone_page(
    engine: sa.Engine, loaded_org: Org, api_url: str, complaint_task: int
) -> None:
    handler_token, _ = add_staff(engine, loaded_org, "w.handler", "DXZ-JW", "handler")
    _, password = add_staff(engine, loaded_org, "han.zhiyuan", "SHI1", "zone_leader")
    r = httpx.post(
        f"{api_url}/api/v1/tasks/{complaint_task}/return",
        json={"reason": "不属本镇管辖"},
        headers={"Authorization": f"Bearer {handler_token}"},
    )
    assert r.status_code == 200, r.text
    client, csrf = web_login(api_url, "han.zhiyuan", password)
    zone = client.get("/zone")
    assert zone.status_code == 200 and "第一协作区" in zone.text and "待分办" in zone.text
    assert f"/tasks/{complaint_task}/moves/route" in zone.text

    client.post(
        f"/tasks/{complaint_task}/moves/route",
        data={"csrf_token": csrf, "unit": "HSZ-JW", "reason": "经核实属和顺镇"},
    )

    task = task_row(engine, complaint_task)
    assert (task.status, task.handler_unit) == ("dispatched", "HSZ-JW")
    handler, _ = web_login(api_url, "w.h2", add_staff(engine, loaded_org, "w.h2", "DXZ-JW", "handler")[1])
    assert handler.get("/zone").status_code == 403
