"""The login throttle counts the real peer, not what a client writes in ``X-Forwarded-For``
(issue 11): a real ``dispatcher api`` process, with and without a trusted proxy configured."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dispatcher.org.model import Org
from tests.e2e.conftest import e2e_env
from tests.web_helpers import csrf_of

pytestmark = pytest.mark.e2e


def failed_logins_from_many_claimed_addresses(url: str, count: int) -> list[int]:
    statuses = []
    with httpx.Client(base_url=url, timeout=30) as client:
        token = csrf_of(client.get("/login").text)
        for i in range(count):
            r = client.post(
                "/login",
                data={"login": f"nobody{i}", "password": "guess", "csrf_token": token},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            )
            statuses.append(r.status_code)
    return statuses


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(
    tmp_path: Path, database_url: str, engine: sa.Engine, loaded_org: Org, redis_url: str,
    broker_namespace: str, make_stack,
) -> None:  # fmt: skip
    common = {"DISPATCH_DATABASE_URL": database_url, "DISPATCH_REDIS_URL": redis_url,
              "DISPATCH_BROKER_NAMESPACE": broker_namespace}  # fmt: skip
    direct = make_stack(e2e_env(tmp_path / "direct", **common))
    direct.api()
    statuses = failed_logins_from_many_claimed_addresses(direct.url, 21)
    assert statuses[:20] == [401] * 20 and statuses[20] == 429  # all from 127.0.0.1, whatever they claim

    behind = make_stack(e2e_env(tmp_path / "proxied", DISPATCH_TRUSTED_PROXIES="127.0.0.1", **common))
    behind.api()
    assert failed_logins_from_many_claimed_addresses(behind.url, 21) == [401] * 21  # the proxy's word counts
