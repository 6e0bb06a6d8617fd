"""The routing actor over the real broker, route_event's idempotency, and the outbox relay."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from sqlmodel import col, select

from dispatcher.bootstrap import build_runtime
from dispatcher.db import unit_of_work
from dispatcher.enums import EventStatus, TaskStatus
from dispatcher.intake.outbox import relay_due
from dispatcher.intake.service import relay
from dispatcher.models import Event, Task, TaskHistory
from dispatcher.org.model import Org
from dispatcher.routing.dispatch import ROUTING_ACTOR, dispatch_event
from dispatcher.settings import Settings
from dispatcher.wallclock import utcnow
from schedules.main import Job
from tests import factories
from tests.integration.conftest import closed_redis_url, db_counts, get_event_row, post_event
from tests.support import wait_for
from workers.broker import Enqueuer
from workers.names import ROUTING_QUEUE

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def wait_routed(engine: sa.Engine, event_id: str, timeout: float = 15) -> Task:
    def task() -> Task | None:
        with unit_of_work(engine) as s:
            return s.exec(select(Task).where(Task.event_id == event_id)).first()

    found: Task = wait_for(task, timeout=timeout, what=f"event {event_id} to be routed")
    return found


def history_of(engine: sa.Engine, task_id: int | None) -> list[TaskHistory]:
    with unit_of_work(engine) as s:
        return list(s.exec(select(TaskHistory).where(TaskHistory.task_id == task_id)).all())


def drain(broker: Any) -> None:
    """Wait until every routing message was processed and acknowledged."""
    broker.join(ROUTING_QUEUE, timeout=15_000)


@pytest.mark.parametrize(
    ("body", "handler", "verifier", "rule", "reason_mentions"),
    [
        (factories.complaint(), "DXZ-JW", "SHI1", "complaint_township", "属地办理"),
        (factories.complaint(severity="major"), "SHI1", "AJGL", "complaint_escalated", "提级办理"),
        (factories.clue(), "CGJD-JW", "SHI1", "cross_handling", "交叉办案"),
        (
            factories.clue(subject={"name": "钱某", "rank": "township"}),
            "SHI1",
            "AJGL",
            "clue_escalated",
            "提级办案",
        ),
        (factories.enterprise_request(), "RSJ", "DFZF", "enterprise_department", "部门接单"),
    ],
    ids=["complaint", "complaint-major", "clue", "clue-township-cadre", "enterprise-request"],
)
def test_each_kind_is_dispatched_to_its_unit_with_rule_reason_and_history(
    engine: sa.Engine,
    loaded_org: Org,
    api_url: str,
    token: str,
    worker: object,
    body: dict[str, Any],
    handler: str,
    verifier: str,
    rule: str,
    reason_mentions: str,
) -> None:
    posted = post_event(api_url, token, body).json()

    task = wait_routed(engine, posted["event_id"])

    assert task.status == TaskStatus.dispatched
    assert (task.handler_unit, task.verifier_unit, task.rule) == (handler, verifier, rule)
    assert reason_mentions in task.reason and CHINESE.search(task.reason)
    assert task.ledger_no == posted["ledger_no"]
    assert task.kind == body["kind"]
    assert task.dispatched_at is not None
    assert (task.zone_code, task.township_code) == ("Z1", "DXZ")
    [entry] = history_of(engine, task.id)
    assert (entry.actor, entry.from_status, entry.to_status) == (ROUTING_ACTOR, None, TaskStatus.dispatched)
    assert entry.note == task.reason
    event = get_event_row(engine, posted["event_id"])
    assert event.status == EventStatus.dispatched
    assert event.relay_after is None and event.routed_at is not None


def test_an_unknown_township_becomes_a_triage_task(
    engine: sa.Engine, loaded_org: Org, api_url: str, token: str, worker: object
) -> None:
    posted = post_event(api_url, token, factories.complaint(township="桃花源镇")).json()

    task = wait_routed(engine, posted["event_id"])

    assert task.status == TaskStatus.triage
    assert task.rule == "unknown_township"
    assert task.handler_unit is None and task.dispatched_at is None
    assert "桃花源镇" in task.reason
    [entry] = history_of(engine, task.id)
    assert (entry.actor, entry.to_status) == (ROUTING_ACTOR, TaskStatus.triage)
    assert get_event_row(engine, posted["event_id"]).status == EventStatus.triage


def test_without_a_loaded_org_events_go_to_triage(
    engine: sa.Engine, api_url: str, token: str, worker: object
) -> None:
    posted = post_event(api_url, token, factories.complaint()).json()
    task = wait_routed(engine, posted["event_id"])
    assert (task.status, task.rule) == (TaskStatus.triage, "no_org")


def test_routing_the_same_event_twice_creates_one_task(
    engine: sa.Engine, loaded_org: Org, offline_broker_api_url: str, token: str
) -> None:
    event_id = post_event(offline_broker_api_url, token, factories.complaint()).json()["event_id"]

    with unit_of_work(engine) as s:
        first = dispatch_event(s, event_id, now=utcnow())
    with unit_of_work(engine) as s:
        second = dispatch_event(s, event_id, now=utcnow())

    assert first is not None and first.status == TaskStatus.dispatched
    assert second is None
    counts = db_counts(engine)
    assert (counts["tasks"], counts["history"]) == (1, 1)


def test_routing_an_unknown_event_does_nothing(engine: sa.Engine, loaded_org: Org) -> None:
    with unit_of_work(engine) as s:
        assert dispatch_event(s, "0" * 32, now=utcnow()) is None
    assert db_counts(engine)["tasks"] == 0


def test_the_same_message_delivered_several_times_creates_one_task(
    engine: sa.Engine, loaded_org: Org, api_url: str, token: str, broker: Any, worker: object
) -> None:
    event_id = post_event(api_url, token, factories.clue()).json()["event_id"]
    enqueuer = Enqueuer(broker)
    for _ in range(3):  # three more separate messages, besides the API's own
        enqueuer.route_events([event_id])

    drain(broker)

    task = wait_routed(engine, event_id)
    counts = db_counts(engine)
    assert (counts["tasks"], counts["history"]) == (1, 1)
    assert task.status == TaskStatus.dispatched


def make_due(engine: sa.Engine, event_id: str) -> None:
    with unit_of_work(engine) as s:
        event = s.get(Event, event_id)
        assert event is not None
        event.relay_after = utcnow() - timedelta(seconds=1)


def relay_job(settings: Settings) -> Job:
    """The scheduler's outbox-relay job on ``settings`` (a failing pass is logged, not raised)."""
    return Job("outbox-relay", build_runtime(settings, broker_timeout=2.0), relay, None)


