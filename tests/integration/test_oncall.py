"""The on-call console (issue 9): queue state, dead letters, alerts, failed webhooks, over real HTTP,
a real Redis broker (dramatiq's own Lua commands make the dead letters) and a real database."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.db import unit_of_work
from dispatcher.models import AlertEvent, Event, Notification, OncallAction, Task
from dispatcher.notify.webhooks import sign
from dispatcher.oncall.policy import AlertPolicy
from dispatcher.oncall.service import check_alerts
from dispatcher.org.model import Org, Webhook
from dispatcher.runtime import Runtime
from dispatcher.wallclock import utcnow
from tests import factories
from tests.integration.conftest import auth
from tests.integration.test_webhooks import Receiver
from tests.support import wait_for
from tests.web_helpers import add_staff, publish, web_login
from workers.names import ROUTING_QUEUE

#: Every figure issue 9 names, as a metric on /metrics.
METRICS = [
    'dispatch_queue_messages{queue="routing",state="ready"}', 'state="delayed"', 'state="in_flight"',
    'state="dead"', "dispatch_dead_letters", "dispatch_workers_alive",
    "dispatch_worker_last_seen_timestamp_seconds",
    'dispatch_intake_per_minute{window="1m"}', 'dispatch_intake_per_minute{window="5m"}',
    'dispatch_intake_per_minute{window="15m"}', 'dispatch_dispatch_per_minute{window="15m"}',
    'dispatch_routing_latency_seconds{quantile="0.50"}', 'dispatch_routing_latency_seconds{quantile="0.95"}',
    'dispatch_routing_latency_seconds{quantile="0.99"}', "dispatch_outbox_backlog",
    "dispatch_outbox_oldest_seconds", "dispatch_triage_backlog", "dispatch_triage_oldest_seconds",
    "dispatch_tasks_late", "dispatch_webhooks_failed",
    "dispatch_calendar_missing", "dispatch_scheduler_leader", "dispatch_alert_firing", "dispatch_broker_up",
]  # fmt: skip


def _dead_letter(broker: Any) -> str:
    """Take the next routing message and fail it for good, exactly as dramatiq does after the last retry."""
    consumer = broker.consume(ROUTING_QUEUE, prefetch=1, timeout=1000)
    try:
        message = wait_for(lambda: next(consumer), timeout=10, what="a routing message")
        consumer.nack(message)
        return str(message.options["redis_message_id"])  # the id dramatiq keeps it under in Redis
    finally:
        consumer.close()


def _task_of(engine: sa.Engine, event_id: str) -> Task | None:
    with unit_of_work(engine, read_only=True) as s:
        return s.exec(select(Task).where(Task.event_id == event_id)).first()


def test_queue_state_page_and_metrics_show_every_figure_to_oncall_only(
    engine: sa.Engine, loaded_org: Org, api_url: str, runtime: Runtime, worker: object
) -> None:
    source = factories.source_token(engine)
    event_id = publish(api_url, source)
    wait_for(lambda: _task_of(engine, event_id), timeout=20, what="the event routed")
    oncall, password = add_staff(engine, loaded_org, "zhou.zhiban", "SHI1", "oncall")
    handler, _ = add_staff(engine, loaded_org, "li.chengban", "DXZ-JW", "handler")

    state = httpx.get(f"{api_url}/api/v1/queue", headers=auth(oncall), timeout=30).json()
    assert {q["queue"] for q in state["queues"]} == {"routing", "notify", "supervision", "monthly"}
    assert state["broker"]["reachable"] and state["workers_alive"] >= 1
    assert (
        state["rates"]["intake_per_minute"]["15m"] > 0 and state["routing_latency_seconds"]["p50"] is not None
    )
    assert state["outbox"] == {"backlog": 0, "oldest_seconds": None}
    for key in ("triage", "late_by_zone", "failed_webhooks", "calendar_warning", "scheduler", "alerts"):
        assert key in state

    metrics = httpx.get(f"{api_url}/metrics", headers=auth(oncall), timeout=30)
    assert metrics.status_code == 200
    missing = [m for m in METRICS if m not in metrics.text]
    assert not missing, missing

    assert httpx.get(f"{api_url}/api/v1/queue", headers=auth(handler), timeout=30).status_code == 403
    assert httpx.get(f"{api_url}/api/v1/dead-letters", headers=auth(handler), timeout=30).status_code == 403
    client, _ = web_login(api_url, "zhou.zhiban", password)
    page = client.get("/queue")
    assert page.status_code == 200 and "值班台" in page.text and "存活工作进程" in page.text
    live = client.get("/queue/live", headers={"HX-Request": "true"})
    assert live.status_code == 200 and "queue-figures" in live.text
    assert client.get("/alerts").status_code == 200 and client.get("/dead-letters").status_code == 200


def test_a_dead_letter_is_listed_retried_from_the_page_and_its_event_dispatched(
    engine: sa.Engine, loaded_org: Org, api_url: str, broker: Any, request: pytest.FixtureRequest
) -> None:
    source = factories.source_token(engine)
    _, password = add_staff(engine, loaded_org, "zhou.zhiban", "SHI1", "oncall")
    token, _ = add_staff(engine, loaded_org, "wu.zhiban", "SHI1", "oncall")
    first, second = publish(api_url, source), publish(api_url, source)
    letters = {_dead_letter(broker), _dead_letter(broker)}

    listed = httpx.get(f"{api_url}/api/v1/dead-letters", headers=auth(token), timeout=30).json()[
        "dead_letters"
    ]
    assert {d["id"] for d in listed} == letters
    assert {d["actor"] for d in listed} == {"route_events"}
    assert sorted(d["args"][0][0] for d in listed) == sorted([first, second])
    by_event = {d["args"][0][0]: d["id"] for d in listed}

    client, csrf = web_login(api_url, "zhou.zhiban", password)
    page = client.get("/dead-letters")
    assert "事件路由" in page.text and first in page.text
    # purging needs the confirmation box
    r = client.post(f"/dead-letters/{by_event[second]}/purge", data={"csrf_token": csrf})
    assert r.status_code == 303 and len(broker.client.zrange(f"{broker.namespace}:routing.XQ", 0, -1)) == 2
    assert "确认永久清除" in client.get("/dead-letters").text
    r = client.post(f"/dead-letters/{by_event[second]}/purge", data={"csrf_token": csrf, "confirm": "yes"})
    assert r.status_code == 303
    # the first is retried from the page: back on its queue, routed once a worker runs
    r = client.post(f"/dead-letters/{by_event[first]}/retry", data={"csrf_token": csrf})
    assert r.status_code == 303 and "已重新入队" in client.get("/dead-letters").text
    assert (
        httpx.get(f"{api_url}/api/v1/dead-letters", headers=auth(token), timeout=30).json()["dead_letters"]
        == []
    )
    request.getfixturevalue("worker")
    wait_for(lambda: _task_of(engine, first), timeout=20, what="the retried event dispatched")

    gone = httpx.post(
        f"{api_url}/api/v1/dead-letters/{by_event[first]}/retry", headers=auth(token), timeout=30
    )
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    bad = httpx.delete(f"{api_url}/api/v1/dead-letters/..%2Fx", headers=auth(token), timeout=30)
    assert bad.status_code in (404, 422)
    assert httpx.post(f"{api_url}/api/v1/dead-letters:retry-all", headers=auth(token), timeout=30).json() == {
        "retried": 0
    }
    with unit_of_work(engine, read_only=True) as s:
        done = [(a.login, a.action) for a in s.exec(select(OncallAction).order_by(OncallAction.id)).all()]
    assert done == [
        ("zhou.zhiban", "dead_letter.purge"), ("zhou.zhiban", "dead_letter.retry"),
        ("wu.zhiban", "dead_letter.retry_all"),
    ]  # fmt: skip


def _alerting(runtime: Runtime, url: str, **rules: Any) -> Runtime:
    alerts = AlertPolicy(webhook=Webhook(url=url, secret_env="ONCALL_SECRET"), **rules)  # type: ignore[arg-type]
    return replace(runtime, policy=runtime.policy.model_copy(update={"alerts": alerts}))


def _events(engine: sa.Engine, rule: str) -> list[str]:
    with unit_of_work(engine, read_only=True) as s:
        return [
            e.change
            for e in s.exec(select(AlertEvent).where(AlertEvent.rule == rule).order_by(AlertEvent.id))
        ]


def test_no_worker_alert_fires_once_clears_once_and_a_restart_does_not_repeat_it(
    engine: sa.Engine, loaded_org: Org, runtime: Runtime, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("ONCALL_SECRET", "oncall-secret-0123")
    with Receiver() as receiver:
        rt = _alerting(runtime, f"{receiver.url}/oncall", no_worker_seconds=1)
        check_alerts(rt)
        check_alerts(rt)
        assert _events(engine, "no_worker") == ["fired"]
        restarted = _alerting(runtime, f"{receiver.url}/oncall", no_worker_seconds=1)  # a new process
        check_alerts(restarted)
        assert _events(engine, "no_worker") == ["fired"]

        request.getfixturevalue("worker")
        wait_for(lambda: rt.queue.workers() and rt.queue.workers()[0].alive, timeout=10, what="a heartbeat")
        check_alerts(rt)
        check_alerts(restarted)
        assert _events(engine, "no_worker") == ["fired", "cleared"]

        posts = [r for r in receiver.received() if json.loads(r.body)["rule"] == "no_worker"]
    assert [json.loads(r.body)["change"] for r in posts] == ["fired", "cleared"]
    for post in posts:
        assert post.headers["X-Dispatch-Signature"] == sign("oncall-secret-0123", post.body)
    assert "没有存活的工作进程" in json.loads(posts[0].body)["message"]
    with unit_of_work(engine, read_only=True) as s:
        assert {e.delivery for e in s.exec(select(AlertEvent).where(AlertEvent.rule == "no_worker"))} == {
            "delivered"
        }


def test_a_stalled_outbox_and_failed_webhooks_alert_and_a_failed_delivery_is_retried(
    engine: sa.Engine, loaded_org: Org, api_url: str, runtime: Runtime,
) -> None:  # fmt: skip
    source = factories.source_token(engine)
    event_id = publish(api_url, source)  # no worker: it stays accepted
    with unit_of_work(engine) as s:
        s.execute(
            sa.update(Event).where(Event.id == event_id).values(accepted_at=utcnow() - timedelta(minutes=5))
        )
        failed = Notification(unit_code="DXZ-JW", kind="dispatch", message="TS-1 已分办",
                              created_at=utcnow(), webhook_status="failed", webhook_attempts=8,
                              webhook_error="HTTP 500")  # fmt: skip
        s.add(failed)
        s.flush()
        notification_id = failed.id
    rt = _alerting(runtime, "http://127.0.0.1:9/unused", outbox_age_seconds=60)
    rt = replace(
        rt,
        policy=rt.policy.model_copy(update={"alerts": rt.policy.alerts.model_copy(update={"webhook": None})}),
    )
    check_alerts(rt)
    assert _events(engine, "outbox_age") == ["fired"] and _events(engine, "failed_webhooks") == ["fired"]

    token, _ = add_staff(engine, loaded_org, "zhou.zhiban", "SHI1", "oncall")
    answer = httpx.get(f"{api_url}/api/v1/alerts", headers=auth(token), timeout=30).json()
    firing = {r["rule"] for r in answer["rules"] if r["firing"]}
    assert {"outbox_age", "failed_webhooks"} <= firing
    assert re.search(r"1 件已接收事件尚未路由，最早的已等待 5 分钟", next(
        r["message"] for r in answer["rules"] if r["rule"] == "outbox_age"))  # fmt: skip

    r = httpx.post(f"{api_url}/api/v1/notifications/{notification_id}/retry", headers=auth(token), timeout=30)
    assert r.status_code == 200, r.text
    with unit_of_work(engine, read_only=True) as s:
        n = s.get(Notification, notification_id)
        assert n is not None and (n.webhook_status, n.webhook_attempts) == ("pending", 0)
    again = httpx.post(
        f"{api_url}/api/v1/notifications/{notification_id}/retry", headers=auth(token), timeout=30
    )
    assert again.status_code == 404

    with unit_of_work(engine) as s:  # routed at last
        s.execute(sa.update(Event).where(Event.id == event_id).values(status="routed", relay_after=None))
    check_alerts(rt)
    assert _events(engine, "outbox_age") == ["fired", "cleared"]
    assert _events(engine, "failed_webhooks") == ["fired", "cleared"]
