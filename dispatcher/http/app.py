"""The FastAPI application: the JSON API and the staff pages side by side, wired at start, not at import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles
from pydantic import TypeAdapter

from dispatcher import __version__
from dispatcher.api import events, health, notifications, oncall, reports, tasks
from dispatcher.http import errors
from dispatcher.http.guards import BodyLimit, ErrorShield
from dispatcher.http.openapi import serve_docs
from dispatcher.http.sessions import LazySessionMiddleware
from dispatcher.http.state import Services, build_services
from dispatcher.oncall.service import check_alerts
from dispatcher.settings import Settings, load_settings
from dispatcher.supervision.policy import announce_calendar
from dispatcher.web import admin as admin_pages
from dispatcher.web import login, pages
from dispatcher.web import monthly as monthly_pages
from dispatcher.web import oncall as oncall_pages
from dispatcher.web.render import STATIC_DIR
from events.schemas import EventEnvelope

API_PREFIX = "/api/v1"
log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, *, services: Services | None = None, watch_alerts: bool = False
) -> FastAPI:
    """The app; ``watch_alerts`` (``dispatcher api``): this server also runs the on-call alert check,
    so that "no scheduler leads" is noticed when every scheduler is gone."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "services", None) is None:
            app.state.services = build_services(settings or load_settings())
        services = app.state.services
        watcher = None
        if isinstance(services, Services):  # tests may serve a placeholder until they plug theirs in
            announce_calendar(services.policy, services.now())
            if watch_alerts:
                watcher = asyncio.create_task(_watch_alerts(services))
        yield
        if watcher is not None:
            watcher.cancel()

    app = FastAPI(
        title="Zone Dispatch",
        version=__version__,
        description="纪检监察协作区任务分办系统 — intake, routing, supervision.",
        lifespan=lifespan,
        docs_url=None,  # served by http.openapi.serve_docs, from this server
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app)
    serve_docs(app)
    app.include_router(health.router)
    app.include_router(events.router, prefix=API_PREFIX)
    app.include_router(tasks.router, prefix=API_PREFIX)
    app.include_router(notifications.router, prefix=API_PREFIX)
    app.include_router(reports.router, prefix=API_PREFIX)
    app.include_router(oncall.router, prefix=API_PREFIX)
    # The staff inbox (server-rendered pages); its session cookie also authenticates staff API calls.
    app.add_middleware(LazySessionMiddleware)
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(monthly_pages.router)
    app.include_router(admin_pages.router)
    app.include_router(oncall_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    pages.install(app)
    # outermost of ours: a body over the limit is 413 before authentication (DESIGN §4's order)
    app.add_middleware(ErrorShield)
    app.add_middleware(BodyLimit, limit=lambda path: _body_limit(app, path))
    _document_event_schemas(app)
    return app


async def _watch_alerts(services: Services) -> None:
    """The alert check every ``alerts.check_seconds``, beside the schedulers' (they agree through the
    database); a failed pass is one log line."""
    while True:
        await asyncio.sleep(services.policy.alerts.check_seconds)
        try:
            await run_in_threadpool(check_alerts, services)
        except Exception as exc:
            log.warning("alert check failed, will retry: %s", exc)


def _body_limit(app: FastAPI, path: str) -> int:
    services = getattr(app.state, "services", None)
    settings = getattr(services, "settings", None)
    limit: int = getattr(settings, "max_body_bytes", 256 * 1024)
    if path.endswith("/attachments"):
        limit = getattr(settings, "max_attachment_bytes", limit) + 64 * 1024  # the form around the file
    return limit


def _document_event_schemas(app: FastAPI) -> None:
    """Intake routes parse bodies themselves (for 400/413/422 in the contract's order); document them."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        defs = TypeAdapter(EventEnvelope).json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs.pop("$defs", {}))
        components["EventEnvelope"] = defs
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
