"""``python -m workers.run ARGS``: dramatiq's command line, its supervising process logging in
this project's format first.

``dispatcher worker`` runs it when ``DISPATCH_LOG_FORMAT=json``: dramatiq's parent process
otherwise writes its own lines (booting, a worker process that died, shutdown) in its text
format, since it never imports ``workers.main``. Its worker processes set their logging again
when they import ``workers.main``.
"""

from __future__ import annotations

import sys

from dramatiq.cli import main

from dispatcher.logs import setup_logging

if __name__ == "__main__":
    setup_logging()
    sys.exit(main())
