"""What the routes need: the process's runtime plus what only an HTTP server keeps in memory.

Built once per process (``build_services``, from the bootstrap) and held in ``app.state``; a
route gets it with ``ServicesDep``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Annotated

from fastapi import Depends, Request

from dispatcher.bootstrap import build_runtime
from dispatcher.http.ratelimit import RateLimiter, shared_buckets
from dispatcher.http.sessions import LoginThrottle
from dispatcher.intake.ratelimit import TokenBuckets
from dispatcher.models import Source
from dispatcher.runtime import Runtime
from dispatcher.settings import Settings

#: How long a Redis call of the API may take: intake answers 202 at once while Redis is down.
API_BROKER_TIMEOUT = 1.0
#: Routing ids of requests answered within this many seconds share one message (issue 13).
ROUTE_LINGER = 0.005


@dataclass
class Services(Runtime):
    #: Per-source rate limits: shared by the API processes in Redis (``http.ratelimit``).
    limiter: RateLimiter = field(default_factory=TokenBuckets)
    #: token hash → (source, monotonic expiry); see ``auth.SOURCE_CACHE_SECONDS``.
    source_cache: dict[str, tuple[Source, float]] = field(default_factory=dict)
    #: Recent failed web logins per login and per address (``web.login``).
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)


def build_services(settings: Settings | None = None) -> Services:
    runtime = build_runtime(settings, broker_timeout=API_BROKER_TIMEOUT, coalesce=ROUTE_LINGER)
    return Services(
        **{f.name: getattr(runtime, f.name) for f in fields(Runtime) if f.init},
        limiter=shared_buckets(runtime.settings),
    )


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
