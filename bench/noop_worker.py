"""Entry module for ``dramatiq bench.noop_worker --queues bench``: the product's broker and actors,
plus the timing no-op of the baseline. Like ``workers.main``, importing it builds the broker.
"""

from __future__ import annotations

import dramatiq

from bench.baseline import declare_bench_noop, done_key
from dispatcher.settings import load_settings
from workers.actors import declare_actors
from workers.broker import build_broker

settings = load_settings()
broker = build_broker(settings)
dramatiq.set_broker(broker)
actors = declare_actors(broker)
actors["bench_noop"] = declare_bench_noop(broker, broker.client, done_key(settings.broker_namespace))
