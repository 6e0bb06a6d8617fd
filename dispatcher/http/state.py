"""What the routes need, wired once per process in the app's lifespan (the bootstrap)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from dispatcher.clock import Clock, utcnow
from dispatcher.db import get_engine
from dispatcher.http.sessions import LoginThrottle
from dispatcher.intake.ratelimit import TokenBuckets
from dispatcher.intake.register import IntakeContext
from dispatcher.models import Source
from dispatcher.settings import Settings
from dispatcher.supervision.policy import DEFAULT_POLICY, TimePolicy, load_policy
from workers.broker import Enqueuer, build_broker, redis_client

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    enqueuer: Enqueuer
    limiter: TokenBuckets
    clock: Clock = utcnow
    #: The time-limit policy (``POLICY_FILE``, or the built-in defaults).
    policy: TimePolicy = DEFAULT_POLICY
    #: token hash → (source, monotonic expiry); see ``auth.SOURCE_CACHE_SECONDS``.
    source_cache: dict[str, tuple[Source, float]] = field(default_factory=dict)
    #: Recent failed web logins per login and per address (``web.login``).
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)

    def intake_context(self) -> IntakeContext:
        return IntakeContext(
            now=self.clock(),
            secret_key=self.settings.resolved_secret_key,
            tz=self.settings.tz,
            relay_after=timedelta(seconds=self.settings.relay_after_seconds),
        )

    def deliver(self, notification_ids: list[int]) -> None:
        """Hand webhook deliveries to the workers; if the broker is down the scheduler's relay sends them."""
        if not notification_ids:
            return
        try:
            self.enqueuer.deliver_webhooks(notification_ids)
        except Exception as exc:
            log.warning(
                "could not enqueue %d webhook delivery(ies), the relay will: %s", len(notification_ids), exc
            )

    def broker_ping(self) -> bool:
        client = redis_client(self.settings, timeout=1.0)
        try:
            return bool(client.ping())
        finally:
            client.close()


def build_services(settings: Settings) -> Services:
    return Services(
        settings=settings,
        engine=get_engine(settings.resolved_database_url),
        enqueuer=Enqueuer(build_broker(settings, timeout=1.0)),
        limiter=TokenBuckets(),
        policy=load_policy(settings.policy_file),
    )


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
