"""Notification routes (DESIGN §9): my unit's inbox, and the webhook deliveries given up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from dispatcher.enums import Role
from dispatcher.http.auth import UserDep, require_roles
from dispatcher.http.openapi import STAFF
from dispatcher.http.state import ServicesDep
from dispatcher.models import MAX_JSON_INT, User
from dispatcher.notify import service

router = APIRouter(tags=["notifications"], responses=STAFF)


@router.get(
    "/notifications", summary="My notifications (my unit's and mine alone), newest first, with unread"
)
async def notifications(
    user: UserDep, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        return {
            "notifications": service.notifications_for(services, user, limit=limit),
            "unread": service.unread(services, user),
        }

    return await run_in_threadpool(read)


class ReadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The notifications to mark read; none given: every one of mine.
    ids: list[Annotated[int, Field(ge=1, le=MAX_JSON_INT)]] | None = Field(default=None, max_length=500)


@router.post("/notifications/read", summary="Mark my notifications read (ids, or all of them)")
async def mark_read(
    user: UserDep, services: ServicesDep, body: Annotated[ReadBody | None, Body()] = None
) -> dict[str, Any]:
    ids = (body or ReadBody()).ids
    marked = await run_in_threadpool(service.read, services, user, ids)
    return {"marked": marked, "unread": await run_in_threadpool(service.unread, services, user)}


@router.get("/notifications/failed", summary="Webhook deliveries given up after the last try (on-call)")
async def failed_notifications(
    user: Annotated[User, Depends(require_roles(Role.oncall, Role.admin))], services: ServicesDep
) -> dict[str, Any]:
    return {"notifications": await run_in_threadpool(service.failed, services)}
