"""The staff inbox (工作台): server-rendered pages in Simplified Chinese over the same core as the API.

Pages read and act through the same use cases as the JSON API (``tasks.service``,
``notify.service``), so a form and a JSON call are checked by the same code. Every page needs a
signed-in session (else a redirect to ``/login``); every POST needs the session's CSRF token
(else ``403``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from dispatcher.enums import Role, TaskStatus
from dispatcher.errors import DispatchError, NotFound, ValidationFailed
from dispatcher.http.params import Id, form_int
from dispatcher.http.sessions import CSRF_FIELD, CSRF_HEADER, csrf_ok, find_session_user, session_user_id
from dispatcher.http.state import Services, ServicesDep
from dispatcher.models import User
from dispatcher.notify import service as notices
from dispatcher.org.model import Org
from dispatcher.tasks import service
from dispatcher.tasks.access import roles_of
from dispatcher.tasks.commands import DecideBody, ExtendBody, RevealBody
from dispatcher.tasks.lifecycle import Move
from dispatcher.tasks.queries import TaskFilters
from dispatcher.web import labels
from dispatcher.web.forms import FORMS, WEB_MOVES, move_body
from dispatcher.web.render import flash, identity_rows, outcome_rows, payload_rows, render

router = APIRouter(include_in_schema=False)

#: Most rows a list page shows (the API pages through the rest).
LIST_LIMIT = 200


class LoginRequired(Exception):
    """No valid session: the page redirects to the login form."""


class CsrfRefused(Exception):
    """A POST without the session's CSRF token."""


async def page_user(request: Request, services: ServicesDep) -> User:
    ids = session_user_id(request)
    user = await run_in_threadpool(find_session_user, services.engine, *ids) if ids else None
    if user is None:
        raise LoginRequired
    return user


PageUser = Annotated[User, Depends(page_user)]


async def checked_form(request: Request) -> FormData:
    """The posted form, if it carries this session's CSRF token (field, or header for htmx)."""
    form = await request.form()
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not csrf_ok(request, given if isinstance(given, str) else None):
        raise CsrfRefused
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def install(app: FastAPI) -> None:
    """The pages' answers to a missing session (redirect to login) and a missing CSRF token (403)."""

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request"):  # htmx follows HX-Redirect instead of swapping the login page
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        services: Services = request.app.state.services
        return render(
            request, "error.html", user=None, tz=services.settings.tz, status_code=403,
            title="请求已拒绝", message="页面已过期或请求来源不明（CSRF 校验失败），请重新打开页面后再提交。",
        )  # fmt: skip


def page(request: Request, services: Services, user: User, name: str, **context: Any) -> Response:
    return render(request, name, user=user, tz=services.settings.tz, **context)


# --- 我的任务 ----------------------------------------------------------------------------------


#: Rows per page of the inbox.
PAGE_SIZE = 50


def _inbox(
    services: Services, user: User, filters: dict[str, Any], page_no: int
) -> tuple[Org | None, dict[str, Any], list[dict[str, Any]]]:
    chosen = TaskFilters(
        status=filters["status"] or None,
        kind=filters["kind"] or None,
        unit=filters["unit"] or None,
        overdue=True if filters["overdue"] else None,
        q=filters["q"] or None,
    )
    offset = (page_no - 1) * PAGE_SIZE
    listing = service.browse_tasks(
        services, user, chosen, sort=filters["sort"], limit=PAGE_SIZE, offset=offset
    )
    return service.org(services), listing, notices.notifications_for(services, user, limit=5)


