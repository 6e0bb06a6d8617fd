"""The on-call console (值班台): ``/queue`` (live figures, alerts, triage with one-click routing),
``/dead-letters`` (retry one or all, purge with a confirmation, failed webhooks, the action log) and
``/alerts``. Same use cases as ``/api/v1/queue`` and its siblings (``oncall.service``); on-call
staff and admins only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from dispatcher.enums import Role
from dispatcher.errors import DispatchError, Forbidden
from dispatcher.http.params import Id
from dispatcher.http.state import Services, ServicesDep
from dispatcher.models import User
from dispatcher.oncall import service
from dispatcher.tasks import service as tasks
from dispatcher.tasks.access import roles_of
from dispatcher.web.pages import CheckedForm, PageUser, page
from dispatcher.web.render import flash, render

router = APIRouter(include_in_schema=False)

ONCALL_ROLES = frozenset({Role.oncall, Role.admin})
#: Actors as on-call staff know them.
ACTORS = {"route_events": "事件路由", "deliver_webhook": "通知推送", "supervise_task": "督办检查",
          "run_monthly": "月度任务"}  # fmt: skip
QUEUES = {"routing": "路由", "notify": "通知", "supervision": "督办", "monthly": "月度任务"}
ACTIONS = {"dead_letter.retry": "重试死信", "dead_letter.retry_all": "全部重试",
           "dead_letter.purge": "清除死信", "webhook.retry": "重发通知"}  # fmt: skip


def _allowed(user: User) -> None:
    if roles_of(user).isdisjoint(ONCALL_ROLES):
        raise Forbidden("值班台仅限值班人员和管理员。")


def _refused(request: Request, services: Services, user: User) -> Response:
    return render(request, "error.html", user=user, tz=services.settings.tz, status_code=403,
                  title="无权访问", message="值班台仅限值班人员和管理员。")  # fmt: skip


def _context(services: Services) -> dict[str, Any]:
    org = tasks.org(services)
    zones = {z.code: z.name for z in org.zones} if org else {}
    return {"state": service.queue_state(services), "QUEUES": QUEUES, "zones": zones, "org": org}


@router.get("/queue", name="queue")
async def queue_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    if roles_of(user).isdisjoint(ONCALL_ROLES):
        return _refused(request, services, user)

    def read() -> dict[str, Any]:
        now = services.now()
        waiting = tasks.triage(services, user, limit=50, choices=True)
        for item in waiting:
            since = item.get("updated_at") or item.get("received_at")
            item["waited_seconds"] = (now - datetime.fromisoformat(since)).total_seconds() if since else None
        return {**_context(services), "triage": waiting}

    context = await run_in_threadpool(read)
    return page(request, services, user, "queue.html", title="值班台", **context)


@router.get("/queue/live", name="queue_live")
async def queue_live(request: Request, user: PageUser, services: ServicesDep) -> Response:
    """The live part of ``/queue`` (htmx swaps it every few seconds)."""
    if roles_of(user).isdisjoint(ONCALL_ROLES):
        return Response(status_code=403)
    context = await run_in_threadpool(_context, services)
    return page(request, services, user, "_queue_live.html", **context)


@router.get("/dead-letters", name="dead_letters")
async def dead_letters_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    if roles_of(user).isdisjoint(ONCALL_ROLES):
        return _refused(request, services, user)

    def read() -> dict[str, Any]:
        try:
            letters, broker_error = service.dead_letters(services), None
        except DispatchError as exc:
            letters, broker_error = [], exc.message
        return {"letters": letters, "broker_error": broker_error, "failed": service.failed_webhooks(services),
                "org": tasks.org(services),
                "actions": service.recent_actions(services), "ACTORS": ACTORS, "QUEUES": QUEUES,
                "ACTIONS": ACTIONS}  # fmt: skip

    context = await run_in_threadpool(read)
    return page(request, services, user, "dead_letters.html", title="死信与失败推送", **context)


@router.get("/alerts", name="alerts")
async def alerts_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    if roles_of(user).isdisjoint(ONCALL_ROLES):
        return _refused(request, services, user)
    context = await run_in_threadpool(service.alert_list, services)
    return page(request, services, user, "alerts.html", title="告警", **context)


async def _act(request: Request, user: User, work: Callable[[], dict[str, Any]], done: str) -> Response:
    """One on-call action; a refusal (gone already, Redis down) is a flash message, never an error page."""
    try:
        _allowed(user)
        await run_in_threadpool(work)
        flash(request, "ok", done)
    except DispatchError as exc:
        flash(request, "error", exc.message)
    return RedirectResponse("/dead-letters", status_code=303)


@router.post("/dead-letters/retry-all", name="dead_letters_retry_all")
async def retry_all(request: Request, user: PageUser, services: ServicesDep, form: CheckedForm) -> Response:
    return await _act(
        request, user, lambda: service.retry_all_dead_letters(services, user.login), "已全部重新入队。"
    )


@router.post("/dead-letters/{message_id}/retry", name="dead_letter_retry")
async def retry_one(
    request: Request, message_id: str, user: PageUser, services: ServicesDep, form: CheckedForm
) -> Response:
    return await _act(
        request,
        user,
        lambda: service.retry_dead_letter(services, user.login, message_id[:64]),
        "已重新入队。",
    )


@router.post("/dead-letters/{message_id}/purge", name="dead_letter_purge")
async def purge_one(
    request: Request, message_id: str, user: PageUser, services: ServicesDep, form: CheckedForm
) -> Response:
    if form.get("confirm") != "yes":
        flash(request, "error", "清除前请勾选“确认永久清除”。")
        return RedirectResponse("/dead-letters", status_code=303)
    return await _act(
        request, user, lambda: service.purge_dead_letter(services, user.login, message_id[:64]), "已清除。"
    )


@router.post("/notifications/{notification_id}/retry", name="webhook_retry")
async def retry_webhook(
    request: Request, notification_id: Id, user: PageUser, services: ServicesDep, form: CheckedForm
) -> Response:
    return await _act(
        request, user, lambda: service.retry_webhook(services, user.login, notification_id), "已重新推送。"
    )
