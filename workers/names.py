"""Queue and actor names: one place for all of them (the Redis key prefix is ``BROKER_NAMESPACE``)."""

#: Queue of routing messages (one per accepted event).
ROUTING_QUEUE = "routing"
#: Actor that routes a list of events (one per intake request) into tasks.
ROUTE_EVENTS = "route_events"
#: Most event ids in one routing message: a batch request becomes a few messages, not hundreds.
ROUTE_CHUNK = 50
#: Actor that does nothing: the baseline of the benchmarks.
NOOP = "noop"
#: Queue of the benchmark's no-op actor.
BENCH_QUEUE = "bench"

#: Queue of notification deliveries (webhooks).
NOTIFY_QUEUE = "notify"
#: Actor that posts one notification to its unit's webhook.
DELIVER_WEBHOOK = "deliver_webhook"

#: Queue of supervision work (one message per task whose next check has come).
SUPERVISION_QUEUE = "supervision"
#: Actor that takes the due supervision steps of one task.
SUPERVISE_TASK = "supervise_task"

#: Queue of the monthly jobs (report, dispatch meeting, training): slow, rare, kept apart.
MONTHLY_QUEUE = "monthly"
#: Actor that works one ``(job, period)`` run.
RUN_MONTHLY = "run_monthly"

#: Every queue a worker consumes by default.
ALL_QUEUES = (ROUTING_QUEUE, NOTIFY_QUEUE, SUPERVISION_QUEUE, MONTHLY_QUEUE)


def leader_key(namespace: str) -> str:
    """The Redis key holding the scheduler leader's name (``schedules.leader``; read by on-call)."""
    return f"{namespace}:scheduler:leader"


def rate_key(namespace: str, source_id: object) -> str:
    """The Redis hash of one source's token bucket, shared by every API process (``http.ratelimit``)."""
    return f"{namespace}:rate:{source_id}"
