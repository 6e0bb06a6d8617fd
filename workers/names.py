"""Queue and actor names, and Redis key prefixes: one place for all of them."""

#: Queue of routing messages (one per accepted event).
ROUTING_QUEUE = "routing"
#: Actor that routes one event into a task.
ROUTE_EVENT = "route_event"
#: Actor that does nothing: the baseline of the benchmarks.
NOOP = "noop"
#: Queue of the benchmark's no-op actor.
BENCH_QUEUE = "bench"

#: Every queue a worker consumes by default.
ALL_QUEUES = (ROUTING_QUEUE,)
