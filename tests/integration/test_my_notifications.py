"""Notifications for the person who handled a task (issue 11): verified, rejected, reopened, closed;
unread counts; marking read — a unit's own notifications stay for everyone in it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher.org.model import Org
from tests.integration.tasking import Desk, open_desk

HANDLER, COLLEAGUE, VERIFIER = "deng.xiaoming", "wei.chunyan", "fang.liqun"


@pytest.fixture
def desk(api_url: str, engine: sa.Engine, loaded_org: Org) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


def inbox(desk: Desk, login: str) -> dict[str, Any]:
    r = desk.http.get(f"{desk.api}/api/v1/notifications", headers=desk.who(login))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def kinds(desk: Desk, login: str) -> list[str]:
    return [n["kind"] for n in inbox(desk, login)["notifications"]]


def test_the_handler_is_told_of_each_verdict_and_only_they_are(desk: Desk) -> None:
    task = desk.task()
    desk.ok(task, "accept", HANDLER)
    desk.ok(task, "submit", HANDLER, outcome={"resolved": True, "reply": "已办"})
    desk.ok(task, "reject", VERIFIER, reason="缺少现场照片")
    desk.ok(task, "submit", HANDLER, outcome={"resolved": True, "reply": "已补充"})
    desk.ok(task, "verify", VERIFIER)
    event = desk.event_of(task)
    desk.http.post(
        f"{desk.api}/api/v1/events/{event}/feedback",
        json={"rating": "unsatisfied", "resolved": False},
        headers=desk.source,
    )
    desk.ok(task, "submit", HANDLER, outcome={"resolved": True, "reply": "再次办理"})
    desk.ok(task, "verify", VERIFIER)
    desk.http.post(
        f"{desk.api}/api/v1/events/{event}/feedback",
        json={"rating": "satisfied", "resolved": True},
        headers=desk.source,
    )

    mine = kinds(desk, HANDLER)
    assert [k for k in reversed(mine) if k in ("rejected", "verified", "reopened", "closed")] == [
        "rejected",
        "verified",
        "reopened",
        "verified",
        "closed",
    ]
    theirs = kinds(desk, COLLEAGUE)
    assert "dispatched" in theirs and not {"rejected", "verified", "reopened", "closed"} & set(theirs)


def test_unread_counts_and_marking_read_are_per_person(desk: Desk) -> None:
    desk.task()
    desk.task()
    assert inbox(desk, HANDLER)["unread"] == 2 and inbox(desk, COLLEAGUE)["unread"] == 2
    first = inbox(desk, HANDLER)["notifications"][0]["id"]
    r = desk.http.post(
        f"{desk.api}/api/v1/notifications/read", json={"ids": [first]}, headers=desk.who(HANDLER)
    )
    assert r.json() == {"marked": 1, "unread": 1}
    assert inbox(desk, COLLEAGUE)["unread"] == 2  # the colleague's are still unread
    everything = desk.http.post(f"{desk.api}/api/v1/notifications/read", headers=desk.who(HANDLER))
    assert everything.json() == {"marked": 1, "unread": 0}
    again = desk.http.post(
        f"{desk.api}/api/v1/notifications/read", json={"ids": [first]}, headers=desk.who(HANDLER)
    )
    assert again.json() == {"marked": 0, "unread": 0}
    other_unit = desk.http.post(
        f"{desk.api}/api/v1/notifications/read", json={"ids": [first]}, headers=desk.who("xu.dongsheng")
    )
    assert other_unit.json()["marked"] == 0  # not theirs to mark
    read_at = [n["read_at"] for n in inbox(desk, HANDLER)["notifications"]]
    assert all(read_at)
