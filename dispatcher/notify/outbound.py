"""Outbound HTTP for webhooks: one connection pool per process, reused by every delivery.

``httpx.post`` builds a new client per call, and with it a new TLS context that loads the CA
bundle: about 20 ms of CPU per delivery, a quarter of the worker's time under load (issue 13).
One client is shared by the threads of a process (``httpx.Client`` is thread-safe); it is made on
first use, so a forked worker process makes its own.
"""

from __future__ import annotations

import os
import threading

import httpx

_lock = threading.Lock()
_client: tuple[int, httpx.Client] | None = None


def client() -> httpx.Client:
    """This process's client (timeouts are given per request)."""
    global _client
    with _lock:
        if _client is None or _client[0] != os.getpid():
            _client = (os.getpid(), httpx.Client(limits=httpx.Limits(max_keepalive_connections=20)))
        return _client[1]


def post(url: str, *, content: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
    """POST ``content`` to ``url`` on the shared pool."""
    return client().post(url, content=content, headers=headers, timeout=timeout)
