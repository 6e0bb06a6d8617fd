"""The on-call use cases (值班): the queue state, alerts, dead letters, failed webhooks, the action log.

Called alike by ``GET /api/v1/queue`` and its siblings, the ``/queue`` page, ``dispatcher queue``
and the scheduler's alert check. Every action is recorded with who did it (a login, or
``cli:<account>`` from the command line) and when (``oncall_actions``). Personal data never
appears: the figures are counts, a dead letter carries event ids, a triage item its summary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar

from sqlmodel import col, select

from dispatcher.errors import NotFound, Unavailable
from dispatcher.models import AlertEvent, AlertState, Notification, OncallAction
from dispatcher.notify.inbox import failed_deliveries, notification_view
from dispatcher.oncall import alerts
from dispatcher.oncall.alerts import Snapshot
from dispatcher.oncall.figures import gather
from dispatcher.runtime import Runtime

log = logging.getLogger(__name__)


def _broker_state(rt: Runtime) -> dict[str, Any]:
    """The broker's half; when Redis does not answer, that is the news (never an error page)."""
    try:
        depths = [asdict(d) for d in rt.queue.depths()]
        workers = rt.queue.workers()
        leader = rt.queue.leader()
    except Exception as exc:
        log.warning("queue state: the broker does not answer: %s", exc)
        return {"reachable": False, "error": f"{type(exc).__name__}: {exc}", "queues": [], "workers": [],
                "leader": None}  # fmt: skip
    return {
        "reachable": True,
        "error": None,
        "queues": depths,
        "workers": [
            {"id": w.id, "name": w.name, "last_seen": w.last_seen.isoformat(), "alive": w.alive}
            for w in workers
        ],
        "leader": leader,
    }


def queue_state(rt: Runtime) -> dict[str, Any]:
    """Everything on-call staff watch, in one answer (DESIGN §9 ``GET /queue``)."""
    now = rt.now()
    broker = _broker_state(rt)
    with rt.work(read_only=True) as session:
        figures = gather(session, now=now, burst_minutes=rt.policy.alerts.overdue_burst.minutes)
        firing = session.exec(select(AlertState).where(col(AlertState.firing))).all()
        firing_now = [
            {"rule": a.rule, "name": alerts.RULES.get(a.rule, a.rule), "since": a.since.isoformat() if a.since
             else None, "message": a.message}
            for a in firing
        ]  # fmt: skip
    beats = [datetime.fromisoformat(w["last_seen"]) for w in broker["workers"]]
    return {
        "at": now.isoformat(),
        "broker": broker,
        "queues": broker["queues"],
        "dead_letters": sum(q["dead"] for q in broker["queues"]),
        "workers": broker["workers"],
        "workers_alive": sum(1 for w in broker["workers"] if w["alive"]),
        "worker_silence_seconds": round((now - max(beats)).total_seconds(), 1) if beats else None,
        "scheduler": {"leader": broker["leader"], "last_runs": figures.last_runs},
        "rates": {
            "intake_per_minute": {f"{m}m": v for m, v in figures.intake_per_minute.items()},
            "dispatch_per_minute": {f"{m}m": v for m, v in figures.dispatch_per_minute.items()},
        },
        "routing_latency_seconds": figures.routing_latency,
        "outbox": {"backlog": figures.outbox_backlog, "oldest_seconds": figures.outbox_oldest_seconds},
        "triage": {"backlog": figures.triage_backlog, "oldest_seconds": figures.triage_oldest_seconds},
        "late_by_zone": figures.late_by_zone,
        "recently_overdue": figures.recently_overdue,
        "failed_webhooks": figures.failed_webhooks,
        "calendar_warning": rt.calendar_warning(),
        "alerts": firing_now,
    }


def snapshot(state: dict[str, Any]) -> Snapshot:
    """What the alert rules read of a queue state."""
    return Snapshot(
        dead_letters=state["dead_letters"],
        outbox_backlog=state["outbox"]["backlog"],
        outbox_oldest_seconds=state["outbox"]["oldest_seconds"],
        worker_silence_seconds=state["worker_silence_seconds"],
        triage_backlog=state["triage"]["backlog"],
        triage_oldest_seconds=state["triage"]["oldest_seconds"],
        recently_overdue=state["recently_overdue"],
        failed_webhooks=state["failed_webhooks"],
        calendar_warning=state["calendar_warning"],
        leader=state["scheduler"]["leader"],
    )


def check_alerts(rt: Runtime) -> list[dict[str, Any]]:
    """One alert pass: evaluate every rule, record the starts and ends this process won, deliver
    what is due to the on-call webhook; returns the starts and ends it recorded.

    With the broker unreachable the broker's rules (dead letters, workers, leader) keep their
    state: an outage of Redis is told by ``/readyz``, not by a storm of guesses.
    """
    state = queue_state(rt)
    policy = rt.policy.alerts
    found = alerts.conditions(snapshot(state), policy)
    if not state["broker"]["reachable"]:
        for rule in ("dead_letters", "no_worker", "no_leader"):
            found.pop(rule, None)
    delivery = "pending" if policy.webhook is not None else "none"
    with rt.work() as session:
        changes = [
            alerts.view(e) for e in alerts.record_changes(session, found, now=rt.now(), delivery=delivery)
        ]
    for change in changes:
        log.warning("alert %s: %s", change["change"], change["message"])
    deliver_alerts(rt)
    return changes


