"""The queue state as Prometheus metrics (``/metrics``): every figure of the on-call console.

Made from one ``queue_state`` answer at scrape time (no background thread, nothing cached), so a
scrape sees what the page shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from dispatcher.oncall.alerts import RULES


def _gauge(
    name: str, doc: str, value: float | None = None, labels: list[str] | None = None
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    if value is not None and labels is None:
        family.add_metric([], value)
    return family


class QueueStateCollector:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        s = self.state
        depth = _gauge(
            "dispatch_queue_messages", "Messages per dramatiq queue and state.", labels=["queue", "state"]
        )
        for q in s["queues"]:
            for state in ("ready", "delayed", "in_flight", "dead"):
                depth.add_metric([q["queue"], state], q[state])
        yield depth
        yield _gauge("dispatch_dead_letters", "Dead letters in every queue.", s["dead_letters"])
        yield _gauge("dispatch_broker_up", "1 when Redis answered.", 1 if s["broker"]["reachable"] else 0)
        yield _gauge("dispatch_workers_alive", "Worker processes with a fresh heartbeat.", s["workers_alive"])
        seen = _gauge(
            "dispatch_worker_last_seen_timestamp_seconds", "Last heartbeat per worker.", labels=["worker"]
        )
        for w in s["workers"]:
            seen.add_metric([w["name"]], datetime.fromisoformat(w["last_seen"]).timestamp())
        yield seen
        for name, key in (("intake", "intake_per_minute"), ("dispatch", "dispatch_per_minute")):
            rate = _gauge(
                f"dispatch_{name}_per_minute", f"{name.title()} rate over a window.", labels=["window"]
            )
            for window, value in s["rates"][key].items():
                rate.add_metric([window], value)
            yield rate
        latency = _gauge(
            "dispatch_routing_latency_seconds", "Acceptance to task, last 15 min.", labels=["quantile"]
        )
        for q, value in s["routing_latency_seconds"].items():
            if value is not None:
                latency.add_metric([f"0.{q[1:]}"], value)
        yield latency
        yield _gauge("dispatch_outbox_backlog", "Accepted events not yet routed.", s["outbox"]["backlog"])
        yield _gauge("dispatch_outbox_oldest_seconds", "Age of the oldest unrouted event.",
                     s["outbox"]["oldest_seconds"] or 0)  # fmt: skip
        yield _gauge("dispatch_triage_backlog", "Items waiting for manual routing.", s["triage"]["backlog"])
        yield _gauge("dispatch_triage_oldest_seconds", "Age of the oldest triage item.",
                     s["triage"]["oldest_seconds"] or 0)  # fmt: skip
        late = _gauge(
            "dispatch_tasks_late", "Open overdue and escalated tasks per zone.", labels=["zone", "state"]
        )
        for zone, counts in s["late_by_zone"].items():
            for state, n in counts.items():
                late.add_metric([zone, state], n)
        yield late
        yield _gauge("dispatch_webhooks_failed", "Webhook deliveries given up.", s["failed_webhooks"])
        yield _gauge("dispatch_calendar_missing", "1 while a needed year has no State Council calendar.",
                     1 if s["calendar_warning"] else 0)  # fmt: skip
        yield _gauge(
            "dispatch_scheduler_leader", "1 while a scheduler leads.", 1 if s["scheduler"]["leader"] else 0
        )
        runs = _gauge("dispatch_schedule_last_run_timestamp_seconds", "Last finished monthly run per job.",
                      labels=["job", "period", "state"])  # fmt: skip
        for job, run in s["scheduler"]["last_runs"].items():
            finished = datetime.fromisoformat(run["finished_at"]).timestamp() if run["finished_at"] else 0
            runs.add_metric([job, run["period"], run["state"]], finished)
        yield runs
        firing = {a["rule"] for a in s["alerts"]}
        alerts = _gauge("dispatch_alert_firing", "1 while an alert rule fires.", labels=["rule"])
        for rule in RULES:
            alerts.add_metric([rule], 1 if rule in firing else 0)
        yield alerts


def exposition(state: dict[str, Any]) -> bytes:
    """The queue state in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueStateCollector(state))
    return generate_latest(registry)