def test_the_relay_re_enqueues_an_event_whose_broker_was_down_and_the_worker_routes_it(
    engine: sa.Engine,
    loaded_org: Org,
    offline_broker_api_url: str,
    token: str,
    settings: Settings,
    worker: object,
) -> None:
    event_id = post_event(offline_broker_api_url, token, factories.complaint()).json()["event_id"]
    relay_pass = relay_job(settings)
    assert relay_pass() == 0  # not due yet: relay_after is in the future
    make_due(engine, event_id)

    assert relay_pass() == 1

    task = wait_routed(engine, event_id)
    assert task.handler_unit == "DXZ-JW"
    event = get_event_row(engine, event_id)
    assert (event.status, event.relay_after, event.relay_attempts) == (EventStatus.dispatched, None, 1)


def test_the_relay_does_nothing_for_routed_events(
    engine: sa.Engine, loaded_org: Org, api_url: str, token: str, settings: Settings, worker: object
) -> None:
    event_id = post_event(api_url, token, factories.complaint()).json()["event_id"]
    wait_routed(engine, event_id)
    sent: list[str] = []

    with unit_of_work(engine) as s:
        n = relay_due(s, now=utcnow() + timedelta(days=1), enqueue=sent.extend, base=1, cap=2)

    assert (n, sent) == (0, [])
    assert relay_job(settings)() == 0


def test_the_relay_backs_off_an_event_it_re_enqueued(
    engine: sa.Engine, offline_broker_api_url: str, token: str
) -> None:
    event_id = post_event(offline_broker_api_url, token, factories.complaint()).json()["event_id"]
    now = utcnow() + timedelta(seconds=5)
    sent: list[str] = []

    with unit_of_work(engine) as s:
        assert relay_due(s, now=now, enqueue=sent.extend, base=1, cap=60) == 1
    with unit_of_work(engine) as s:
        assert relay_due(s, now=now, enqueue=sent.extend, base=1, cap=60) == 0  # backed off

    assert sent == [event_id]
    event = get_event_row(engine, event_id)
    assert (event.status, event.relay_attempts) == (EventStatus.accepted, 1)
    assert event.relay_after == now + timedelta(seconds=1)


