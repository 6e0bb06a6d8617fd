"""Publishing client for upstream systems.

Retries with exponential backoff on 429, 5xx and connection errors, honouring
``Retry-After``; never retries another 4xx (the request itself is wrong). Retrying is safe
because ``(source, external_id)`` is the idempotency key: the server answers a repeat with
the stored event.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

EventLike = BaseModel | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The answer for one event: ``status`` is 202 (new) or 200 (duplicate), or the item's error status."""

    status: int
    event_id: str | None = None
    ledger_no: str | None = None
    duplicate: bool = False
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status in (200, 202)


class PublishError(Exception):
    """The server refused the request (a 4xx other than 429), or retries ran out."""

    def __init__(self, status: int | None, body: Any) -> None:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"{status}: {message}" if status else str(message))
        self.status = status
        self.body = body


def _dump(event: EventLike) -> dict[str, Any]:
    if isinstance(event, BaseModel):
        return event.model_dump(mode="json", exclude_none=True)
    return dict(event)


class DispatchClient:
    """``with DispatchClient(url, token) as c: c.publish(ComplaintEvent(...))``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep

    def __enter__(self) -> DispatchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def publish(self, event: EventLike) -> PublishResult:
        body = self._request("POST", "/events", json=_dump(event))
        return PublishResult(
            status=200 if body.get("duplicate") else 202,
            event_id=body["event_id"],
            ledger_no=body["ledger_no"],
            duplicate=bool(body.get("duplicate")),
        )

    def publish_batch(self, events: Iterable[EventLike]) -> list[PublishResult]:
        """Up to 500 events in one request; one result per event, in order."""
        body = self._request("POST", "/events:batch", json={"events": [_dump(e) for e in events]})
        return [
            PublishResult(
                status=item["code"],
                event_id=item.get("event_id"),
                ledger_no=item.get("ledger_no"),
                duplicate=bool(item.get("duplicate")),
                error=item.get("error"),
            )
            for item in body["results"]
        ]

    def event(self, event_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/events/{event_id}")
        return result

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("retry-after", "")
            if retry_after.replace(".", "", 1).isdigit():
                return min(float(retry_after), self.max_backoff)
        exp = min(self.max_backoff, self.backoff * 2**attempt)
        return exp * (0.5 + random.random() / 2)  # jitter: retries of many clients spread out

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        last: Exception | None = None
        for attempt in range(self.max_attempts):
            response = None
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                last = exc
            else:
                if response.status_code < 400:
                    return response.json()
                body = _json_or_text(response)
                if response.status_code not in RETRY_STATUSES:
                    raise PublishError(response.status_code, body)
                last = PublishError(response.status_code, body)
            if attempt + 1 < self.max_attempts:
                self._sleep(self._delay(attempt, response))
        if isinstance(last, PublishError):
            raise last
        raise PublishError(None, f"giving up after {self.max_attempts} attempts: {last}")


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
