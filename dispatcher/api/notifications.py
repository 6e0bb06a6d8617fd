"""Notification routes (DESIGN §9): my unit's inbox, and the webhook deliveries given up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from dispatcher.enums import Role
from dispatcher.http.auth import UserDep, require_roles
from dispatcher.http.openapi import STAFF
from dispatcher.http.state import ServicesDep
from dispatcher.models import User
from dispatcher.notify import service

router = APIRouter(tags=["notifications"], responses=STAFF)


@router.get("/notifications", summary="My unit's notifications, newest first")
async def notifications(
    user: UserDep, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    return {"notifications": await run_in_threadpool(service.notifications_for, services, user, limit=limit)}


@router.get("/notifications/failed", summary="Webhook deliveries given up after the last try (on-call)")
async def failed_notifications(
    user: Annotated[User, Depends(require_roles(Role.oncall, Role.admin))], services: ServicesDep
) -> dict[str, Any]:
    return {"notifications": await run_in_threadpool(service.failed, services)}
