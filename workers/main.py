"""Entry module for ``dramatiq workers.main`` (what ``dispatcher worker`` runs).

Importing it builds the process's runtime and the broker the actors consume: that is what
dramatiq's CLI expects of the module it is given.
"""

from __future__ import annotations

import dramatiq

from dispatcher.bootstrap import build_runtime, use_runtime
from dispatcher.logs import setup_logging
from dispatcher.settings import load_settings
from dispatcher.supervision.policy import announce_calendar
from workers.actors import declare_actors
from workers.broker import Enqueuer, build_broker

settings = load_settings()
setup_logging(settings)
broker = build_broker(settings, prometheus=True)
enqueuer = Enqueuer(broker)
enqueuer.name_worker()
runtime = build_runtime(settings, queue=enqueuer)
use_runtime(runtime)
announce_calendar(runtime.policy, runtime.now())
dramatiq.set_broker(broker)
actors = declare_actors(broker)
