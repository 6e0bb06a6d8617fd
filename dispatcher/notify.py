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
from datetime import datetime

from sqlmodel import Session, col, select

from dispatcher.models import Notification, Task
from dispatcher.org.model import Org

SIGNATURE_HEADER = "X-Dispatch-Signature"


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
    task = session.get(Task, n.task_id)
    body = json.dumps(
        {
            "notification_id": n.id,
            "kind": n.kind,
            "unit": n.unit_code,
            "message": n.message,
            "created_at": n.created_at.isoformat(),
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


def stale_pending(session: Session, *, before: datetime, limit: int = 500) -> list[int]:
    """Deliveries created before ``before`` and never attempted: their enqueue was lost."""
    query = (
        select(Notification.id)
        .where(
            Notification.webhook_status == "pending",
            Notification.webhook_attempts == 0,
            col(Notification.created_at) < before,
        )
        .order_by(col(Notification.id))
        .limit(limit)
    )
    return [n for n in session.exec(query) if n is not None]
