"""Prometheus metrics of the API process (workers export dramatiq's own through its middleware)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_ACCEPTED = Counter("dispatch_events_accepted_total", "Events newly accepted.", ["kind"])
EVENTS_DUPLICATE = Counter(
    "dispatch_events_duplicate_total", "Retries answered with the stored event.", ["kind"]
)
EVENTS_REFUSED = Counter("dispatch_events_refused_total", "Events refused, by HTTP status.", ["status"])
ENQUEUE_FAILURES = Counter(
    "dispatch_enqueue_failures_total", "Enqueues that failed after commit (the outbox relay delivers them)."
)
INTAKE_SECONDS = Histogram("dispatch_intake_seconds", "Time to store and enqueue one intake request.")
