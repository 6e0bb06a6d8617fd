"""A unit's inbox (通知): the rows every domain adds, and what the API and the pages list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dispatcher.models import Notification, NotificationRead, Task
from dispatcher.org.model import Org


def add_notification(
    session: Session,
    org: Org | None,
    *,
    unit_code: str,
    task: Task,
    kind: str,
    message: str,
    now: datetime,
    login: str | None = None,
) -> Notification:
    """Tell ``unit_code`` (or only ``login`` of it) something about ``task``; the unit's webhook (if
    the org names one) gets it too."""
    unit = org.units_by_code.get(unit_code) if org is not None else None
    notification = Notification(
        unit_code=unit_code,
        login=login,
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


def _mine(login: str, unit_code: str) -> Any:
    """My notifications: my unit's that are for everyone, and those for me alone."""
    return sa.or_(
        sa.and_(col(Notification.unit_code) == unit_code, col(Notification.login).is_(None)),
        col(Notification.login) == login,
    )


def notifications_of(session: Session, login: str, unit_code: str, *, limit: int) -> list[dict[str, Any]]:
    """My notifications, newest first, each with ``read_at`` (None: unread)."""
    read = (
        sa.select(col(NotificationRead.notification_id), col(NotificationRead.read_at))
        .where(col(NotificationRead.login) == login)
        .subquery("r")
    )
    rows = session.execute(
        sa.select(Notification, read.c.read_at)
        .outerjoin(read, read.c.notification_id == Notification.id)
        .where(_mine(login, unit_code))
        .order_by(col(Notification.id).desc())
        .limit(limit)
    ).all()
    return [
        {**notification_view(n), "read_at": read_at.isoformat() if read_at else None} for n, read_at in rows
    ]


def unread_count(session: Session, login: str, unit_code: str) -> int:
    read = sa.select(col(NotificationRead.notification_id)).where(col(NotificationRead.login) == login)
    return int(
        session.execute(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(_mine(login, unit_code), col(Notification.id).not_in(read))
        ).scalar_one()
    )


def mark_read(session: Session, login: str, unit_code: str, ids: list[int] | None, now: datetime) -> int:
    """Mark my notifications ``ids`` (``None``: every one) read; returns how many were newly read.
    Another's personal notification or another unit's is left alone (not mine to mark)."""
    query = sa.select(col(Notification.id)).where(_mine(login, unit_code))
    if ids is not None:
        query = query.where(col(Notification.id).in_(ids))
    already = sa.select(col(NotificationRead.notification_id)).where(col(NotificationRead.login) == login)
    targets = [n for (n,) in session.execute(query.where(col(Notification.id).not_in(already))).all()]
    for notification_id in targets:
        session.add(NotificationRead(notification_id=notification_id, login=login, read_at=now))
    try:
        session.flush()
    except sa.exc.IntegrityError:  # marked at the same moment elsewhere: it is read either way
        session.rollback()
        return 0
    return len(targets)


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
        "id": n.id, "unit": n.unit_code, "login": n.login, "task_id": n.task_id, "link": n.link,
        "kind": n.kind, "message": n.message,
        "created_at": n.created_at.isoformat(), "webhook_status": n.webhook_status,
        "webhook_attempts": n.webhook_attempts, "webhook_error": n.webhook_error,
    }  # fmt: skip