@router.get("/", name="inbox")
async def inbox(
    request: Request,
    user: PageUser,
    services: ServicesDep,
    status: str | None = None,
    kind: str | None = None,
    unit: str | None = None,
    overdue: str | None = None,
    q: str | None = None,
    sort: str | None = None,
    page_no: Annotated[str | None, Query(alias="page")] = None,
) -> Response:
    filters = {
        "status": status if status in labels.STATES else "",
        "kind": kind if kind in labels.KINDS else "",
        "unit": (unit or "")[:64],
        "overdue": "1" if overdue in ("1", "true") else "",
        "q": (q or "").strip()[:100],
        "sort": sort if sort in labels.SORTS else "urgent",
    }
    number = form_int(page_no or "1", low=1, high=100_000) or 1
    org, listing, notes = await run_in_threadpool(_inbox, services, user, filters, number)
    pages = max(1, -(-listing["total"] // PAGE_SIZE))
    if not listing["total_exact"]:  # "more than 2,000": one more page while this one is full
        pages = max(pages, number + (len(listing["tasks"]) == PAGE_SIZE))
    name = "_task_list.html" if request.headers.get("hx-request") else "inbox.html"
    return page(
        request, services, user, name, org=org, tasks=listing["tasks"], notifications=notes,
        filters=filters, counts=listing["counts"], total=listing["total"], page_no=min(number, pages),
        exact=listing["total_exact"],
        pages=pages, query=_query_of(filters), query_with=lambda **c: _query_of(filters, **c),
        title="我的任务",
    )  # fmt: skip


def _query_of(filters: dict[str, str], **changes: str) -> str:
    """The inbox's URL query for ``filters`` with ``changes`` (``page``, ``status``…)."""
    values = {k: v for k, v in {**filters, **changes}.items() if v and not (k == "sort" and v == "urgent")}
    return "&".join(f"{k}={quote(str(v))}" for k, v in values.items())


# --- 任务详情 ----------------------------------------------------------------------------------


def _task(services: Services, user: User, task_id: Id) -> tuple[Org | None, dict[str, Any]]:
    return service.org(services), service.read_task(services, user, task_id)


def _unit_options(org: Org | None, zone: str | None) -> list[tuple[str, str]]:
    """Units to choose for 分办 / 指定 / 协助: the task's zone first, then the rest (the core checks 回避)."""
    if org is None:
        return []
    units = sorted(org.units, key=lambda u: (u.zone != zone, u.zone or "~", u.code))
    return [(u.code, f"{u.name}（{u.code}）") for u in units]


async def _task_page(
    request: Request,
    services: Services,
    user: User,
    task_id: Id,
    *,
    revealed: dict[str, Any] | None = None,
) -> Response:
    try:
        org, task = await run_in_threadpool(_task, services, user, task_id)
    except NotFound:
        return render(
            request, "error.html", user=user, tz=services.settings.tz, status_code=404,
            title="任务不存在", message="没有这个任务，或它不属于您的单位。",
        )  # fmt: skip
    event = task["event"] or {}
    forms = [FORMS[Move(m)] for m in task["allowed_moves"] if Move(m) in FORMS]
    return page(
        request, services, user, "task.html", org=org, task=task, forms=forms,
        payload=payload_rows(event.get("payload") or {}),
        identity=identity_rows(revealed if revealed is not None else event.get("identity") or {}),
        revealed=revealed is not None, outcome=outcome_rows(task["outcome"]),
        unit_options=_unit_options(org, task["zone"]), title=f"任务 {task['ledger_no']}",
    )  # fmt: skip


@router.get("/tasks/{task_id}", name="task")
async def task_page(request: Request, task_id: Id, user: PageUser, services: ServicesDep) -> Response:
    return await _task_page(request, services, user, task_id)


async def act(
    request: Request,
    services: Services,
    user: User,
    task_id: Id,
    work: Callable[[], Awaitable[object]],
    *,
    label: str,
    invalid: str,
    done: str | None = None,
    back: object = None,
) -> Response:
    """Run one action of the task page; refusals become a Chinese flash message, never a traceback.
    ``back``: where to return (a form's ``next``: a path on this site, e.g. the zone worklist)."""
    try:
        await work()
    except ValidationError:
        flash(request, "error", f"{label}未完成：{invalid}")
    except NotFound:
        return await _task_page(request, services, user, task_id)  # the 404 page
    except DispatchError as exc:
        flash(request, "error", labels.refusal(exc, label))
    else:
        flash(request, "ok", done or f"「{label}」已完成。")
    target = back if isinstance(back, str) and back.startswith("/") and not back.startswith("//") else None
    return RedirectResponse(target or f"/tasks/{task_id}", status_code=303)


@router.post("/tasks/{task_id}/moves/{move}", name="task_move")
async def task_move(
    request: Request, task_id: Id, move: str, user: PageUser, services: ServicesDep, form: CheckedForm
) -> Response:
    chosen = WEB_MOVES.get(move)
    if chosen is None:
        flash(request, "error", "未知的操作。")
        return RedirectResponse(f"/tasks/{task_id}", status_code=303)

    async def work() -> object:
        stage = str(form.get("stage") or "") or None
        body = move_body(chosen, str(form.get("kind") or ""), form, stage=stage)
        return await run_in_threadpool(service.move_task, services, user, task_id, chosen, body)

    label = labels.MOVES.get(chosen.value, chosen.value)
    return await act(
        request,
        services,
        user,
        task_id,
        work,
        label=label,
        invalid="填写内容过长或格式不对。",
        back=form.get("next"),
    )


@router.post("/tasks/{task_id}/extend", name="task_extend")
async def task_extend(
    request: Request, task_id: Id, user: PageUser, services: ServicesDep, form: CheckedForm
) -> Response:
    """申请延期: through the same core as ``POST /api/v1/tasks/{id}/extend``."""
    days, version = str(form.get("days") or "").strip(), str(form.get("version") or "").strip()

    async def work() -> object:
        body = ExtendBody(
            reason=str(form.get("reason") or "").strip() or None,
            days=form_int(days, low=-(10**6), high=10**6),
            version=form_int(version),
        )
        return await run_in_threadpool(service.ask_for_extension, services, user, task_id, body)

    return await act(
        request, services, user, task_id, work, label="申请延期", invalid="填写内容过长或格式不对。",
        done="延期申请已提交，等待协作区组长审批。",
    )  # fmt: skip


@router.post("/tasks/{task_id}/extensions/{extension_id}/{decision}", name="task_extension_decision")
async def task_extension_decision(
    request: Request,
    task_id: Id,
    extension_id: Id,
    decision: str,
    user: PageUser,
    services: ServicesDep,
    form: CheckedForm,
) -> Response:
    """批准 / 不批准延期 (zone leaders): the same core as the API's approve and refuse."""
    if decision not in ("approve", "refuse"):
        flash(request, "error", "未知的操作。")
        return RedirectResponse(f"/tasks/{task_id}", status_code=303)
    version = str(form.get("version") or "").strip()

    async def work() -> object:
        body = DecideBody(
            note=str(form.get("note") or "").strip() or None,
            version=form_int(version),
        )
        approve = decision == "approve"

        def decide() -> object:
            return service.decide_extension(services, user, task_id, extension_id, approve=approve, body=body)

        return await run_in_threadpool(decide)

    label = "批准延期" if decision == "approve" else "不批准延期"
    return await act(
        request, services, user, task_id, work, label=label, invalid="填写内容过长。", back=form.get("next")
    )


@router.post("/tasks/{task_id}/attachments", name="task_attach")
async def task_attach(
    request: Request, task_id: Id, user: PageUser, services: ServicesDep, form: CheckedForm
) -> Response:
    """上传附件: through the same core as ``POST /api/v1/tasks/{id}/attachments``."""
    upload = form.get("file")

    async def work() -> object:
        if upload is None or isinstance(upload, str):
            raise ValidationFailed("choose a file", details=[{"path": "file", "message": "required"}])
        content = await upload.read(services.settings.max_attachment_bytes + 1)
        return await run_in_threadpool(
            service.upload_attachment, services, user, task_id, upload.filename, content
        )

    return await act(
        request, services, user, task_id, work, label="上传附件", invalid="文件有误。", done="附件已上传。"
    )


@router.post("/tasks/{task_id}/identity", name="task_identity")
async def task_identity(
    request: Request, task_id: Id, user: PageUser, services: ServicesDep, form: CheckedForm
) -> Response:
    """查看身份信息: shown once in this answer (not stored in the page's URL), and logged."""
    try:
        body = RevealBody(reason=str(form.get("reason") or "").strip())
        shown = await run_in_threadpool(service.reveal_identity, services, user, task_id, body.reason)
    except ValidationError:
        flash(request, "error", "查看身份信息需要填写理由（至少 2 个字）。")
    except NotFound:
        return await _task_page(request, services, user, task_id)
    except DispatchError as exc:
        flash(request, "error", labels.refusal(exc, "查看身份信息"))
    else:
        return await _task_page(request, services, user, task_id, revealed=shown["identity"])
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)


# --- 验单队列 ----------------------------------------------------------------------------------


def _verify_queue(services: Services, user: User) -> tuple[Org | None, list[dict[str, Any]]]:
    return service.org(services), service.verify_queue(services, user, limit=LIST_LIMIT)


@router.get("/verify", name="verify")
async def verify_queue(request: Request, user: PageUser, services: ServicesDep) -> Response:
    org, tasks = await run_in_threadpool(_verify_queue, services, user)
    return page(request, services, user, "verify.html", org=org, tasks=tasks, title="验单队列")


# --- 协作区 -----------------------------------------------------------------------------------

ZONE_ROLES = frozenset({Role.zone_leader, Role.oncall, Role.admin})


@router.get("/zone", name="zone")
async def zone_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    if roles_of(user).isdisjoint(ZONE_ROLES):
        return render(
            request, "error.html", user=user, tz=services.settings.tz, status_code=403,
            title="无权查看", message="协作区视图仅供协作区组长、值班和管理员使用。",
        )  # fmt: skip
    data = await run_in_threadpool(service.zone_overview, services, user)
    return page(
        request, services, user, "zone.html", **data,
        columns=[s.value for s in TaskStatus], title="协作区",
    )  # fmt: skip


# --- 通知 -------------------------------------------------------------------------------------


@router.get("/notifications", name="notifications")
async def notifications_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    notes = await run_in_threadpool(notices.notifications_for, services, user, limit=LIST_LIMIT)
    name = "_notifications.html" if request.headers.get("hx-request") else "notifications.html"
    unread = sum(1 for n in notes if not n["read_at"])
    return page(request, services, user, name, notifications=notes, unread=unread, title="通知")


@router.get("/notifications/unread", name="notifications_unread")
async def notifications_unread(request: Request, user: PageUser, services: ServicesDep) -> Response:
    """The navigation's unread badge (htmx loads it; nothing when all is read)."""
    count = await run_in_threadpool(notices.unread, services, user)
    return Response(
        f'<span class="badge" title="未读通知">{count}</span>' if count else "", media_type="text/html"
    )


@router.post("/notifications/read", name="notifications_read")
async def notifications_read(
    request: Request, user: PageUser, services: ServicesDep, form: CheckedForm
) -> Response:
    """标为已读: one notification (``id``) or all of mine."""
    chosen = form_int(form.get("id"), low=1)
    await run_in_threadpool(notices.read, services, user, [chosen] if chosen else None)
    return RedirectResponse("/notifications", status_code=303)
