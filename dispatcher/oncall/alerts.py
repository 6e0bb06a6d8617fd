"""Alert rules: a condition over the queue state, announced once when it starts and once when it ends.

``conditions`` is pure: the state in, per rule the sentence to say while it holds (or None). The
rest keeps the promise "once": ``alert_states`` holds per rule whether it fires, and a change is a
compare-and-set (``UPDATE … WHERE firing = <what I read>``); only the process whose update took
records the ``alert_events`` row and posts it. Several scheduler replicas and API servers check at
once, restarts included, and each start or end is still announced once.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from dispatcher.models import AlertEvent, AlertState
from dispatcher.notify import outbound
from dispatcher.notify.webhooks import SIGNATURE_HEADER, sign
from dispatcher.oncall.policy import AlertPolicy

log = logging.getLogger(__name__)

#: Every rule, in the order the page lists them, with its name in Chinese.
RULES: dict[str, str] = {
    "dead_letters": "死信",
    "outbox_age": "待路由事件积压",
    "no_worker": "无可用工作进程",
    "triage_backlog": "待分办积压",
    "overdue_burst": "集中超期",
    "failed_webhooks": "通知推送失败",
    "missing_calendar": "节假日安排缺失",
    "no_leader": "调度器无主",
}
#: After a failed delivery, wait this long before the next attempt.
RETRY_AFTER = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the rules look at (a subset of the queue state)."""

    dead_letters: int
    outbox_backlog: int
    outbox_oldest_seconds: float | None
    #: Seconds since the last heartbeat of any worker (None: no worker ever seen).
    worker_silence_seconds: float | None
    triage_backlog: int
    triage_oldest_seconds: float | None
    recently_overdue: int
    failed_webhooks: int
    calendar_warning: str | None
    leader: str | None


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} 小时" if seconds >= 3600 else f"{seconds / 60:.0f} 分钟"


def conditions(s: Snapshot, p: AlertPolicy) -> dict[str, str | None]:
    """Per rule, the sentence on-call staff read while its condition holds, or None."""
    found: dict[str, str | None] = dict.fromkeys(RULES)
    if p.dead_letters and s.dead_letters > 0:
        found["dead_letters"] = f"有 {s.dead_letters} 条死信（重试已用尽的消息），请查看原因后重试或清除。"
    age = s.outbox_oldest_seconds
    if p.outbox_age_seconds and age is not None and age > p.outbox_age_seconds:
        found["outbox_age"] = (
            f"{s.outbox_backlog} 件已接收事件尚未路由，最早的已等待 {_hours(age)}"
            f"（阈值 {p.outbox_age_seconds} 秒）：检查工作进程与 Redis。"
        )
    silence = s.worker_silence_seconds
    if p.no_worker_seconds and (silence is None or silence > p.no_worker_seconds):
        since = "从未收到心跳" if silence is None else f"最后一次心跳在 {silence:.0f} 秒前"
        found["no_worker"] = f"没有存活的工作进程（{since}）：事件与督办都不会被处理。"
    oldest = s.triage_oldest_seconds
    too_many = p.triage_backlog and s.triage_backlog > p.triage_backlog
    too_old = p.triage_age_hours and oldest is not None and oldest > p.triage_age_hours * 3600
    if too_many or too_old:
        found["triage_backlog"] = (
            f"待分办 {s.triage_backlog} 件"
            + (f"，最早的已等待 {_hours(oldest)}" if oldest is not None else "")
            + f"（阈值 {p.triage_backlog} 件或 {p.triage_age_hours:g} 小时）。"
        )
    burst = p.overdue_burst
    if burst.tasks and s.recently_overdue >= burst.tasks:
        found["overdue_burst"] = f"最近 {burst.minutes} 分钟内有 {s.recently_overdue} 件任务转为超期。"
    if p.failed_webhooks and s.failed_webhooks > 0:
        found["failed_webhooks"] = f"{s.failed_webhooks} 条通知推送（webhook）重试后仍失败，可在值班台重发。"
    if p.missing_calendar and s.calendar_warning:
        found["missing_calendar"] = s.calendar_warning
    if p.scheduler_without_leader and not s.leader:
        found["no_leader"] = "没有调度器在主导：督办扫描、出箱补发和月度任务都已停止。"
    return found


