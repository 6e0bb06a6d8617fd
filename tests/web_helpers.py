"""Helpers of the web tests (integration and browser): staff with known passwords, a routed complaint."""

from __future__ import annotations

import re

import httpx
import sqlalchemy as sa

from dispatcher.accounts.registry import add_user
from dispatcher.db import unit_of_work
from dispatcher.org.model import Org
from dispatcher.routing.dispatch import dispatch_event
from dispatcher.wallclock import utcnow
from tests import factories

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_staff(engine: sa.Engine, org: Org, login: str, unit: str, role: str) -> tuple[str, str]:
    """A user of ``unit``; returns its (API token, web password)."""
    with unit_of_work(engine) as s:
        _, token, password = add_user(s, login=login, unit=unit, role=role, org=org, now=utcnow())
    return token, password


def publish(api_url: str, source_token: str, body: dict[str, object] | None = None) -> str:
    """Publish an event (default: a complaint about 大兴镇) through the intake API; returns its id."""
    r = httpx.post(
        f"{api_url}/api/v1/events",
        json=body or factories.complaint(),
        headers={"Authorization": f"Bearer {source_token}"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    event_id: str = r.json()["event_id"]
    return event_id


def route_now(engine: sa.Engine, event_id: str) -> int:
    """Route the event in this process, as the routing worker would (no waiting for it)."""
    with unit_of_work(engine) as s:
        task = dispatch_event(s, event_id, now=utcnow())
        assert task is not None and task.id is not None
        return task.id


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def web_login(api_url: str, login: str, password: str) -> tuple[httpx.Client, str]:
    """A browser-like client signed in through the login form; returns it and the session's CSRF token."""
    client = httpx.Client(base_url=api_url, timeout=30)
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"login": login, "password": password, "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return client, csrf_of(client.get("/").text)
