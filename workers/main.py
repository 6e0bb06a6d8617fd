"""Entry module for ``dramatiq workers.main`` (what ``dispatcher worker`` runs).

Importing it is the one place that builds the broker: that is what dramatiq's CLI expects of
the module it is given.
"""

from __future__ import annotations

import dramatiq

from dispatcher.bootstrap import get_runtime
from dispatcher.clock import utcnow
from dispatcher.logs import setup_logging
from dispatcher.supervision.policy import announce_calendar
from workers.actors import declare_actors
from workers.broker import build_broker

setup_logging()
announce_calendar(get_runtime().policy, utcnow())
broker = build_broker(get_runtime().settings, prometheus=True)
dramatiq.set_broker(broker)
actors = declare_actors(broker)
