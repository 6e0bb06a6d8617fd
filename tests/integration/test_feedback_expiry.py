"""回访期满: the feedback-expiry job closes unanswered feedback requests as "no response" (§6)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.bootstrap import build_runtime, policy_for
from dispatcher.db import unit_of_work
from dispatcher.models import Task, TaskHistory
from dispatcher.org.model import Org
from dispatcher.routing.dispatch import dispatch_event
from dispatcher.settings import Settings
from dispatcher.tasks.access import Actor
from dispatcher.tasks.lifecycle import Move
from dispatcher.tasks.moves import MoveRequest, apply_move
from dispatcher.tasks.service import expire_feedback
from dispatcher.wallclock import utcnow
from tests import factories
from tests.conftest import make_settings
from tests.support import wait_for

HANDLERS = {"complaint": "DXZ-JW", "clue": "CGJD-JW"}
OUTCOMES: dict[str, dict[str, Any]] = {
    "complaint": {"resolved": True, "reply": "补贴已发放"},
    "clue": {"disposition": "close_out", "case_filed": False, "disciplined_count": 0},
}


def expire(settings: Settings) -> int:
    """One pass of the scheduler's feedback-expiry job on ``settings``' runtime."""
    runtime = build_runtime(settings)
    try:
        return expire_feedback(runtime)
    finally:
        runtime.queue.close()


def verified_task(
    engine: sa.Engine,
    org: Org,
    settings: Settings,
    api_url: str,
    source: dict[str, str],
    body: dict[str, Any],
) -> int:
    """An event posted, routed, accepted, submitted and verified; returns its task id."""
    r = httpx.post(f"{api_url}/api/v1/events", json=body, headers=source, timeout=30)
    assert r.status_code in (200, 201, 202), r.text
    kind = body["kind"]
    handler = Actor(login=f"h-{kind}", role="handler", unit=HANDLERS[kind])
    verifier = Actor(login=f"v-{kind}", role="verifier", unit="SHI1")
    with unit_of_work(engine) as s:
        task = dispatch_event(s, r.json()["event_id"], now=utcnow())
        assert task is not None and task.id is not None
        assert (task.handler_unit, task.verifier_unit) == (HANDLERS[kind], "SHI1")
        task_id = task.id
    for actor, request in (
        (handler, MoveRequest(move=Move.accept)),
        (handler, MoveRequest(move=Move.submit, outcome=OUTCOMES[kind])),
        (verifier, MoveRequest(move=Move.verify)),
    ):
        with unit_of_work(engine) as s:
            apply_move(s, actor, task_id, request, now=utcnow(), org=org, policy=policy_for(settings))
    return task_id


def set_feedback_due(engine: sa.Engine, task_id: int, due: datetime) -> None:
    with unit_of_work(engine) as s:
        task = s.get(Task, task_id)
        assert task is not None
        task.feedback_due_at = due
        s.add(task)


def snapshot(engine: sa.Engine, task_id: int) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """The task's row and its history, to compare before and after a pass."""
    with unit_of_work(engine, read_only=True) as s:
        task = s.get(Task, task_id)
        assert task is not None
        history = s.exec(
            select(TaskHistory).where(TaskHistory.task_id == task_id).order_by(TaskHistory.id)  # type: ignore[arg-type]
        ).all()
        return task.model_dump(), [
            (h.at, h.actor, h.move, h.from_status, h.to_status, h.note) for h in history
        ]


def source_headers(engine: sa.Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {factories.source_token(engine)}"}


def test_a_complaint_past_its_feedback_window_is_closed_as_no_response_by_the_system_once(
    engine: sa.Engine, loaded_org: Org, settings: Settings, api_url: str
) -> None:
    source = source_headers(engine)
    expired = verified_task(engine, loaded_org, settings, api_url, source, factories.complaint())
    waiting = verified_task(engine, loaded_org, settings, api_url, source, factories.complaint())
    before = utcnow()
    set_feedback_due(engine, expired, before - timedelta(minutes=1))
    waiting_before = snapshot(engine, waiting)
    assert waiting_before[0]["status"] == "awaiting_feedback"
    assert waiting_before[0]["feedback_due_at"] > before + timedelta(days=settings.feedback_window_days - 1)

    assert expire(settings) == 1

    task, history = snapshot(engine, expired)
    assert task["status"] == "closed" and task["close_reason"] == "no_response"
    assert task["feedback_due_at"] is None and task["feedback_rating"] is None
    assert task["closed_at"] is not None and task["closed_at"] >= before
    last = history[-1]
    assert last[1:5] == ("system:feedback", "feedback_expire", "awaiting_feedback", "closed")
    assert [h[2] for h in history] == ["dispatch", "accept", "submit", "verify", "feedback_expire"]
    assert snapshot(engine, waiting) == waiting_before

    # A second pass (or a second scheduler) finds nothing more to do.
    closed = snapshot(engine, expired)
    assert expire(settings) == 0
    assert snapshot(engine, expired) == closed
    assert snapshot(engine, waiting) == waiting_before


def test_the_requesters_feedback_after_the_window_expired_is_refused(
    engine: sa.Engine, loaded_org: Org, settings: Settings, api_url: str
) -> None:
    source = source_headers(engine)
    body = factories.complaint()
    task_id = verified_task(engine, loaded_org, settings, api_url, source, body)
    set_feedback_due(engine, task_id, utcnow() - timedelta(seconds=1))
    assert expire(settings) == 1

    with unit_of_work(engine, read_only=True) as s:
        task = s.get(Task, task_id)
        assert task is not None and task.event_id is not None
        event_id = task.event_id
    r = httpx.post(
        f"{api_url}/api/v1/events/{event_id}/feedback",
        json={"rating": "satisfied"},
        headers=source,
        timeout=30,
    )
    assert r.status_code == 409, r.text
    assert snapshot(engine, task_id)[0]["close_reason"] == "no_response"


def test_the_feedback_window_setting_decides_when_an_unanswered_task_expires(
    engine: sa.Engine, loaded_org: Org, tmp_path: Path, database_url: str, redis_url: str,
    broker_namespace: str, api_url: str,
) -> None:  # fmt: skip
    short = make_settings(
        tmp_path, database_url, redis_url, broker_namespace, feedback_window_days=1.5 / 86_400
    )
    task_id = verified_task(engine, loaded_org, short, api_url, source_headers(engine), factories.complaint())
    due = snapshot(engine, task_id)[0]["feedback_due_at"]
    assert timedelta(0) < due - utcnow() <= timedelta(seconds=1.5)

    def job() -> int:
        return expire(short)

    if utcnow() < due:
        assert job() == 0  # not yet
        assert snapshot(engine, task_id)[0]["status"] == "awaiting_feedback"

    wait_for(job, timeout=10, interval=0.2, what="the feedback window to pass")
    task, history = snapshot(engine, task_id)
    assert task["close_reason"] == "no_response" and task["closed_at"] >= due
    assert history[-1][1] == "system:feedback"


def test_a_clue_closes_on_verification_and_never_waits_for_feedback(
    engine: sa.Engine, loaded_org: Org, settings: Settings, api_url: str
) -> None:
    source = source_headers(engine)
    clue = verified_task(engine, loaded_org, settings, api_url, source, factories.clue())
    task, history = snapshot(engine, clue)
    assert task["status"] == "closed" and task["close_reason"] == "verified"
    assert task["feedback_due_at"] is None
    assert history[-1][2:5] == ("verify", "submitted", "closed")

    assert expire(settings) == 0
    assert snapshot(engine, clue) == (task, history)
