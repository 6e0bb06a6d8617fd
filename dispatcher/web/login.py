"""登录 / 退出: login and password checked with argon2, one generic error, a failure throttle."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import select
from starlette.responses import RedirectResponse, Response

from dispatcher.db import unit_of_work
from dispatcher.http.sessions import find_session_user, log_in, log_out, session_user_id
from dispatcher.http.state import Services, ServicesDep
from dispatcher.models import User
from dispatcher.security import hash_password, verify_password
from dispatcher.web.pages import CheckedForm
from dispatcher.web.render import render

router = APIRouter(include_in_schema=False)

#: Shown for an unknown login, a wrong password and a disabled account alike.
BAD_LOGIN = "用户名或密码错误。"
THROTTLED = "登录失败次数过多，请 10 分钟后再试。"


@cache
def _dummy_hash() -> str:
    """Checked when the login is unknown, so a wrong login costs as long as a wrong password."""
    return hash_password("not-a-password-of-anyone")


def _authenticate(services: Services, login: str, password: str) -> User | None:
    with unit_of_work(services.engine, read_only=True) as session:
        user = session.exec(select(User).where(User.login == login, User.active)).first()
    if user is None:
        verify_password(_dummy_hash(), password)
        return None
    return user if verify_password(user.password_hash, password) else None


def safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme): no open redirect after login."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _form(request: Request, services: Services, *, next_url: str, error: str | None, status: int) -> Response:
    return render(
        request, "login.html", user=None, tz=services.settings.tz, status_code=status,
        next_url=next_url, error=error, title="登录",
    )  # fmt: skip


@router.get("/login", name="login")
async def login_form(request: Request, services: ServicesDep, next: str | None = None) -> Response:
    ids = session_user_id(request)
    user = await run_in_threadpool(find_session_user, services.engine, *ids) if ids else None
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, services, next_url=safe_next(next), error=None, status=200)


@router.post("/login")
async def login(request: Request, services: ServicesDep, form: CheckedForm) -> Response:
    name = str(form.get("login") or "").strip()[:64]
    password = str(form.get("password") or "")[:1024]
    next_url = safe_next(str(form.get("next") or "/"))
    address = request.client.host if request.client else "unknown"
    throttle = services.login_throttle
    if throttle.blocked(name, address):
        return _form(request, services, next_url=next_url, error=THROTTLED, status=429)
    user = await run_in_threadpool(_authenticate, services, name, password) if name and password else None
    if user is None:
        throttle.failed(name, address)
        return _form(request, services, next_url=next_url, error=BAD_LOGIN, status=401)
    throttle.succeeded(name)
    await run_in_threadpool(log_in, request, services.engine, user, address=address)
    return RedirectResponse(next_url, status_code=303)


@router.post("/logout", name="logout")
async def logout(request: Request, services: ServicesDep, form: CheckedForm) -> Response:
    await run_in_threadpool(log_out, request, services.engine)
    return RedirectResponse("/login", status_code=303)
