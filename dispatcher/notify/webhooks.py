"""Webhook delivery of notifications: JSON signed with HMAC-SHA256, retried, then given up visibly.

The request carries ``X-Dispatch-Signature: sha256=<hex>`` over the exact body bytes, keyed
with the secret named by the unit's ``webhook.secret_env`` (an environment variable; secrets
never live in the org file), plus ``X-Dispatch-Delivery`` (the notification id, for the
receiver's own idempotency) and ``X-Dispatch-Event`` (its kind).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dispatcher.models import Notification, Task
from dispatcher.org.model import Org

SIGNATURE_HEADER = "X-Dispatch-Signature"
#: A new delivery is relayed if no attempt happened within this long (its enqueue was lost).
FIRST_GRACE = timedelta(minutes=1)
#: After an attempt or a relay, how long before the relay may send it again.
RELAY_GRACE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def prepare(session: Session, notification_id: int, org: Org | None) -> Delivery | str | None:
    """The request to send, an error that makes sending pointless (a string), or ``None`` (nothing to do)."""
    n = session.get(Notification, notification_id)
    if n is None or n.webhook_status != "pending":
        return None
    unit = org.units_by_code.get(n.unit_code) if org is not None else None
    if unit is None or unit.webhook is None:
        return f"unit {n.unit_code} has no webhook in the org in force"
    task = session.get(Task, n.task_id) if n.task_id is not None else None
    body = json.dumps(
        {
            "notification_id": n.id,
            "kind": n.kind,
            "unit": n.unit_code,
            "message": n.message,
            "created_at": n.created_at.isoformat(),
            "link": n.link,
            "task": None
            if task is None
            else {"id": task.id, "ledger_no": task.ledger_no, "kind": task.kind, "status": task.status},
        },
        ensure_ascii=False,
        sort_keys=True,
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Dispatch-Delivery": str(n.id),
        "X-Dispatch-Event": n.kind,
    }
    if unit.webhook.secret_env:
        secret = os.environ.get(unit.webhook.secret_env)
        if not secret:
            return f"webhook secret {unit.webhook.secret_env} is not set in the environment"
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return Delivery(url=str(unit.webhook.url), body=body, headers=headers)


def record(
    session: Session, notification_id: int, *, error: str | None, max_attempts: int, now: datetime
) -> bool:
    """Write one attempt's result; returns True when another attempt should follow."""
    n = session.get(Notification, notification_id)
    if n is None or n.webhook_status != "pending":
        return False
    n.webhook_attempts += 1
    n.webhook_error = error
    if error is None:
        n.webhook_status = "delivered"
    elif n.webhook_attempts >= max_attempts:
        n.webhook_status = "failed"
    else:  # dramatiq retries within a minute; if that retry is lost, the relay steps in after this
        n.webhook_next_at = now + RELAY_GRACE
    session.add(n)
    return n.webhook_status == "pending"


def pending_webhooks(session: Session, task_ids: list[int | None]) -> list[int]:
    """Notifications of these tasks still waiting for their first webhook attempt."""
    ids = [t for t in task_ids if t is not None]
    if not ids:
        return []
    query = select(Notification.id).where(
        col(Notification.task_id).in_(ids),
        Notification.webhook_status == "pending",
        Notification.webhook_attempts == 0,
    )
    return [n for n in session.exec(query) if n is not None]


def pending_webhooks_of(session: Session, notification_ids: list[int]) -> list[int]:
    """Of these notifications, those waiting for their first webhook attempt."""
    if not notification_ids:
        return []
    query = select(Notification.id).where(
        col(Notification.id).in_(notification_ids), Notification.webhook_status == "pending"
    )
    return [n for n in session.exec(query) if n is not None]


def claim_stale(session: Session, *, now: datetime, limit: int = 500) -> list[int]:
    """Pending deliveries whose message was lost (never sent, or a retry that never came).

    Each one returned gets a new ``webhook_next_at``, so a relay pass re-sends it once per
    ``RELAY_GRACE`` at most, however slow the workers are.
    """
    due = sa.or_(
        sa.and_(
            col(Notification.webhook_next_at).is_(None), col(Notification.created_at) < now - FIRST_GRACE
        ),
        col(Notification.webhook_next_at) < now,
    )
    query = (
        select(Notification)
        .where(Notification.webhook_status == "pending", due)
        .order_by(col(Notification.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = []
    for n in session.exec(query):
        n.webhook_next_at = now + RELAY_GRACE
        session.add(n)
        if n.id is not None:
            claimed.append(n.id)
    return claimed
