"""Authentication: bearer tokens of sources (upstream systems) and of staff users, or a staff web session.

Sources are token-only. Staff routes also accept the web session cookie; an unsafe method
authenticated by the cookie must carry the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import select

from dispatcher.db import unit_of_work
from dispatcher.errors import Forbidden, RateLimited, Unauthorized
from dispatcher.http.sessions import CSRF_HEADER, SAFE_METHODS, csrf_ok, find_session_user, session_user_id
from dispatcher.http.state import Services, ServicesDep
from dispatcher.models import Source, User
from dispatcher.security import hash_token
from dispatcher.tasks.access import roles_of

#: How long an API process trusts a source it has looked up; a revoked token stops working after this.
SOURCE_CACHE_SECONDS = 10.0


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    return token.strip()


def _cached_source(services: Services, token: str) -> Source | None:
    cached = services.source_cache.get(hash_token(token))
    return cached[0] if cached is not None and cached[1] > time.monotonic() else None


def _find_source(services: Services, token: str) -> Source | None:
    """The source of a token, remembered for ``SOURCE_CACHE_SECONDS`` (intake's hot path)."""
    digest = hash_token(token)
    with unit_of_work(services.engine, read_only=True) as session:
        source = session.exec(select(Source).where(Source.token_hash == digest, Source.active)).first()
    if source is not None:
        services.source_cache[digest] = (source, time.monotonic() + SOURCE_CACHE_SECONDS)
    return source


def _find_user(services: Services, token: str) -> User | None:
    with unit_of_work(services.engine, read_only=True) as session:
        return session.exec(select(User).where(User.token_hash == hash_token(token), User.active)).first()


async def current_source(request: Request, services: ServicesDep) -> Source:
    """The upstream system behind the token, within its rate limit (429 beyond it)."""
    token = bearer_token(request)
    source = _cached_source(services, token) or await run_in_threadpool(_find_source, services, token)
    if source is None:
        raise Unauthorized("unknown source token")
    # In a thread: the shared limiter asks Redis (``http.ratelimit``, a quarter second at most).
    wait = await run_in_threadpool(
        services.limiter.take, source.id, rate=source.rate_per_second, burst=source.burst
    )
    if wait > 0:
        raise RateLimited(f"source {source.name!r} is over its rate limit", retry_after=wait)
    return source


async def current_user(request: Request, services: ServicesDep) -> User:
    """The user of the bearer token; without an ``Authorization`` header, the user of the web session."""
    if "authorization" not in request.headers and (ids := session_user_id(request)) is not None:
        user = await run_in_threadpool(find_session_user, services.engine, *ids)
        if user is not None:
            if request.method not in SAFE_METHODS and not csrf_ok(request, request.headers.get(CSRF_HEADER)):
                raise Forbidden("a request authenticated by the session cookie needs its X-CSRF-Token")
            return user
    user = await run_in_threadpool(_find_user, services, bearer_token(request))
    if user is None:
        raise Unauthorized("unknown user token")
    return user


def require_roles(*roles: str) -> Any:
    async def _check(user: Annotated[User, Depends(current_user)]) -> User:
        if roles_of(user).isdisjoint(roles):
            held = ", ".join(sorted(roles_of(user)))
            raise Forbidden(f"{held} may not do this (needs {' or '.join(roles)})")
        return user

    return _check


SourceDep = Annotated[Source, Depends(current_source)]
UserDep = Annotated[User, Depends(current_user)]
