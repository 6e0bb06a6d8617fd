"""The zone leader's worklist (issue 11): extensions to decide, triage with what each item is about and
how long it waited, overdue items by unit; every action returns to the list."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from dispatcher.db import unit_of_work
from dispatcher.org.model import Org
from tests import factories
from tests.integration.tasking import open_desk
from tests.web_helpers import add_staff, csrf_of, web_login


def test_the_worklist_shows_and_acts_on_what_waits_for_the_zone_leader(
    engine: sa.Engine, loaded_org: Org, api_url: str
) -> None:
    with open_desk(api_url, engine) as desk:
        asked = desk.task()
        desk.ok(asked, "accept", "deng.xiaoming")
        r = desk.http.post(
            f"{desk.api}/api/v1/tasks/{asked}/extend",
            json={"days": 5, "reason": "需现场复核"},
            headers=desk.who("deng.xiaoming"),
        )
        assert r.status_code == 200, r.text
        lost = desk.task(factories.complaint(summary="路灯损坏无人维修"))  # returned: back to triage
        desk.ok(lost, "return", "deng.xiaoming", reason="不属本镇管辖")
        late = desk.task(factories.complaint(summary="低保名单公示不及时"))
    with unit_of_work(engine) as s:
        s.execute(sa.text("UPDATE tasks SET deadline_state = 'overdue' WHERE id = :id"), {"id": late})
        s.execute(
            sa.text("UPDATE tasks SET updated_at = created_at - interval '3 days' WHERE id = :id")
            if engine.dialect.name == "postgresql"
            else sa.text("UPDATE tasks SET updated_at = datetime(created_at, '-3 days') WHERE id = :id"),
            {"id": lost},
        )
    token, password = add_staff(engine, loaded_org, "han.zhiyuan", "SHI1", "zone_leader")
    client, csrf = web_login(api_url, "han.zhiyuan", password)

    page = client.get("/zone").text
    assert "需现场复核" in page and "5 天" in page  # the extension, with its reason
    assert "路灯损坏无人维修" in page and "3 天" in page  # the triage item, what and how long
    assert "退回理由：</strong>不属本镇管辖" in page  # and why the unit gave it back
    leader = {"Authorization": f"Bearer {token}"}
    listed = httpx.get(f"{api_url}/api/v1/triage", headers=leader, timeout=30).json()["tasks"]
    assert [(i["id"], i["return_reason"], i["returned_by"]) for i in listed] == [
        (lost, "不属本镇管辖", "deng.xiaoming")
    ]
    assert "低保名单公示不及时" in page  # overdue, under its unit

    approve = page.split(f'action="/tasks/{asked}/extensions/')[1].split('"')[0]
    r = client.post(f"/tasks/{asked}/extensions/{approve}", data={"csrf_token": csrf, "next": "/zone"})
    assert r.status_code == 303 and r.headers["location"] == "/zone"
    assert "需现场复核" not in client.get("/zone").text  # decided: off the list
    r = client.post(
        f"/tasks/{lost}/moves/route",
        data={
            "csrf_token": csrf_of(client.get("/zone").text),
            "unit": "DXZ-JW",
            "reason": "属大兴镇",
            "kind": "complaint",
            "next": "/zone",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/zone"
    assert (
        "路灯损坏无人维修" not in client.get("/zone").text.split("worklist-triage")[1].split("</section>")[0]
    )
    evil = client.post(
        f"/tasks/{late}/moves/progress", data={"csrf_token": csrf, "note": "n", "next": "//evil.example"}
    )
    assert evil.headers["location"] == f"/tasks/{late}"  # never off this site
