"""The spine end to end in one process: HTTP intake → Redis → worker → task."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.db import unit_of_work
from dispatcher.models import Event, Task
from dispatcher.org.model import Org
from tests import factories
from tests.support import wait_for


def test_a_posted_complaint_becomes_a_dispatched_task(
    engine: sa.Engine, loaded_org: Org, api_url: str, worker: object
) -> None:
    token = factories.source_token(engine)
    body = factories.complaint()
    r = httpx.post(f"{api_url}/api/v1/events", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 202, r.text
    event_id = r.json()["event_id"]

    def routed() -> dict | None:
        state = httpx.get(
            f"{api_url}/api/v1/events/{event_id}", headers={"Authorization": f"Bearer {token}"}
        ).json()
        return state if state["task"] else None

    state = wait_for(routed, timeout=15, what="the event to be routed")
    assert state["status"] == "dispatched"
    assert state["task"]["handler_unit"] == "DXZ-JW"
    with unit_of_work(engine) as s:
        assert s.exec(select(Task)).one().event_id == event_id
        assert s.exec(select(Event)).one().relay_after is None
