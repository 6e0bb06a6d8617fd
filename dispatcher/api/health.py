"""Health, readiness and metrics (DESIGN §9)."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dispatcher.enums import Role
from dispatcher.http.auth import require_roles
from dispatcher.http.openapi import json_errors
from dispatcher.http.state import Services, ServicesDep
from dispatcher.models import User
from dispatcher.oncall.metrics import exposition
from dispatcher.oncall.service import queue_state

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _readiness(services: Services) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    try:
        with services.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        services.queue.ping()
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"unreachable: {type(exc).__name__}"
    return checks


@router.get("/readyz", summary="Database and broker reachable")
async def readyz(services: ServicesDep) -> JSONResponse:
    checks = await run_in_threadpool(_readiness, services)
    ready = all(v == "ok" for v in checks.values())
    # A calendar gap does not make the system unready, but it must never go unnoticed.
    warning = services.calendar_warning()
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": checks,
        "warnings": [warning] if warning else [],
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (oncall or admin token)",
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format",
        },
        **json_errors(401, 403),
    },
)
async def metrics(
    _: Annotated[User, Depends(require_roles(Role.oncall, Role.admin))], services: ServicesDep
) -> Response:
    """This process's counters, then every figure of the on-call console (``oncall.metrics``)."""
    state = await run_in_threadpool(queue_state, services)
    return Response(generate_latest() + exposition(state), media_type=CONTENT_TYPE_LATEST)
