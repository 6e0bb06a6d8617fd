"""Notifications reach the receiving unit in the app and through its signed webhook (issue 3, item 5).

Every test posts to a real HTTP receiver (``http.server`` on 127.0.0.1, in a thread) through the
real broker and an in-process dramatiq worker. The units' webhooks point at the receiver by
loading a copy of ``examples/org.yaml`` whose webhook addresses were rewritten.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.accounts.registry import add_user
from dispatcher.bootstrap import build_runtime
from dispatcher.db import unit_of_work
from dispatcher.models import Notification, Task
from dispatcher.notify.service import relay_webhooks
from dispatcher.org import store
from dispatcher.org.loader import check_org_text
from dispatcher.org.model import Org
from dispatcher.org.store import save_org
from dispatcher.routing.dispatch import dispatch_event
from dispatcher.settings import Settings
from dispatcher.wallclock import utcnow
from tests import factories
from tests.conftest import EXAMPLE_ORG, TEST_SECRET, make_settings
from tests.support import wait_for
from workers.broker import Enqueuer, build_broker

#: Attempts before a delivery is given up: low, so the failure tests take a few seconds.
MAX_ATTEMPTS = 3
#: Bound of every wait for a delivery (dramatiq's backoff: 1-2 s, then 2-4 s between attempts).
DELIVERY_TIMEOUT = 30.0
SECRETS = {
    "WEBHOOK_SECRET_DXZ": "dxz-secret-大兴-0123456789",
    "WEBHOOK_SECRET_SHI1": "shi1-secret-0123456789",
    "WEBHOOK_SECRET_CGJD": "cgjd-secret-0123456789",
}
#: Webhook path of each unit in the rewritten org → the environment variable holding its secret.
UNIT_HOOKS = {
    "DXZ-JW": ("/hooks/dxz", "WEBHOOK_SECRET_DXZ"),
    "SHI1": ("/hooks/shi1", "WEBHOOK_SECRET_SHI1"),
    "CGJD-JW": ("/hooks/cgjd", "WEBHOOK_SECRET_CGJD"),
}


# --------------------------------------------------------------------------------------------
# The receiver
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook endpoint recording every request; answers 500 ``fail_next`` times (or always), else 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail_next = 0
        self.always_fail = False
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver._record(Received(self.path, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record(self, request: Received) -> int:
        with self._lock:
            self.requests.append(request)
            if self.always_fail:
                return 500
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500
            return 200

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def for_delivery(self, notification_id: int) -> list[Received]:
        return [r for r in self.received() if r.headers.get("X-Dispatch-Delivery") == str(notification_id)]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str, broker_namespace: str) -> Settings:
    """The test's settings with few webhook attempts (the broker, worker and API all use these)."""
    return make_settings(
        tmp_path, database_url, redis_url, broker_namespace, webhook_max_attempts=MAX_ATTEMPTS
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def webhook_org_text(base_url: str) -> str:
    """The example org with its webhooks (DXZ-JW, SHI1, SCJG) at the receiver, and one added for CGJD-JW."""
    text = EXAMPLE_ORG.read_text()
    assert text.count("http://127.0.0.1:9/hooks/") == 3
    text = text.replace("http://127.0.0.1:9/hooks/", f"{base_url}/hooks/")
    cgjd = (
        "  - code: CGJD-JW\n    name: 城关街道纪工委\n    kind: township_commission\n"
        "    zone: Z1\n    township: CGJD\n"
    )
    assert cgjd in text
    return text.replace(
        cgjd, cgjd + f'    webhook: {{url: "{base_url}/hooks/cgjd", secret_env: WEBHOOK_SECRET_CGJD}}\n'
    )


@pytest.fixture
def webhook_org(engine: sa.Engine, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Org:
    """The org in force, its webhooks pointing at the receiver, their secrets in the environment."""
    # ``current_org`` caches the parsed org by version id only; every test database starts at id 1,
    # so a previous test's org (other webhook addresses) would be served from the cache.
    monkeypatch.setattr(store, "_cache", {})
    for name, secret in SECRETS.items():
        monkeypatch.setenv(name, secret)
    text = webhook_org_text(receiver.url)
    org, problems = check_org_text(text, "org-webhooks.yaml")
    assert org is not None, problems
    with unit_of_work(engine) as s:
        save_org(s, org, source_name="org-webhooks.yaml", text=text, now=utcnow(), secret_key=TEST_SECRET)
    return org


@pytest.fixture
def source(engine: sa.Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {factories.source_token(engine)}"}


class Users:
    """API tokens of staff created on demand, one per (unit, role)."""

    def __init__(self, engine: sa.Engine, org: Org) -> None:
        self.engine, self.org = engine, org
        self._tokens: dict[tuple[str, str], dict[str, str]] = {}

    def __call__(self, unit: str, role: str) -> dict[str, str]:
        key = (unit, role)
        if key not in self._tokens:
            with unit_of_work(self.engine) as s:
                login = f"t-{unit.lower()}-{role}"
                _, token, _ = add_user(s, login=login, unit=unit, role=role, org=self.org, now=utcnow())
            self._tokens[key] = {"Authorization": f"Bearer {token}"}
        return self._tokens[key]


@pytest.fixture
def users(engine: sa.Engine, webhook_org: Org) -> Users:
    return Users(engine, webhook_org)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def post_event(api_url: str, source: dict[str, str], body: dict[str, Any]) -> str:
    r = httpx.post(f"{api_url}/api/v1/events", json=body, headers=source, timeout=30)
    assert r.status_code in (200, 201, 202), r.text
    event_id: str = r.json()["event_id"]
    return event_id


def wait_task(engine: sa.Engine, event_id: str) -> Task:
    def find() -> Task | None:
        with unit_of_work(engine, read_only=True) as s:
            return s.exec(select(Task).where(Task.event_id == event_id)).first()

    task: Task = wait_for(find, timeout=15, what=f"event {event_id} to be routed")
    return task


def notifications_of(engine: sa.Engine, task_id: int | None) -> list[Notification]:
    with unit_of_work(engine, read_only=True) as s:
        query = select(Notification).where(Notification.task_id == task_id).order_by(Notification.id)  # type: ignore[arg-type]
        return list(s.exec(query).all())


def wait_notification(
    engine: sa.Engine, task_id: int | None, kind: str, *, status: str, timeout: float = DELIVERY_TIMEOUT
) -> Notification:
    """The task's newest ``kind`` notification once its webhook status is ``status``."""

    def find() -> Notification | None:
        found = [n for n in notifications_of(engine, task_id) if n.kind == kind]
        return found[-1] if found and found[-1].webhook_status == status else None

    notification: Notification = wait_for(
        find, timeout=timeout, interval=0.05, what=f"{kind} notification of task {task_id} to be {status}"
    )
    return notification


def move(
    api_url: str, headers: dict[str, str], task_id: int | None, name: str, **body: Any
) -> dict[str, Any]:
    r = httpx.post(f"{api_url}/api/v1/tasks/{task_id}/{name}", json=body or None, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def inbox(api_url: str, headers: dict[str, str]) -> dict[int, dict[str, Any]]:
    r = httpx.get(f"{api_url}/api/v1/notifications", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return {n["id"]: n for n in r.json()["notifications"]}


def assert_signed_delivery(request: Received, notification: Notification, task: dict[str, Any]) -> None:
    """The request is the contract's JSON for ``notification``, signed with its unit's secret."""
    path, secret_env = UNIT_HOOKS[notification.unit_code]
    assert request.path == path
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Dispatch-Delivery"] == str(notification.id)
    assert request.headers["X-Dispatch-Event"] == notification.kind
    expected = "sha256=" + hmac.new(SECRETS[secret_env].encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Dispatch-Signature"], expected)
    body = request.json()
    assert body["notification_id"] == notification.id
    assert body["kind"] == notification.kind
    assert body["unit"] == notification.unit_code
    assert body["message"] == notification.message
    assert body["task"] == {
        "id": task["id"],
        "ledger_no": task["ledger_no"],
        "kind": task["kind"],
        "status": task["status"],
    }


# --------------------------------------------------------------------------------------------
# (a) every notifying move
# --------------------------------------------------------------------------------------------


def test_dispatch_rejection_reopening_designation_return_and_routing_notify_the_unit_in_app_and_by_signed_webhook(  # noqa: E501
    engine: sa.Engine,
    users: Users,
    api_url: str,
    source: dict[str, str],
    receiver: Receiver,
    worker: object,
) -> None:
    dxz_handler = users("DXZ-JW", "handler")
    shi1_verifier, leader = users("SHI1", "verifier"), users("SHI1", "zone_leader")
    cgjd_handler, oncall = users("CGJD-JW", "handler"), users("XFS", "oncall")
    event_id = post_event(api_url, source, factories.complaint())
    task_id = wait_task(engine, event_id).id
    seen: list[int] = []

    def notified(kind: str, unit: str, status: str, *, inbox_of: dict[str, str]) -> None:
        """``unit`` got exactly one new ``kind`` notification, delivered once, correctly signed."""
        n = wait_notification(engine, task_id, kind, status="delivered")
        assert n.unit_code == unit and n.id is not None and n.id not in seen
        seen.append(n.id)
        assert n.webhook_attempts == 1 and n.webhook_error is None
        [request] = receiver.for_delivery(n.id)
        task = httpx.get(f"{api_url}/api/v1/tasks/{task_id}", headers=oncall, timeout=30).json()
        assert task["status"] == status
        assert_signed_delivery(request, n, task)
        in_app = inbox(api_url, inbox_of)[n.id]
        assert in_app["unit"] == unit and in_app["kind"] == kind and in_app["task_id"] == task_id
        assert in_app["message"] == n.message and task["ledger_no"] in n.message
        assert in_app["webhook_status"] == "delivered" and in_app["webhook_attempts"] == 1

    # 分办 by routing → the township commission
    notified("dispatched", "DXZ-JW", "dispatched", inbox_of=dxz_handler)

    # 验单不通过 → back to the handling unit
    move(api_url, dxz_handler, task_id, "accept")
    move(api_url, dxz_handler, task_id, "submit", outcome={"resolved": True, "reply": "已核实"})
    move(api_url, shi1_verifier, task_id, "reject", reason="材料不全")
    notified("rejected", "DXZ-JW", "rejected", inbox_of=dxz_handler)  # for who handled it

    # 回访不满意 → reopened for the handling unit
    move(api_url, dxz_handler, task_id, "submit", outcome={"resolved": True, "reply": "已补充材料"})
    move(api_url, shi1_verifier, task_id, "verify")
    notified("verified", "DXZ-JW", "awaiting_feedback", inbox_of=dxz_handler)
    r = httpx.post(
        f"{api_url}/api/v1/events/{event_id}/feedback", json={"rating": "unsatisfied"}, headers=source
    )
    assert r.status_code == 200 and r.json()["status"] == "reopened", r.text
    notified("reopened", "DXZ-JW", "reopened", inbox_of=dxz_handler)

    # 指定办案 by the zone leader → the designated unit
    move(api_url, leader, task_id, "designate", unit="CGJD-JW", reason="交叉办理")
    notified("designated", "CGJD-JW", "dispatched", inbox_of=cgjd_handler)

    # 退回 by the designated unit → the zone's room, which routes by hand
    move(api_url, cgjd_handler, task_id, "accept")
    move(api_url, cgjd_handler, task_id, "return", reason="不属于本单位管辖")
    notified("returned", "SHI1", "returned", inbox_of=shi1_verifier)

    # 分办 by hand (on-call) → the unit named
    r = httpx.post(
        f"{api_url}/api/v1/triage/{task_id}/route",
        json={"unit": "DXZ-JW", "reason": "仍由属地办理"},
        headers=oncall,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    notified("dispatched", "DXZ-JW", "dispatched", inbox_of=dxz_handler)

    # Nothing else was sent, and each unit's inbox holds its own notifications only.
    assert sorted(int(r.headers["X-Dispatch-Delivery"]) for r in receiver.received()) == sorted(seen)
    assert [n.kind for n in notifications_of(engine, task_id)] == [
        "dispatched", "rejected", "verified", "reopened", "designated", "returned", "dispatched",
    ]  # fmt: skip
    assert {n["unit"] for n in inbox(api_url, dxz_handler).values()} == {"DXZ-JW"}
    assert {n["unit"] for n in inbox(api_url, cgjd_handler).values()} == {"CGJD-JW"}
    assert {n["kind"] for n in inbox(api_url, shi1_verifier).values()} == {"returned"}


# --------------------------------------------------------------------------------------------
# (b) retried, then delivered; (c) given up into the failed list
# --------------------------------------------------------------------------------------------


def test_a_webhook_failing_twice_is_retried_with_backoff_and_delivered_on_the_third_attempt(
    engine: sa.Engine, users: Users, api_url: str, source: dict[str, str], receiver: Receiver, worker: object
) -> None:
    receiver.fail_next = 2
    started = time.monotonic()
    task_id = wait_task(engine, post_event(api_url, source, factories.complaint())).id

    n = wait_notification(engine, task_id, "dispatched", status="delivered")
    assert n.id is not None
    assert n.webhook_attempts == 3 and n.webhook_error is None
    attempts = receiver.for_delivery(n.id)
    assert len(attempts) == 3
    assert len({a.body for a in attempts}) == 1  # the same signed body each time
    assert len({a.headers["X-Dispatch-Signature"] for a in attempts}) == 1
    assert time.monotonic() - started >= 2.0  # backed off (dramatiq's 1-2 s, then 2-4 s)
    in_app = inbox(api_url, users("DXZ-JW", "handler"))[n.id]
    assert in_app["webhook_status"] == "delivered" and in_app["webhook_attempts"] == 3


def test_a_webhook_always_failing_is_given_up_after_the_last_attempt_into_the_oncall_failed_list(
    engine: sa.Engine, users: Users, api_url: str, source: dict[str, str], receiver: Receiver, worker: object
) -> None:
    receiver.always_fail = True
    task_id = wait_task(engine, post_event(api_url, source, factories.complaint())).id

    n = wait_notification(engine, task_id, "dispatched", status="failed")
    assert n.id is not None
    assert n.webhook_attempts == MAX_ATTEMPTS
    assert n.webhook_error == "HTTP 500"
    assert len(receiver.for_delivery(n.id)) == MAX_ATTEMPTS

    failed = httpx.get(f"{api_url}/api/v1/notifications/failed", headers=users("XFS", "oncall"), timeout=30)
    assert failed.status_code == 200, failed.text
    [listed] = [f for f in failed.json()["notifications"] if f["id"] == n.id]
    assert listed["unit"] == "DXZ-JW" and listed["task_id"] == task_id and listed["kind"] == "dispatched"
    assert listed["webhook_status"] == "failed" and listed["webhook_attempts"] == MAX_ATTEMPTS
    assert listed["webhook_error"] == "HTTP 500"
    admin = httpx.get(f"{api_url}/api/v1/notifications/failed", headers=users("BGS", "admin"), timeout=30)
    assert n.id in {f["id"] for f in admin.json()["notifications"]}
    for role in ("handler", "verifier"):
        refused = httpx.get(
            f"{api_url}/api/v1/notifications/failed", headers=users("DXZ-JW", role), timeout=30
        )
        assert refused.status_code == 403, refused.text
    # The unit still has it in the app, marked failed.
    assert inbox(api_url, users("DXZ-JW", "handler"))[n.id]["webhook_status"] == "failed"
    # Given up means given up: no further attempt arrives.
    time.sleep(2.5)
    assert len(receiver.for_delivery(n.id)) == MAX_ATTEMPTS
    assert notifications_of(engine, task_id)[-1].webhook_attempts == MAX_ATTEMPTS

    # The receiver recovers; on-call resend it (issue 9): delivered, gone from the failed list.
    receiver.always_fail = False
    resent = httpx.post(
        f"{api_url}/api/v1/notifications/{n.id}/retry", headers=users("XFS", "oncall"), timeout=30
    )
    assert resent.status_code == 200, resent.text
    delivered = wait_notification(engine, task_id, "dispatched", status="delivered")
    assert delivered.webhook_attempts == 1 and len(receiver.for_delivery(n.id)) == MAX_ATTEMPTS + 1
    failed = httpx.get(f"{api_url}/api/v1/notifications/failed", headers=users("XFS", "oncall"), timeout=30)
    assert n.id not in {f["id"] for f in failed.json()["notifications"]}


# --------------------------------------------------------------------------------------------
# (d) no webhook; (e) no secret
# --------------------------------------------------------------------------------------------


def test_a_unit_without_a_webhook_is_notified_in_the_app_only(
    engine: sa.Engine, users: Users, api_url: str, source: dict[str, str], receiver: Receiver, worker: object
) -> None:
    hsz = users("HSZ-JW", "handler")
    task = wait_task(engine, post_event(api_url, source, factories.complaint(township="和顺镇")))
    assert task.handler_unit == "HSZ-JW"

    [n] = notifications_of(engine, task.id)
    assert n.id is not None
    assert (n.unit_code, n.kind, n.webhook_status, n.webhook_attempts) == ("HSZ-JW", "dispatched", "none", 0)
    in_app = inbox(api_url, hsz)[n.id]
    assert in_app["webhook_status"] == "none" and in_app["task_id"] == task.id
    # A unit with a webhook dispatched afterwards is delivered; the one without never was.
    later = wait_task(engine, post_event(api_url, source, factories.complaint())).id
    wait_notification(engine, later, "dispatched", status="delivered")
    assert [r.path for r in receiver.received()] == ["/hooks/dxz"]
    assert notifications_of(engine, task.id)[0].webhook_status == "none"


def test_a_missing_webhook_secret_fails_the_delivery_with_a_clear_error_and_sends_nothing_unsigned(
    engine: sa.Engine,
    users: Users,
    api_url: str,
    source: dict[str, str],
    receiver: Receiver,
    worker: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET_DXZ")
    task_id = wait_task(engine, post_event(api_url, source, factories.complaint())).id

    n = wait_notification(engine, task_id, "dispatched", status="failed")
    assert n.webhook_error is not None
    assert "WEBHOOK_SECRET_DXZ" in n.webhook_error and "not set" in n.webhook_error
    assert receiver.received() == []
    failed = httpx.get(f"{api_url}/api/v1/notifications/failed", headers=users("XFS", "oncall"), timeout=30)
    [listed] = [f for f in failed.json()["notifications"] if f["id"] == n.id]
    assert "WEBHOOK_SECRET_DXZ" in listed["webhook_error"]


# --------------------------------------------------------------------------------------------
# (f) the relay sends deliveries whose enqueue was lost
# --------------------------------------------------------------------------------------------


def test_the_webhook_relay_enqueues_a_stale_never_attempted_delivery_and_it_is_delivered(
    engine: sa.Engine,
    webhook_org: Org,
    api_url: str,
    source: dict[str, str],
    receiver: Receiver,
    broker: Any,
    settings: Settings,
) -> None:
    import dramatiq

    # Routed in the database without the worker: the tasks' webhook deliveries were never enqueued.
    lost, fresh = (post_event(api_url, source, factories.complaint()) for _ in range(2))
    with unit_of_work(engine) as s:
        lost_task, fresh_task = (dispatch_event(s, e, now=utcnow()) for e in (lost, fresh))
        assert lost_task is not None and fresh_task is not None
        lost_id, fresh_id = lost_task.id, fresh_task.id
    with unit_of_work(engine) as s:
        [stale] = s.exec(select(Notification).where(Notification.task_id == lost_id)).all()
        stale.created_at = utcnow() - timedelta(seconds=120)
        s.add(stale)
    [(fresh_n)] = notifications_of(engine, fresh_id)
    assert (fresh_n.webhook_status, fresh_n.webhook_attempts) == ("pending", 0)

    relay_broker = build_broker(settings, timeout=2.0)
    try:
        scheduler = build_runtime(settings, queue=Enqueuer(relay_broker))  # the scheduler's own runtime

        def relay() -> int:
            return relay_webhooks(scheduler)

        assert relay() == 1  # only the stale one; the fresh one may still be on its way
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        try:
            n = wait_notification(engine, lost_id, "dispatched", status="delivered")
            assert n.webhook_attempts == 1
            [request] = receiver.for_delivery(n.id or 0)
            task = {
                "id": lost_id,
                "ledger_no": lost_task.ledger_no,
                "kind": "complaint",
                "status": "dispatched",
            }
            assert_signed_delivery(request, n, task)
            # Once attempted it is no longer the relay's business.
            assert relay() == 0
        finally:
            worker.stop()
    finally:
        relay_broker.close()
    assert notifications_of(engine, fresh_id)[0].webhook_attempts == 0
    assert {r.headers["X-Dispatch-Delivery"] for r in receiver.received()} == {str(n.id)}
