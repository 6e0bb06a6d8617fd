"""No route answers without authentication, except health, docs and login (issue 3, DESIGN §8).

The routes are enumerated from the application ``create_app`` builds, so a route added later
is covered without touching this file; the allow-list below is explicit and small on purpose.
API routes answer ``401`` with the error body; a web page without a session redirects to the
login form (or answers ``401``), and never shows anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import fastapi.routing
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from starlette.routing import Mount

from dispatcher.http.app import create_app
from dispatcher.org.model import Org
from tests import factories
from tests.integration.conftest import SharedServer
from tests.integration.tasking import make_user

#: Health and docs: answer anybody.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/openapi.json"})
#: The login form (and the stylesheet and script it needs to render) and the docs' own files
#: (Swagger UI, served locally) answer anybody.
PUBLIC_PREFIXES = ("/login", "/web/login", "/static/", "/docs-assets")
LOGIN_PAGES = ("/login", "/web/login")
#: Routes only an upstream system (source token) may call.
SOURCE_PREFIX = "/api/v1/events"


@dataclass(frozen=True)
class Call:
    method: str
    template: str  #: the route's path with its parameters (``/api/v1/tasks/{task_id}``)
    path: str  #: with dummy values filled in
    web_page: bool  #: a server-rendered page (refuses by redirecting to the login form)

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def _fill(template: str) -> str:
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: "x" if m.group(2) == ":path" else "1", template)


def flat_routes(app: FastAPI) -> list[Any]:
    """The app's routes with included routers flattened (FastAPI ≥ 0.16x includes routers lazily)."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(iterate(app.routes)) if iterate is not None else list(app.routes)


def calls_of(app: FastAPI) -> list[Call]:
    """One request per (route, method) of ``app``; a mounted app (static files) gets one GET inside it."""
    calls: list[Call] = []
    for route in flat_routes(app):
        original = getattr(route, "original_route", route)
        if isinstance(original, Mount):
            template = original.path + "/{path}"
            calls.append(Call("GET", template, original.path + "/app.css", web_page=True))
            continue
        assert route.path, route
        module = getattr(route.endpoint, "__module__", "") or ""
        for method in sorted(set(route.methods or {"GET"}) - {"HEAD", "OPTIONS"}):
            web_page = module.startswith("dispatcher.web")
            calls.append(Call(method, route.path, _fill(route.path), web_page=web_page))
    return calls


def is_public(call: Call) -> bool:
    return call.template in PUBLIC_PATHS or call.template.startswith(PUBLIC_PREFIXES)


def assert_refused(call: Call, response: httpx.Response) -> None:
    """``response`` shows nothing: 401 with the error body; a web page may instead redirect to the
    login form, and a web form post may be refused for its missing CSRF token (403)."""
    if call.web_page and response.status_code in (302, 303, 307):
        assert urlparse(response.headers["location"]).path in LOGIN_PAGES, (str(call), response.headers)
        return
    if call.web_page and call.method != "GET" and response.status_code == 403:
        # a form post without a session is refused for its missing CSRF token
        assert "csrf" in response.text.lower(), (str(call), response.text[:500])
        return
    assert response.status_code == 401, f"{call} answered {response.status_code}: {response.text[:300]}"
    if not call.web_page or response.headers.get("content-type", "").startswith("application/json"):
        assert response.json()["error"]["code"] == "unauthorized", (str(call), response.text)


def send(http: httpx.Client, base: str, call: Call, headers: dict[str, str] | None = None) -> httpx.Response:
    body: dict[str, Any] | None = {} if call.method in ("POST", "PUT", "PATCH") else None
    return http.request(call.method, base + call.path, json=body, headers=headers or {})


@pytest.fixture
def served(shared_server: SharedServer, api_url: str) -> Iterator[tuple[FastAPI, str]]:
    """The application answering ``api_url`` (built by ``create_app``) and its URL."""
    yield shared_server.app, api_url


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        yield client


def test_the_enumerated_routes_are_those_create_app_builds_and_cover_the_staff_api(
    served: tuple[FastAPI, str],
) -> None:
    app, _ = served
    assert {str(c) for c in calls_of(app)} == {str(c) for c in calls_of(create_app())}
    templates = {str(c) for c in calls_of(app)}
    for expected in (
        "POST /api/v1/events",
        "GET /api/v1/tasks",
        "GET /api/v1/tasks/{task_id}",
        "POST /api/v1/tasks/{task_id}/accept",
        "POST /api/v1/tasks/{task_id}/assist",
        "POST /api/v1/tasks/{task_id}/identity",
        "POST /api/v1/triage/{task_id}/route",
        "GET /api/v1/notifications/failed",
        "POST /api/v1/events/{event_id}/feedback",
        "GET /metrics",
    ):
        assert expected in templates
    for path in PUBLIC_PATHS:  # the allow-list names routes that exist
        assert any(c.template == path for c in calls_of(app)), path


def test_every_route_except_health_docs_and_login_refuses_a_request_without_credentials(
    engine: sa.Engine, served: tuple[FastAPI, str], http: httpx.Client
) -> None:
    app, base = served
    calls = [c for c in calls_of(app) if not is_public(c)]
    assert len(calls) >= 25

    for call in calls:
        assert_refused(call, send(http, base, call))
        assert_refused(call, send(http, base, call, {"Authorization": "Bearer usr_not-a-real-token"}))
        assert_refused(call, send(http, base, call, {"Authorization": "Basic dXNlcjpwYXNz"}))


def test_the_public_routes_answer_without_credentials(
    served: tuple[FastAPI, str], http: httpx.Client
) -> None:
    _, base = served
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json", "/docs-assets/swagger-ui-bundle.js"):
        assert http.get(base + path).status_code == 200, path


def test_a_staff_token_cannot_call_source_routes_and_a_source_token_cannot_call_staff_routes(
    engine: sa.Engine, loaded_org: Org, served: tuple[FastAPI, str], http: httpx.Client
) -> None:
    app, base = served
    source = {"Authorization": f"Bearer {factories.source_token(engine)}"}
    admin = make_user(engine, "tang.wenbo", "BGS", "admin")  # the most entitled staff role
    calls = [c for c in calls_of(app) if not is_public(c)]
    source_calls = [c for c in calls if c.template.startswith(SOURCE_PREFIX)]
    staff_calls = [c for c in calls if not c.template.startswith(SOURCE_PREFIX)]
    assert len(source_calls) >= 4 and len(staff_calls) >= 15

    for call in source_calls:
        assert_refused(call, send(http, base, call, admin))
    for call in staff_calls:
        assert_refused(call, send(http, base, call, source))
    # and each token works where it belongs
    assert http.get(f"{base}/api/v1/tasks", headers=admin).status_code == 200
    assert http.get(f"{base}/api/v1/events/nope", headers=source).status_code == 404
