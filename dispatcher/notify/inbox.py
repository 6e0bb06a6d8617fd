"""A unit's inbox (通知): the rows every domain adds, and what the API and the pages list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from dispatcher.models import Notification, Task
from dispatcher.org.model import Org


def add_notification(
    session: Session, org: Org | None, *, unit_code: str, task: Task, kind: str, message: str, now: datetime
) -> Notification:
    """Tell ``unit_code`` something about ``task``; its webhook (if the org names one) gets it too."""
    unit = org.units_by_code.get(unit_code) if org is not None else None
    notification = Notification(
        unit_code=unit_code,
        task_id=task.id,
        kind=kind,
        message=message,
        created_at=now,
        webhook_status="pending" if unit is not None and unit.webhook is not None else "none",
    )
    session.add(notification)
    return notification


def announce(
    session: Session, org: Org | None, *, unit_code: str, kind: str, message: str, link: str, now: datetime
) -> Notification:
    """Tell ``unit_code`` news about no single task (a monthly report is ready), linking to it."""
    unit = org.units_by_code.get(unit_code) if org is not None else None
    notification = Notification(
        unit_code=unit_code,
        kind=kind,
        message=message,
        link=link,
        created_at=now,
        webhook_status="pending" if unit is not None and unit.webhook is not None else "none",
    )
    session.add(notification)
    return notification


def unit_notifications(session: Session, unit_code: str, *, limit: int) -> list[Notification]:
    """A unit's notifications, newest first."""
    query = (
        select(Notification)
        .where(Notification.unit_code == unit_code)
        .order_by(col(Notification.id).desc())
        .limit(limit)
    )
    return list(session.exec(query).all())


def failed_deliveries(session: Session, *, limit: int = 500) -> list[Notification]:
    """Webhook deliveries given up after the last try, newest first (on-call's list)."""
    query = (
        select(Notification)
        .where(Notification.webhook_status == "failed")
        .order_by(col(Notification.id).desc())
        .limit(limit)
    )
    return list(session.exec(query).all())


def notification_view(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id, "unit": n.unit_code, "task_id": n.task_id, "link": n.link, "kind": n.kind,
        "message": n.message,
        "created_at": n.created_at.isoformat(), "webhook_status": n.webhook_status,
        "webhook_attempts": n.webhook_attempts, "webhook_error": n.webhook_error,
    }  # fmt: skip
