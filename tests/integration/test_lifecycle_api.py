"""A complaint from dispatch to closure through the staff API and the requester's feedback."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from dispatcher.accounts.registry import add_user
from dispatcher.db import unit_of_work
from dispatcher.org.model import Org
from dispatcher.wallclock import utcnow
from tests import factories
from tests.support import wait_for


def user_token(engine: sa.Engine, org: Org, login: str, unit: str, role: str) -> dict[str, str]:
    with unit_of_work(engine) as s:
        _, token, _ = add_user(s, login=login, unit=unit, role=role, org=org, now=utcnow())
    return {"Authorization": f"Bearer {token}"}


def test_a_complaint_is_accepted_submitted_verified_and_closed_by_feedback(
    engine: sa.Engine, loaded_org: Org, api_url: str, worker: object
) -> None:
    source = {"Authorization": f"Bearer {factories.source_token(engine)}"}
    handler = user_token(engine, loaded_org, "t-handler", "DXZ-JW", "handler")
    verifier = user_token(engine, loaded_org, "t-verifier", "SHI1", "verifier")
    posted = httpx.post(f"{api_url}/api/v1/events", json=factories.complaint(), headers=source)
    event_id = posted.json()["event_id"]

    def task_id() -> Any:
        return httpx.get(f"{api_url}/api/v1/events/{event_id}", headers=source).json()["task"]

    task = wait_for(task_id, timeout=15, what="routing")["id"]
    base = f"{api_url}/api/v1/tasks/{task}"

    detail = httpx.get(base, headers=handler).json()
    assert detail["allowed_moves"] == ["accept", "return", "suspend", "recuse"]
    assert detail["event"]["identity"]["complainant"]["phone"] == "138****5678"
    assert httpx.post(f"{base}/accept", headers=handler).json()["status"] == "accepted"
    outcome = {"resolved": True, "reply": "补贴已发放"}
    r = httpx.post(f"{base}/submit", json={"outcome": outcome}, headers=handler)
    assert r.json()["status"] == "submitted", r.text
    assert httpx.post(f"{base}/verify", headers=verifier).json()["status"] == "awaiting_feedback"
    feedback = {"rating": "satisfied"}
    r = httpx.post(f"{api_url}/api/v1/events/{event_id}/feedback", json=feedback, headers=source)
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text

    final = httpx.get(base, headers=handler).json()
    assert final["close_reason"] == "satisfied"
    moves = [h["move"] for h in final["history"]]
    assert moves == ["dispatch", "accept", "submit", "verify", "feedback_close"]
    assert httpx.post(f"{base}/accept", headers=handler).status_code == 409