def test_a_relay_whose_enqueue_fails_leaves_the_event_due(
    engine: sa.Engine, offline_broker_api_url: str, token: str, settings: Settings
) -> None:
    event_id = post_event(offline_broker_api_url, token, factories.complaint()).json()["event_id"]
    make_due(engine, event_id)
    before = get_event_row(engine, event_id)

    def broken(ids: Sequence[str]) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError), unit_of_work(engine) as s:
        relay_due(s, now=utcnow(), enqueue=broken, base=1, cap=2)
    down = relay_job(settings.model_copy(update={"redis_url": closed_redis_url()}))
    assert down() == 0  # logged, not raised

    after = get_event_row(engine, event_id)
    assert (after.status, after.relay_attempts, after.relay_after) == (
        EventStatus.accepted,
        0,
        before.relay_after,
    )
    assert after.relay_after is not None and after.relay_after <= utcnow()
    sent: list[str] = []
    with unit_of_work(engine) as s:
        assert relay_due(s, now=utcnow(), enqueue=sent.extend, base=1, cap=2) == 1
    assert sent == [event_id]


def test_the_relay_enqueues_through_the_real_broker_and_waits_while_a_backlog_remains(
    engine: sa.Engine, offline_broker_api_url: str, token: str, settings: Settings, broker: Any
) -> None:
    ids = [post_event(offline_broker_api_url, token, factories.clue()).json()["event_id"] for _ in range(3)]
    for event_id in ids:
        make_due(engine, event_id)
    relay_pass = relay_job(settings)

    assert relay_pass() == 3

    client = redis.Redis.from_url(settings.resolved_redis_url)
    try:
        messages = client.hgetall(f"{settings.broker_namespace}:{ROUTING_QUEUE}.msgs")
    finally:
        client.close()
    assert messages  # no worker runs: the messages wait in Redis
    stored = b" ".join(messages.values()).decode()
    assert all(event_id in stored for event_id in ids)
    for event_id in ids:  # due again, but the routing queue still holds them: nothing is lost
        make_due(engine, event_id)
    assert relay_pass() == 0
    # due for longer than relay delay + backoff cap: relayed even behind a backlog that never drains
    # (issue 12: sustained traffic, or an orphan of a Redis stall), so recovery is bounded
    stale = utcnow() - timedelta(
        seconds=settings.relay_after_seconds + settings.relay_max_backoff_seconds + 1
    )
    with unit_of_work(engine) as s:
        s.execute(sa.update(Event).where(col(Event.id).in_(ids)).values(relay_after=stale))
    assert relay_pass() == 3


def test_a_message_orphaned_in_a_live_workers_ack_set_does_not_hold_the_relay_back(
    engine: sa.Engine, offline_broker_api_url: str, token: str, settings: Settings, broker: Any
) -> None:
    """Issue 12: a Redis stall leaves a fetched message in a live worker's ack set, never acknowledged
    and never requeued (the worker's heartbeat is fresh); it must not stop the relay."""
    event_id = post_event(offline_broker_api_url, token, factories.clue()).json()["event_id"]
    relay_pass = relay_job(settings)
    make_due(engine, event_id)
    assert relay_pass() == 1
    client = redis.Redis.from_url(settings.resolved_redis_url)
    ns = settings.broker_namespace
    try:  # what dispatch.lua's fetch does, for a worker that never saw the answer
        message_id = client.lpop(f"{ns}:{ROUTING_QUEUE}")
        client.sadd(f"{ns}:__acks__.stalled-worker.{ROUTING_QUEUE}", message_id)
        client.zadd(f"{ns}:__heartbeats__", {"stalled-worker": time.time() * 1000})
        assert client.llen(f"{ns}:{ROUTING_QUEUE}") == 0 and client.hlen(f"{ns}:{ROUTING_QUEUE}.msgs") == 1
    finally:
        client.close()
    make_due(engine, event_id)
    assert relay_pass() == 1  # relayed again at once: the orphan is not a backlog


def test_clues_routed_in_one_message_are_spread_over_the_least_loaded_townships(
    engine: sa.Engine, loaded_org: Org, offline_broker_api_url: str, token: str, broker: Any
) -> None:
    """Rule 6 inside one message: the loads are read once and counted on as each clue is assigned
    (issue 13), so the clues of a batch are spread as if they had come one by one."""
    from workers.actors import route_events

    r = httpx.post(
        f"{offline_broker_api_url}/api/v1/events:batch",
        json={"events": [factories.clue() for _ in range(6)]},
        headers={"Authorization": f"Bearer {token}"},
    )
    ids = [item["event_id"] for item in r.json()["results"]]

    route_events(ids)

    with unit_of_work(engine) as s:
        tasks = s.exec(select(Task).where(col(Task.event_id).in_(ids))).all()
    assert {t.rule for t in tasks} == {"cross_handling"}
    per_unit = Counter(t.handler_unit for t in tasks)
    assert len(per_unit) >= 2 and max(per_unit.values()) - min(per_unit.values()) <= 1, per_unit