def deliver_alerts(rt: Runtime) -> int:
    """Post the pending starts and ends to the on-call webhook; how many were delivered."""
    policy = rt.policy.alerts
    with rt.work() as session:
        claimed = alerts.claim_deliveries(session, now=rt.now())
        session.expunge_all()
    delivered = 0
    for event in claimed:
        error = alerts.post(policy, event)
        with rt.work() as session:
            alerts.record_delivery(session, event.id or 0, error, max_attempts=policy.webhook_max_attempts)
        delivered += error is None
    return delivered


def alert_list(rt: Runtime, *, limit: int = 100) -> dict[str, Any]:
    """The rules firing now and the latest starts and ends (``GET /alerts``, ``dispatcher alerts``)."""
    with rt.work(read_only=True) as session:
        states = {a.rule: a for a in session.exec(select(AlertState)).all()}
        events = session.exec(select(AlertEvent).order_by(col(AlertEvent.id).desc()).limit(limit)).all()
        rules = []
        for rule, name in alerts.RULES.items():
            state = states.get(rule)
            firing = state is not None and state.firing
            since = state.since.isoformat() if state is not None and state.since else None
            message = state.message if state is not None and firing else None
            rules.append({"rule": rule, "name": name, "firing": firing, "since": since, "message": message})
        return {"rules": rules, "events": [alerts.view(e) for e in events]}


def _record(rt: Runtime, login: str, action: str, target: str, detail: str) -> None:
    with rt.work() as session:
        session.add(OncallAction(at=rt.now(), login=login, action=action, target=target, detail=detail))
    log.info("on-call %s by %s: %s %s", action, login, target, detail)


T = TypeVar("T")


def _on_broker(call: Callable[[], T]) -> T:
    """A broker call; Redis not answering is ``Unavailable`` (503, exit 1), never a traceback."""
    try:
        return call()
    except Exception as exc:
        raise Unavailable(f"the broker (Redis) does not answer: {type(exc).__name__}: {exc}") from exc


def dead_letters(rt: Runtime, *, limit: int = 200) -> list[dict[str, Any]]:
    letters = _on_broker(lambda: rt.queue.dead_letters(limit))
    return [{**asdict(d), "dead_since": d.dead_since.isoformat()} for d in letters]


def retry_dead_letter(rt: Runtime, login: str, message_id: str) -> dict[str, Any]:
    if _on_broker(lambda: rt.queue.retry_dead(message_id)) == 0:
        raise NotFound(f"no dead letter {message_id}")
    _record(rt, login, "dead_letter.retry", message_id, "已重新入队")
    return {"retried": 1}


def retry_all_dead_letters(rt: Runtime, login: str) -> dict[str, Any]:
    count = _on_broker(lambda: rt.queue.retry_dead(None))
    _record(rt, login, "dead_letter.retry_all", "", f"{count} 条已重新入队")
    return {"retried": count}


def purge_dead_letter(rt: Runtime, login: str, message_id: str) -> dict[str, Any]:
    if not _on_broker(lambda: rt.queue.purge_dead(message_id)):
        raise NotFound(f"no dead letter {message_id}")
    _record(rt, login, "dead_letter.purge", message_id, "已清除")
    return {"purged": 1}


def failed_webhooks(rt: Runtime, *, limit: int = 200) -> list[dict[str, Any]]:
    with rt.work(read_only=True) as session:
        return [notification_view(n) for n in failed_deliveries(session, limit=limit)]


def retry_webhook(rt: Runtime, login: str, notification_id: int) -> dict[str, Any]:
    """Send a given-up webhook delivery again, with a fresh count of attempts."""
    with rt.work() as session:
        n = session.get(Notification, notification_id)
        if n is None or n.webhook_status != "failed":
            raise NotFound(f"no failed webhook delivery {notification_id}")
        n.webhook_status, n.webhook_attempts, n.webhook_next_at = "pending", 0, None
        session.add(n)
    rt.hand_off_webhooks([notification_id])  # if the broker is down, the webhook relay sends it
    _record(rt, login, "webhook.retry", str(notification_id), "已重新推送")
    return {"retried": 1}


def recent_actions(rt: Runtime, *, limit: int = 50) -> list[dict[str, Any]]:
    with rt.work(read_only=True) as session:
        rows = session.exec(select(OncallAction).order_by(col(OncallAction.id).desc()).limit(limit)).all()
        return [
            {
                "at": a.at.isoformat(),
                "login": a.login,
                "action": a.action,
                "target": a.target,
                "detail": a.detail,
            }
            for a in rows
        ]
