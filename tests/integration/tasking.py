"""Helpers of the task API tests: staff of the example org, tasks made fast, moves over real HTTP.

Tasks are made the quick way: the event goes through the real intake API (a source token over
HTTP), then ``routing.dispatch.dispatch_event`` routes it in a unit of work in this process —
what the routing worker would do, without waiting for it. Everything a test then does to the
task goes through the staff API over HTTP.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sqlmodel import col, select

from dispatcher.db import unit_of_work
from dispatcher.models import Notification, Task, TaskHistory, User
from dispatcher.routing.dispatch import dispatch_event
from dispatcher.security import hash_token, new_token
from dispatcher.supervision.calendar import WorkCalendar
from dispatcher.wallclock import utcnow
from tests import factories
from tests.conftest import TEST_SECRET

Headers = dict[str, str]

#: login → (unit, role): staff of examples/org.yaml (so the org's recusals apply to them), plus a
#: second verifier of the first room, which the org does not have.
CAST: dict[str, tuple[str, str]] = {
    # 大兴镇纪委 (DXZ-JW): handles complaints about 大兴镇
    "deng.xiaoming": ("DXZ-JW", "handler"),
    "wei.chunyan": ("DXZ-JW", "handler"),
    "luo.guohua": ("DXZ-JW", "verifier"),
    # 第一纪检监察室 (SHI1): verifies 大兴镇's complaints and the zone's cross-handled clues
    "fang.liqun": ("SHI1", "verifier"),
    "t.shi1.verifier": ("SHI1", "verifier"),
    "he.jiaming": ("SHI1", "handler"),
    "han.zhiyuan": ("SHI1", "zone_leader"),  # 第一协作区组长
    # other units of zone 1
    "xu.dongsheng": ("CGJD-JW", "handler"),  # 城关街道: cross-handles 大兴镇's clues
    "ren.jing": ("CGJD-JW", "handler"),  # recuses the reporter 任建国 (回避)
    "kang.wei": ("FDX-JW", "handler"),  # recuses 大兴镇 (DXZ)
    "t.ajgl.handler": ("AJGL", "handler"),  # 案件监督管理室: records clues referred upward
    "tao.li": ("FDX-JW", "handler"),
    "liang.zhenyu": ("HSZ-JW", "handler"),
    "dong.kai": ("PZ1", "handler"),
    # zone 2
    "qiao.mingde": ("SHI2", "zone_leader"),  # 第二协作区组长
    "lei.zhigang": ("SQZ-JW", "handler"),
    "qin.dawei": ("LHX-JW", "handler"),
    "ou.li": ("LHX-JW", "handler"),  # recuses 白沙镇 (回避)
    # enterprise requests (劳动用工 → RSJ, 纪委验单 by DFZF), the commission
    "chai.xiaofeng": ("RSJ", "handler"),
    "jiang.rui": ("DFZF", "verifier"),
    "yuan.zhihao": ("SCJG", "handler"),
    "gu.xiaomei": ("XFS", "oncall"),
    "tang.wenbo": ("BGS", "admin"),
}

_ids = itertools.count(1)


def make_user(engine: sa.Engine, login: str, unit: str, role: str) -> Headers:
    """A staff user with an API token, as ``dispatcher user add`` stores it (token hashed).

    Inserted directly: the argon2 hash of a web password costs ~0.1 s a user and no test here
    logs in with a password.
    """
    token = new_token("usr")
    with unit_of_work(engine) as s:
        s.add(
            User(
                login=login, unit_code=unit, role=role, token_hash=hash_token(token),
                password_hash="!no-password", created_at=utcnow(),
            )
        )  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Desk:
    """One test's view of the system: the API, its database, a source and the staff."""

    api: str
    engine: sa.Engine
    source: Headers
    http: httpx.Client
    _staff: dict[str, Headers] = field(default_factory=dict)

    # --- people --------------------------------------------------------------------------
    def who(self, login: str) -> Headers:
        """The bearer headers of ``login`` (a member of ``CAST``), created on first use."""
        if login not in self._staff:
            unit, role = CAST[login]
            self._staff[login] = make_user(self.engine, login, unit, role)
        return self._staff[login]

    def new_source(self) -> Headers:
        return {"Authorization": f"Bearer {factories.source_token(self.engine)}"}

    # --- tasks ---------------------------------------------------------------------------
    def publish(self, body: dict[str, Any]) -> str:
        r = self.http.post(f"{self.api}/api/v1/events", json=body, headers=self.source)
        assert r.status_code == 202, r.text
        event_id: str = r.json()["event_id"]
        return event_id

    def route(self, event_id: str) -> int:
        with unit_of_work(self.engine) as s:
            task = dispatch_event(s, event_id, now=utcnow(), secret_key=TEST_SECRET)
            assert task is not None and task.id is not None
            return task.id

    def task(self, body: dict[str, Any] | None = None) -> int:
        """A routed task of ``body`` (default: a complaint about 大兴镇 → DXZ-JW, verified by SHI1)."""
        return self.route(self.publish(body or factories.complaint()))

    def tasks(self, bodies: list[dict[str, Any]]) -> list[int]:
        """Many routed tasks, published in one batch."""
        r = self.http.post(f"{self.api}/api/v1/events:batch", json={"events": bodies}, headers=self.source)
        assert r.status_code == 200 and r.json()["accepted"] == len(bodies), r.text
        return [self.route(item["event_id"]) for item in r.json()["results"]]

    def event_of(self, task_id: int) -> str:
        event_id = self.row(task_id).event_id
        assert event_id is not None
        return event_id

    # --- HTTP ----------------------------------------------------------------------------
    def get(self, task_id: int, login: str) -> httpx.Response:
        return self.http.get(f"{self.api}/api/v1/tasks/{task_id}", headers=self.who(login))

    def move(self, task_id: int, move: str, login: str, **body: Any) -> httpx.Response:
        return self.http.post(
            f"{self.api}/api/v1/tasks/{task_id}/{move}", json=body or None, headers=self.who(login)
        )

    def ok(self, task_id: int, move: str, login: str, **body: Any) -> dict[str, Any]:
        """Make a move that must succeed; returns the task as the API shows it after the move."""
        r = self.move(task_id, move, login, **body)
        assert r.status_code == 200, r.text
        detail: dict[str, Any] = r.json()
        return detail

    def route_triage(self, task_id: int, login: str, **body: Any) -> httpx.Response:
        return self.http.post(
            f"{self.api}/api/v1/triage/{task_id}/route", json=body or None, headers=self.who(login)
        )

    def feedback(self, event_id: str, rating: str, source: Headers | None = None) -> httpx.Response:
        return self.http.post(
            f"{self.api}/api/v1/events/{event_id}/feedback",
            json={"rating": rating, "comment": "经回访"},
            headers=source or self.source,
        )

    def notifications(self, login: str) -> list[dict[str, Any]]:
        r = self.http.get(f"{self.api}/api/v1/notifications", headers=self.who(login))
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["notifications"]
        return items

    # --- the database --------------------------------------------------------------------
    def row(self, task_id: int) -> Task:
        with unit_of_work(self.engine) as s:
            task = s.get(Task, task_id)
            assert task is not None
            return task

    def set(self, task_id: int, **columns: Any) -> None:
        """Change a task's columns behind the API's back (to put it in a state a test needs)."""
        with unit_of_work(self.engine) as s:
            task = s.get(Task, task_id)
            assert task is not None
            for name, value in columns.items():
                setattr(task, name, value)
            s.add(task)

    def history(self, task_id: int) -> list[TaskHistory]:
        with unit_of_work(self.engine) as s:
            return list(
                s.exec(
                    select(TaskHistory).where(TaskHistory.task_id == task_id).order_by(col(TaskHistory.id))
                ).all()
            )

    def notification_rows(self, task_id: int) -> list[Notification]:
        with unit_of_work(self.engine) as s:
            return list(s.exec(select(Notification).where(Notification.task_id == task_id)).all())


@contextlib.contextmanager
def open_desk(api_url: str, engine: sa.Engine) -> Iterator[Desk]:
    with httpx.Client(timeout=30) as http:
        yield Desk(
            api=api_url,
            engine=engine,
            source={"Authorization": f"Bearer {factories.source_token(engine)}"},
            http=http,
        )


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """``response`` is the contract's error with ``status``; returns ``body["error"]``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    error: dict[str, Any] = body["error"]
    return error


def dispatched_days_ago(tz: ZoneInfo, workdays: int) -> datetime:
    """A dispatch time exactly ``workdays`` working days before today (latest such day, noon local)."""
    today = datetime.now(tz).date()
    day: date = today
    while (
        WorkCalendar().workdays_after(day, today) < workdays
    ):  # grows by 0 or 1 a step: stops at exactly `workdays`
        day -= timedelta(days=1)
    return datetime.combine(day, time(12), tzinfo=tz)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"
