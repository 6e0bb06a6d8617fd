"""Hostile or broken input: refused with a 4xx, never a 500, and never blocking other events."""

from __future__ import annotations

import re

import httpx
import pytest
import sqlalchemy as sa

from dispatcher.db import unit_of_work
from dispatcher.enums import EventStatus
from dispatcher.models import Event, Task
from dispatcher.org.model import Org
from tests import factories
from tests.integration.conftest import auth, get_event_row, post_event

LEDGER_NO = re.compile(r"^(XS|TS|QY)-\d{4}-\d{6}$")


def test_deeply_nested_json_is_a_client_error_not_a_500(api_url: str, token: str) -> None:
    r = httpx.post(
        f"{api_url}/api/v1/events",
        content=b"[" * 100_000 + b"]" * 100_000,  # 195 KiB: under the size limit
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text


@pytest.mark.parametrize(
    "received_at", ["0001-01-01T00:00:00+08:00", "0001-01-01T00:00:00-08:00", "1999-12-31T23:59:59+08:00"]
)
def test_a_received_at_before_2000_is_refused(api_url: str, token: str, received_at: str) -> None:
    r = post_event(api_url, token, {**factories.complaint(), "received_at": received_at})
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["error"]["details"]] == ["received_at"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (factories.complaint("abc\u0000def"), "external_id"),
        (factories.complaint(township="桃\u0000源镇"), "payload.township"),
        (factories.clue(subject={"name": "赵\u0000", "rank": "village"}), "payload.subject.name"),
    ],
)
def test_a_nul_character_anywhere_is_refused_with_its_path(
    engine: sa.Engine, api_url: str, token: str, body: dict[str, object], path: str
) -> None:
    r = post_event(api_url, token, body)
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["error"]["details"]] == [path]
    with unit_of_work(engine) as s:
        assert s.exec(sa.select(sa.func.count()).select_from(Event)).one()[0] == 0  # type: ignore[call-overload]


def test_one_unroutable_event_goes_to_triage_without_blocking_the_others_in_its_message(
    engine: sa.Engine, loaded_org: Org, offline_broker_api_url: str, token: str, broker: object
) -> None:
    from workers.actors import route_events

    r = httpx.post(
        f"{offline_broker_api_url}/api/v1/events:batch",
        json={"events": [factories.complaint(), factories.complaint()]},
        headers=auth(token),
    )
    bad, good = (item["event_id"] for item in r.json()["results"])
    with unit_of_work(engine) as s:  # a payload the rules cannot read (as a bug or bad data would leave it)
        event = s.get(Event, bad)
        assert event is not None
        event.payload = {**event.payload, "township": {"not": "a string"}}
        s.add(event)

    route_events([bad, good])  # one message, as the API and the relay send them

    assert get_event_row(engine, good).status == EventStatus.dispatched
    assert get_event_row(engine, bad).status == EventStatus.triage
    with unit_of_work(engine) as s:
        task = s.exec(sa.select(Task).where(Task.event_id == bad)).scalar_one()  # type: ignore[call-overload]
        assert task.rule == "routing_error"
        assert "需人工分办" in task.reason and "not" not in task.reason