def _ensure_rows(session: Session) -> dict[str, AlertState]:
    states = {a.rule: a for a in session.exec(select(AlertState)).all()}
    missing = [r for r in RULES if r not in states]
    for rule in missing:
        savepoint = session.begin_nested()
        try:
            session.add(AlertState(rule=rule, firing=False))
            savepoint.commit()
        except IntegrityError:  # another process made it first
            savepoint.rollback()
    if missing:
        states = {a.rule: a for a in session.exec(select(AlertState)).all()}
    return states


def record_changes(
    session: Session, found: dict[str, str | None], *, now: datetime, delivery: str
) -> list[AlertEvent]:
    """Apply ``found`` to the stored states; the starts and ends this call won, as new events."""
    changes = []
    for rule, state in _ensure_rows(session).items():
        if rule not in found:
            continue
        message = found[rule]
        firing = message is not None
        if firing == state.firing:
            if firing and message != state.message:  # same alert, new figures: keep the text fresh
                session.execute(
                    sa.update(AlertState).where(col(AlertState.rule) == rule).values(message=message)
                )
            continue
        won = session.execute(
            sa.update(AlertState)
            .where(col(AlertState.rule) == rule, col(AlertState.firing) == state.firing)
            .values(firing=firing, since=now, message=message or "")
        )
        if won.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another process announced it
        text = message if message is not None else f"已恢复：{RULES[rule]}（{state.message}）"
        event = AlertEvent(
            rule=rule, change="fired" if firing else "cleared", at=now, message=text, delivery=delivery,
            next_try_at=now if delivery == "pending" else None,
        )  # fmt: skip
        session.add(event)
        changes.append(event)
    session.flush()
    return changes


def claim_deliveries(session: Session, *, now: datetime, limit: int = 20) -> list[AlertEvent]:
    """Pending deliveries whose time has come, each claimed (``next_try_at`` moved on) by this call."""
    due = session.exec(
        select(AlertEvent)
        .where(AlertEvent.delivery == "pending", col(AlertEvent.next_try_at) <= now)
        .order_by(col(AlertEvent.id))
        .limit(limit)
    ).all()
    claimed = []
    for event in due:
        took = session.execute(
            sa.update(AlertEvent)
            .where(col(AlertEvent.id) == event.id, col(AlertEvent.next_try_at) == event.next_try_at)
            .values(next_try_at=now + RETRY_AFTER)
        )
        if took.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(event)
    return claimed


def body_of(event: AlertEvent) -> bytes:
    keep = ("id", "rule", "name", "change", "at", "message")
    fields = {k: v for k, v in view(event).items() if k in keep}
    return json.dumps(fields, ensure_ascii=False, sort_keys=True).encode()


def post(policy: AlertPolicy, event: AlertEvent) -> str | None:
    """Post one start or end to the on-call webhook; the error, or None when it was taken."""
    hook = policy.webhook
    if hook is None:
        return None
    body = body_of(event)
    headers = {"Content-Type": "application/json", "X-Dispatch-Alert": str(event.id)}
    if hook.secret_env:
        secret = os.environ.get(hook.secret_env)
        if not secret:
            return f"webhook secret {hook.secret_env} is not set in the environment"
        headers[SIGNATURE_HEADER] = sign(secret, body)
    try:
        response = outbound.post(str(hook.url), content=body, headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.is_success else f"HTTP {response.status_code}"


def record_delivery(session: Session, event_id: int, error: str | None, *, max_attempts: int) -> None:
    event = session.get(AlertEvent, event_id)
    if event is None or event.delivery != "pending":
        return
    event.attempts += 1
    event.error = error
    if error is None:
        event.delivery = "delivered"
    elif event.attempts >= max_attempts:
        event.delivery = "failed"
        log.warning("alert %s (%s %s) not delivered after %d attempts: %s", event.id, event.rule,
                    event.change, event.attempts, error)  # fmt: skip
    session.add(event)


def view(event: AlertEvent) -> dict[str, Any]:
    return {
        "id": event.id, "rule": event.rule, "name": RULES.get(event.rule, event.rule), "change": event.change,
        "at": event.at.isoformat(), "message": event.message, "delivery": event.delivery,
        "attempts": event.attempts, "error": event.error,
    }  # fmt: skip
