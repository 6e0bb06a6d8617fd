"""Two ASGI middlewares that stand between hostile input and a 5xx.

``BodyLimit`` answers ``413`` for a body over the limit before anything else runs (DESIGN §4's
order: 413, then 401…), whether the size is declared (``Content-Length``) or counted while
reading. ``ErrorShield`` turns what escaped every handler into an answer without dropping the
connection: JSON nested past Python's recursion limit is ``400``, a number too large for the
database ``422``, anything else one logged ``500`` (Starlette's own last resort re-raises, which
makes uvicorn drop the connection).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DataError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.http.errors import error_body

log = logging.getLogger(__name__)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": raw})


class BodyLimit:
    """``413`` for a request body over ``limit(path)`` bytes, declared or counted, before the app
    sees the request: the body (at most the limit, 256 KiB for the API) is read here first, then
    replayed, so an oversized chunked body is refused before authentication too."""

    def __init__(self, app: ASGIApp, limit: Callable[[str], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        message = f"body over {limit // 1024} KiB"
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, error_body("payload_too_large", message))
            return
        buffered: list[Message] = []
        seen = 0
        while True:
            got = await receive()
            buffered.append(got)
            if got["type"] != "http.request":
                break  # the client went away: let the app find out
            seen += len(got.get("body", b""))
            if seen > limit:
                await _send_json(send, 413, error_body("payload_too_large", message))
                return
            if not got.get("more_body", False):
                break

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        await self.app(scope, replay, send)


class ErrorShield:
    """What no handler answered becomes a JSON answer, and the connection stays open."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, receive, tracking)
        except RecursionError:
            if not started:
                await _send_json(send, 400, error_body("bad_request", "the body is nested too deeply"))
        except (OverflowError, DataError) as exc:
            log.info("refused an out-of-range value on %s: %s", scope.get("path"), str(exc).splitlines()[0])
            if not started:
                await _send_json(send, 422, error_body("validation_error", "a value is out of range"))
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _send_json(send, 500, error_body("internal_error", "internal error"))
