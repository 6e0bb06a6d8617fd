"""The notification use cases: deliver one webhook, relay lost ones, list a unit's inbox."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from dispatcher.models import User
from dispatcher.notify import outbound, webhooks
from dispatcher.notify.inbox import (
    failed_deliveries,
    mark_read,
    notification_view,
    notifications_of,
    unread_count,
)
from dispatcher.runtime import Runtime

log = logging.getLogger(__name__)


def deliver_webhook(rt: Runtime, notification_id: int) -> str | None:
    """Post one notification to its unit's webhook and record the attempt.

    Returns the error when another attempt should follow (the actor retries with backoff), or
    ``None`` when it was delivered, given up into the failed list, or had nothing to send.
    """
    with rt.work(read_only=True) as session:
        delivery = webhooks.prepare(session, notification_id, rt.org(session))
    if delivery is None:
        return None
    error: str | None
    if isinstance(delivery, str):
        error = delivery
    else:
        try:
            response = outbound.post(
                delivery.url, content=delivery.body, headers=delivery.headers, timeout=10
            )
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
    with rt.work() as session:
        again = webhooks.record(
            session, notification_id, error=error, max_attempts=rt.settings.webhook_max_attempts, now=rt.now()
        )
    if error is not None:
        log.warning(
            "webhook delivery %s failed (%s)%s", notification_id, error, ", will retry" if again else ""
        )
    return error if again else None


def relay_webhooks(rt: Runtime) -> int:
    """Enqueue webhook deliveries whose message was lost (never sent, or a retry that never came)."""
    with rt.work() as session:
        ids = webhooks.claim_stale(session, now=rt.now())
        if ids:  # inside the transaction: if the broker is down, nothing is marked as relayed
            rt.queue.deliver_webhooks(ids)
    return len(ids)


def notifications_for(rt: Runtime, user: User, *, limit: int = 50) -> list[dict[str, Any]]:
    """My notifications (my unit's, and those for me alone), newest first, each with ``read_at``."""
    with rt.work(read_only=True) as session:
        return notifications_of(session, user.login, user.unit_code, limit=limit)


def unread(rt: Runtime, user: User) -> int:
    with rt.work(read_only=True) as session:
        return unread_count(session, user.login, user.unit_code)


def read(rt: Runtime, user: User, ids: list[int] | None) -> int:
    """Mark my notifications ``ids`` (``None``: all of them) read; how many were newly read."""
    with rt.work() as session:
        return mark_read(session, user.login, user.unit_code, ids, rt.now())


def failed(rt: Runtime) -> list[dict[str, Any]]:
    """Webhook deliveries given up after the last try (on-call)."""
    with rt.work(read_only=True) as session:
        return [notification_view(n) for n in failed_deliveries(session)]
