"""用户管理: the admin's page for staff users — several roles each, a new password (shown once),
disable or enable — through the same registry as ``dispatcher user …``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from dispatcher.accounts import registry as accounts
from dispatcher.db import unit_of_work
from dispatcher.enums import Role
from dispatcher.errors import DispatchError
from dispatcher.http.state import Services, ServicesDep
from dispatcher.models import User
from dispatcher.org.store import org_in_force
from dispatcher.tasks.access import roles_of
from dispatcher.web import labels
from dispatcher.web.pages import CheckedForm, PageUser, page
from dispatcher.web.render import flash, render

router = APIRouter(include_in_schema=False)


def _refused(request: Request, services: Services, user: User) -> Response | None:
    if Role.admin in roles_of(user):
        return None
    return render(
        request, "error.html", user=user, tz=services.settings.tz, status_code=403,
        title="无权查看", message="用户管理仅供管理员使用。",
    )  # fmt: skip


def _users(services: Services) -> tuple[Any, list[dict[str, Any]]]:
    with unit_of_work(services.engine, read_only=True) as session:
        org = org_in_force(session)
        users = [
            {"login": u.login, "unit": u.unit_code, "roles": list(u.roles or [u.role]), "active": u.active}
            for u in accounts.list_users(session)
        ]
        missing = accounts.staff_without_login(session, org) if org is not None else []
    return org, users + [{"login": m[0], "unit": m[1], "roles": m[2], "active": None} for m in missing]


@router.get("/admin/users", name="admin_users")
async def users_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    refused = _refused(request, services, user)
    if refused is not None:
        return refused
    org, users = await run_in_threadpool(_users, services)
    shown = request.session.pop("password_shown", None) if "session" in request.scope else None
    return page(
        request, services, user, "admin_users.html", org=org, users=users, all_roles=[r.value for r in Role],
        shown=shown, title="用户管理",
    )  # fmt: skip


def _change(services: Services, action: str, login: str, form: Any) -> str | None:
    """Apply one admin action; returns a new password when one was made (shown once)."""
    roles = [str(r) for r in form.getlist("roles")]
    with unit_of_work(services.engine) as session:
        if action == "roles":
            accounts.set_roles(session, login, roles)
        elif action == "password":
            return accounts.reset_password(session, login)
        elif action in ("disable", "enable"):
            accounts.set_active(session, login, action == "enable")
        elif action == "create":
            org = org_in_force(session)
            unit = str(form.get("unit") or "")
            _, _, password = accounts.add_user(
                session, login=login, unit=unit, roles=roles, org=org, now=services.now()
            )
            return password
    return None


@router.post("/admin/users/{login}/{action}", name="admin_user_action")
async def user_action(
    request: Request, login: str, action: str, user: PageUser, services: ServicesDep, form: CheckedForm
) -> Response:
    refused = _refused(request, services, user)
    if refused is not None:
        return refused
    if action not in ("roles", "password", "disable", "enable", "create"):
        flash(request, "error", "未知的操作。")
        return RedirectResponse("/admin/users", status_code=303)
    try:
        password = await run_in_threadpool(_change, services, action, login, form)
    except DispatchError as exc:
        flash(request, "error", labels.refusal(exc, "用户管理"))
    else:
        flash(request, "ok", f"{login}：已保存。")
        if password:  # shown once, on the next page only
            request.session["password_shown"] = {"login": login, "password": password}
    return RedirectResponse("/admin/users", status_code=303)
