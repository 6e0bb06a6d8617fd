"""On-call routes (DESIGN §9): the queue state, dead letters, alerts, failed webhooks, the action log.

Only on-call staff and admins (``oncall``, ``admin``); every action is recorded with who and when.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool

from dispatcher.enums import Role
from dispatcher.http.auth import require_roles
from dispatcher.http.openapi import STAFF
from dispatcher.http.params import Id
from dispatcher.http.state import ServicesDep
from dispatcher.models import User
from dispatcher.oncall import service

router = APIRouter(tags=["on-call"], responses=STAFF)

OncallUser = Annotated[User, Depends(require_roles(Role.oncall, Role.admin))]
#: A dead letter's id: the dramatiq message id (a UUID).
MessageId = Annotated[
    str,
    Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", description="message id"),
]


@router.get("/queue", summary="Queue depths, workers, rates, latency, backlogs, lateness, scheduler, alerts")
async def queue(user: OncallUser, services: ServicesDep) -> dict[str, Any]:
    return await run_in_threadpool(service.queue_state, services)


@router.get("/dead-letters", summary="Messages that failed their last retry, newest first")
async def dead_letters(
    user: OncallUser, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> dict[str, Any]:
    return {"dead_letters": await run_in_threadpool(lambda: service.dead_letters(services, limit=limit))}


@router.post("/dead-letters/{message_id}/retry", summary="Put one dead letter back on its queue")
async def retry_dead_letter(message_id: MessageId, user: OncallUser, services: ServicesDep) -> dict[str, Any]:
    return await run_in_threadpool(service.retry_dead_letter, services, user.login, message_id)


@router.post("/dead-letters:retry-all", summary="Put every dead letter back on its queue")
async def retry_all(user: OncallUser, services: ServicesDep) -> dict[str, Any]:
    return await run_in_threadpool(service.retry_all_dead_letters, services, user.login)


@router.delete("/dead-letters/{message_id}", summary="Delete one dead letter for good")
async def purge_dead_letter(message_id: MessageId, user: OncallUser, services: ServicesDep) -> dict[str, Any]:
    return await run_in_threadpool(service.purge_dead_letter, services, user.login, message_id)


@router.get("/alerts", summary="Alert rules (firing or not) and the latest starts and ends")
async def alerts(user: OncallUser, services: ServicesDep) -> dict[str, Any]:
    return await run_in_threadpool(service.alert_list, services)


@router.post("/notifications/{notification_id}/retry", summary="Send a given-up webhook delivery again")
async def retry_webhook(notification_id: Id, user: OncallUser, services: ServicesDep) -> dict[str, Any]:
    return await run_in_threadpool(service.retry_webhook, services, user.login, notification_id)


@router.get("/oncall/actions", summary="What on-call staff did, newest first (who, when, what)")
async def actions(user: OncallUser, services: ServicesDep) -> dict[str, Any]:
    return {"actions": await run_in_threadpool(service.recent_actions, services)}
