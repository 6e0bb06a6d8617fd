"""Web sessions (signed cookie), CSRF tokens and the login failure throttle.

The session is Starlette's ``SessionMiddleware`` (an itsdangerous-signed cookie) holding the
user's id, a fingerprint of the password hash (changing the password ends every session) and
a per-session CSRF token. Every POST form carries the token in a hidden field, htmx and API
calls in the ``X-CSRF-Token`` header; a mismatch is ``403``.

The signing key is derived from the secret key of the services in force, looked up per
request, because the app is built before its settings are known (see ``create_app``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from datetime import timedelta
from typing import Any

from sqlmodel import select
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from dispatcher.db import unit_of_work
from dispatcher.models import User, WebSession
from dispatcher.wallclock import utcnow

#: Name of the session cookie.
COOKIE = "zd_session"
#: A session lasts one working day (8 hours) from the last time it changed.
MAX_AGE_SECONDS = 8 * 3600
#: Form field and header that carry the CSRF token.
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_secret(secret_key: str) -> str:
    """The cookie-signing key: derived, so a leaked cookie key is not the encryption key."""
    return hmac.new(secret_key.encode(), b"zone-dispatch web session", hashlib.sha256).hexdigest()


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class LazySessionMiddleware:
    """``SessionMiddleware`` keyed by the secret of the services the app holds at request time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._by_secret: dict[tuple[str, bool], SessionMiddleware] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        settings = getattr(services, "settings", None)
        if scope["type"] != "http" or settings is None:
            await self.app(scope, receive, send)
            return
        key = (session_secret(settings.resolved_secret_key), settings.env == "production")
        middleware = self._by_secret.get(key)
        if middleware is None:
            middleware = self._by_secret[key] = SessionMiddleware(
                self.app, secret_key=key[0], session_cookie=COOKIE, max_age=MAX_AGE_SECONDS,
                same_site="lax", https_only=key[1],
            )  # fmt: skip
        await middleware(scope, receive, send)


def session_of(conn: HTTPConnection) -> dict[str, Any]:
    """The request's session, or an empty one when the middleware did not run."""
    session: dict[str, Any] = conn.scope.get("session", {})
    return session


def csrf_token(conn: HTTPConnection) -> str:
    """This session's CSRF token, created on first use."""
    session = session_of(conn)
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(conn: HTTPConnection, given: str | None) -> bool:
    expected = session_of(conn).get("csrf")
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


def _sid_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def log_in(conn: HTTPConnection, engine: Any, user: User, *, address: str | None = None) -> None:
    """A fresh session for ``user``: a server-side row (so logging out can end it) and a new CSRF
    token (nothing carries over from before login)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with unit_of_work(engine) as db:
        db.add(
            WebSession(
                id=_sid_hash(token), user_id=user.id, created_at=now,  # type: ignore[arg-type]
                expires_at=now + timedelta(seconds=MAX_AGE_SECONDS), address=(address or "")[:64] or None,
            )
        )  # fmt: skip
    session = session_of(conn)
    session.clear()
    session.update(
        uid=user.id,
        pw=password_fingerprint(user.password_hash),
        sid=token,
        csrf=secrets.token_urlsafe(32),
        at=int(time.time()),
    )


def log_out(conn: HTTPConnection, engine: Any) -> None:
    """End this session on the server (a copy of the cookie no longer works) and clear it."""
    token = session_of(conn).get("sid")
    if isinstance(token, str) and token:
        with unit_of_work(engine) as db:
            row = db.get(WebSession, _sid_hash(token))
            if row is not None and row.ended_at is None:
                row.ended_at = utcnow()
                db.add(row)
    session_of(conn).clear()


def session_user_id(conn: HTTPConnection) -> tuple[int, str, str] | None:
    session = session_of(conn)
    uid, fingerprint, token = session.get("uid"), session.get("pw"), session.get("sid")
    if isinstance(uid, int) and isinstance(fingerprint, str) and isinstance(token, str):
        return uid, fingerprint, token
    return None


def find_session_user(engine: Any, uid: int, fingerprint: str, token: str) -> User | None:
    """The active user of a session still open on the server, whose password has not changed since."""
    now = utcnow()
    with unit_of_work(engine, read_only=True) as session:
        row = session.get(WebSession, _sid_hash(token))
        if row is None or row.user_id != uid or row.ended_at is not None or row.expires_at <= now:
            return None
        user = session.exec(select(User).where(User.id == uid, User.active)).first()
    if user is None or not hmac.compare_digest(password_fingerprint(user.password_hash), fingerprint):
        return None
    return user


class LoginThrottle:
    """Refuses logins after too many recent failures for one login or from one address (per process)."""

    def __init__(self, *, per_login: int = 5, per_address: int = 20, window_seconds: float = 600.0) -> None:
        self.limits = {"login": per_login, "address": per_address}
        self.window = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, login: str, address: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(
                len(self._recent((what, value), now)) >= self.limits[what]
                for what, value in (("login", login.casefold()), ("address", address))
            )

    def failed(self, login: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (("login", login.casefold()), ("address", address)):
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # forget idle keys rather than grow without bound
                for stale in [k for k, v in self._failures.items() if not v]:
                    del self._failures[stale]

    def succeeded(self, login: str) -> None:
        with self._lock:
            self._failures.pop(("login", login.casefold()), None)
