"""Fixtures and helpers of the integration tests: API servers wired to broken services, HTTP helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.db import unit_of_work
from dispatcher.models import Event, LedgerCounter, Task, TaskHistory
from dispatcher.settings import Settings
from tests import factories
from tests.conftest import make_settings
from tests.support import LiveServer, free_port


def closed_redis_url() -> str:
    """A Redis URL nothing listens on: the broker is unreachable."""
    return f"redis://127.0.0.1:{free_port()}/0"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_event(api_url: str, token: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{api_url}/api/v1/events", json=body, headers=auth(token), timeout=30, **kwargs)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response has ``status`` and the contract's error body; returns ``body["error"]``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    error: dict[str, Any] = body["error"]
    return error


def db_counts(engine: sa.Engine) -> dict[str, Any]:
    """What intake and routing have written: row counts and the ledger counters."""
    with unit_of_work(engine) as s:
        return {
            "events": len(s.exec(select(Event.id)).all()),
            "tasks": len(s.exec(select(Task.id)).all()),
            "history": len(s.exec(select(TaskHistory.id)).all()),
            "counters": {(c.prefix, c.year): c.value for c in s.exec(select(LedgerCounter)).all()},
        }


def get_event_row(engine: sa.Engine, event_id: str) -> Event:
    with unit_of_work(engine) as s:
        event = s.get(Event, event_id)
        assert event is not None
        return event


@pytest.fixture
def token(engine: sa.Engine) -> str:
    """A source allowed every kind, with a generous rate limit."""
    return factories.source_token(engine)


@pytest.fixture
def offline_broker_settings(
    tmp_path: Path, database_url: str, broker_namespace: str, redis_url: str
) -> Settings:
    """The test's database, but a broker nobody listens on."""
    return make_settings(tmp_path, database_url, closed_redis_url(), broker_namespace)


class SharedServer:
    """One uvicorn for the whole run; each test plugs its own services (database, broker) into the app.

    Starting and stopping uvicorn costs ~0.3 s a test; the app reads ``app.state.services`` on
    every request, so swapping them gives each test a fresh API (its own database, broker and
    rate limiter) over the same real HTTP server.
    """

    def __init__(self) -> None:
        from dispatcher.http.app import create_app

        self.app = create_app(services=_NO_SERVICES)  # type: ignore[arg-type]
        self.server = LiveServer(self.app)

    @contextlib.contextmanager
    def serving(self, settings: Settings) -> Iterator[str]:
        from dispatcher.http.state import build_services

        services = build_services(settings)
        self.app.state.services = services
        try:
            yield self.server.url
        finally:
            self.app.state.services = _NO_SERVICES
            services.queue.close()


_NO_SERVICES = object()


@pytest.fixture(scope="session")
def shared_server() -> Iterator[SharedServer]:
    shared = SharedServer()
    with shared.server:
        yield shared


@pytest.fixture
def api_url(shared_server: SharedServer, settings: Settings) -> Iterator[str]:
    """The real API over real HTTP (uvicorn in a thread), on the test's database and broker."""
    with shared_server.serving(settings) as url:
        yield url


@pytest.fixture
def offline_broker_api_url(shared_server: SharedServer, offline_broker_settings: Settings) -> Iterator[str]:
    """The real API over HTTP whose broker is unreachable (Redis down)."""
    with shared_server.serving(offline_broker_settings) as url:
        yield url


@pytest.fixture
def offline_database_api_url(
    shared_server: SharedServer, tmp_path: Path, redis_url: str, broker_namespace: str
) -> Iterator[str]:
    """The real API over HTTP whose database (PostgreSQL on a closed port) is unreachable."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    with shared_server.serving(make_settings(tmp_path, url, redis_url, broker_namespace)) as api:
        yield api
