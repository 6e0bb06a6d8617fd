"""Alerts with real processes (issue 9): every worker stopped → "no live worker" is posted once; the
workers back → "cleared" once — while a scheduler and an API server both check every second."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dispatcher.notify.webhooks import sign
from dispatcher.org.model import Org
from tests import factories
from tests.e2e.conftest import e2e_env
from tests.integration.test_webhooks import Receiver
from tests.support import wait_for

SECRET = "oncall-secret-e2e-0123"
pytestmark = pytest.mark.e2e


def _changes(receiver: Receiver, rule: str) -> list[str]:
    return [json.loads(r.body)["change"] for r in receiver.received() if json.loads(r.body)["rule"] == rule]


def _env(tmp_path: Path, receiver: Receiver, rules: str, database_url: str, redis_url: str,
         namespace: str) -> dict[str, str]:  # fmt: skip
    """The processes' environment: a policy checking alerts every second with ``rules``, posting
    signed to ``receiver``."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"alerts:\n  check_seconds: 1\n{rules}"
        f"  webhook: {{url: '{receiver.url}/oncall', secret_env: ONCALL_SECRET}}\n",
        encoding="utf-8",
    )
    return e2e_env(
        tmp_path / "data", DISPATCH_DATABASE_URL=database_url, DISPATCH_REDIS_URL=redis_url,
        DISPATCH_BROKER_NAMESPACE=namespace, DISPATCH_POLICY_FILE=str(policy), ONCALL_SECRET=SECRET,
    )  # fmt: skip


def test_stopping_every_worker_alerts_once_and_their_return_clears_it_once(
    tmp_path: Path, database_url: str, engine: sa.Engine, loaded_org: Org, redis_url: str,
    broker_namespace: str, make_stack,
) -> None:  # fmt: skip
    with Receiver() as receiver:
        rules = "  no_worker_seconds: 3\n"
        stack = make_stack(_env(tmp_path, receiver, rules, database_url, redis_url, broker_namespace))
        worker = stack.worker("-p", "1", "-t", "2", name="worker-1")  # first: no alert about workers
        stack.api()  # checks alerts too
        stack.start("scheduler", "scheduler")
        time.sleep(3)  # the first checks, with a worker alive: no alert about workers
        assert _changes(receiver, "no_worker") == []

        os.killpg(worker.pid, signal.SIGTERM)  # every worker process stops
        worker.wait(timeout=30)
        wait_for(lambda: _changes(receiver, "no_worker"), timeout=30, what="the no-worker alert")
        stack.worker("-p", "1", "-t", "2", name="worker-2")
        try:
            wait_for(lambda: len(_changes(receiver, "no_worker")) >= 2, timeout=30, what="the alert cleared")
        except AssertionError as exc:
            logs = {name: stack.log(name)[-3000:] for name in ("api", "scheduler", "worker-2")}
            raise AssertionError(f"{exc}; received {_changes(receiver, 'no_worker')}; logs {logs}") from None
        time.sleep(3)  # several more checks by both processes: nothing new
        assert _changes(receiver, "no_worker") == ["fired", "cleared"]
        posts = [r for r in receiver.received() if json.loads(r.body)["rule"] == "no_worker"]
    for post in posts:
        assert post.headers["X-Dispatch-Signature"] == sign(SECRET, post.body)
    assert "没有存活的工作进程" in json.loads(posts[0].body)["message"]
    assert "已恢复" in json.loads(posts[1].body)["message"]


def test_a_stalled_outbox_raises_its_age_and_alerts_until_the_events_are_routed(
    tmp_path: Path, database_url: str, engine: sa.Engine, loaded_org: Org, redis_url: str,
    broker_namespace: str, make_stack,
) -> None:  # fmt: skip
    """No worker and no scheduler (the relay stalled): accepted events age in the outbox; the API's
    own check alerts once; a worker and the scheduler back route them and the alert clears once."""
    with Receiver() as receiver:
        rules = "  outbox_age_seconds: 3\n  no_worker_seconds: 0\n"
        stack = make_stack(_env(tmp_path, receiver, rules, database_url, redis_url, broker_namespace))
        stack.api()
        token = factories.source_token(engine)
        with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            for i in range(5):
                assert c.post("/api/v1/events", json=factories.complaint(f"stall-{i}")).status_code == 202
        wait_for(lambda: _changes(receiver, "outbox_age"), timeout=30, what="the outbox-age alert")
        bodies = [json.loads(r.body) for r in receiver.received()]
        message = next(b["message"] for b in bodies if b["rule"] == "outbox_age")
        assert message.startswith("5 件已接收事件尚未路由"), message
        stack.worker("-p", "1", "-t", "2")
        stack.start("scheduler", "scheduler")
        wait_for(lambda: len(_changes(receiver, "outbox_age")) >= 2, timeout=60, what="the alert cleared")
        time.sleep(2)
        assert _changes(receiver, "outbox_age") == ["fired", "cleared"]
