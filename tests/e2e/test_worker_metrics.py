"""dramatiq's Prometheus middleware runs in ``dispatcher worker`` and counts routing messages."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dispatcher.org.model import Org
from tests import factories
from tests.e2e.conftest import e2e_env
from tests.support import free_port, wait_for

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_worker_exports_dramatiq_metrics_for_routing_messages(
    tmp_path: Path, database_url: str, engine: sa.Engine, loaded_org: Org, redis_url: str, make_stack: Any
) -> None:
    port = free_port()
    env = e2e_env(
        tmp_path / "data",
        DISPATCH_DATABASE_URL=database_url,
        DISPATCH_REDIS_URL=redis_url,
        DISPATCH_BROKER_NAMESPACE=f"zdprom-{uuid.uuid4().hex[:10]}",
        DISPATCH_WORKER_METRICS_PORT=str(port),
    )
    stack = make_stack(env)
    stack.api()
    stack.worker("-p", "1", "-t", "1")
    token = factories.source_token(engine)
    r = httpx.post(
        f"{stack.url}/api/v1/events", json=factories.complaint(), headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 202, r.text

    def counted() -> str | None:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text
        except httpx.HTTPError:
            return None
        return (
            text
            if 'dramatiq_messages_total{actor_name="route_events",queue_name="routing"} 1.0' in text
            else None
        )

    text = wait_for(counted, timeout=30, what="the routing message in the worker's metrics")
    assert "dramatiq_message_duration_milliseconds" in text
