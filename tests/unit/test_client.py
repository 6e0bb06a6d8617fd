"""Unit tests of the publishing client against ``httpx.MockTransport``: retries, give-ups, batch results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from events.client import DispatchClient, PublishError, PublishResult
from events.schemas import ComplaintEvent, ComplaintPayload

ACCEPTED = {"event_id": "ev-1", "ledger_no": "QL-2026-000001", "status": "accepted", "duplicate": False}
EVENT = {"kind": "complaint", "external_id": "c-1", "payload": {"township": "大兴镇"}}

Reply = httpx.Response | Exception


class Server:
    """Answers requests from a script of replies; records requests and the client's sleeps."""

    def __init__(self, *replies: Reply) -> None:
        self.replies: Iterator[Reply] = iter(replies)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = next(self.replies)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def client(self, **kw: Any) -> DispatchClient:
        options: dict[str, Any] = {"max_attempts": 4, "backoff": 0.5, "max_backoff": 30.0, **kw}
        return DispatchClient(
            "http://dispatch.test/",
            "tok-123",
            transport=httpx.MockTransport(self),
            sleep=self.sleeps.append,
            **options,
        )


def ok(body: dict[str, Any] = ACCEPTED, status: int = 202) -> httpx.Response:
    return httpx.Response(status, json=body)


def error(status: int, headers: dict[str, str] | None = None, message: str = "nope") -> httpx.Response:
    body = {"error": {"code": "x", "message": message, "details": []}}
    return httpx.Response(status, json=body, headers=headers)


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


# -- happy path ---------------------------------------------------------------------------------


def test_publish_posts_to_the_events_endpoint_with_the_bearer_token() -> None:
    server = Server(ok())

    with server.client() as client:
        result = client.publish(EVENT)

    assert result == PublishResult(status=202, event_id="ev-1", ledger_no="QL-2026-000001")
    assert result.ok
    [request] = server.requests
    assert (request.method, str(request.url)) == ("POST", "http://dispatch.test/api/v1/events")
    assert request.headers["authorization"] == "Bearer tok-123"
    assert json.loads(request.content) == EVENT
    assert server.sleeps == []


def test_a_duplicate_answer_is_reported_as_200_with_the_stored_event() -> None:
    server = Server(ok({**ACCEPTED, "duplicate": True}, status=200))

    result = server.client().publish(EVENT)

    assert (result.status, result.duplicate, result.event_id, result.ok) == (200, True, "ev-1", True)


def test_a_typed_event_is_sent_without_null_fields() -> None:
    server = Server(ok())
    event = ComplaintEvent(
        external_id="c-7",
        payload=ComplaintPayload(township="大兴镇", category="惠民资金", summary="补贴未发放"),
    )

    server.client().publish(event)

    sent = json.loads(server.requests[0].content)
    assert sent == {
        "external_id": "c-7",
        "kind": "complaint",
        "payload": {
            "township": "大兴镇",
            "category": "惠民资金",
            "summary": "补贴未发放",
            "severity": "normal",
        },
    }


def test_event_fetches_the_events_state() -> None:
    server = Server(ok({"event_id": "ev-1", "status": "dispatched"}, status=200))

    assert server.client().event("ev-1") == {"event_id": "ev-1", "status": "dispatched"}
    assert server.requests[0].method == "GET"
    assert server.requests[0].url.path == "/api/v1/events/ev-1"


# -- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "slept"), [("2", 2.0), ("1.5", 1.5), ("0", 0.0)])
def test_a_429_is_retried_after_the_servers_retry_after(retry_after: str, slept: float) -> None:
    server = Server(error(429, {"Retry-After": retry_after}), ok())

    result = server.client().publish(EVENT)

    assert result.status == 202
    assert server.sleeps == [slept]
    assert len(server.requests) == 2


def test_a_retry_after_longer_than_max_backoff_is_capped() -> None:
    server = Server(error(429, {"Retry-After": "120"}), ok())

    server.client(max_backoff=10.0).publish(EVENT)

    assert server.sleeps == [10.0]


def test_a_503_honours_retry_after_too() -> None:
    server = Server(error(503, {"Retry-After": "3"}), ok())

    server.client().publish(EVENT)

    assert server.sleeps == [3.0]


def assert_exponential(sleeps: list[float], *, base: float, cap: float) -> None:
    """Each wait is the capped base·2ⁿ with jitter: between half of it and all of it."""
    for n, slept in enumerate(sleeps):
        full = min(cap, base * 2**n)
        assert full / 2 <= slept <= full, (n, slept, full)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried_with_exponential_backoff(status: int) -> None:
    server = Server(error(status), error(status), error(status), ok())

    result = server.client(backoff=0.5).publish(EVENT)

    assert result.status == 202
    assert len(server.requests) == 4
    assert len(server.sleeps) == 3
    assert_exponential(server.sleeps, base=0.5, cap=30.0)


@pytest.mark.parametrize("retry_after", ["Wed, 21 Oct 2026 07:28:00 GMT", "-1", "soon", ""])
def test_a_retry_after_that_is_not_seconds_falls_back_to_exponential_backoff(retry_after: str) -> None:
    server = Server(error(429, {"Retry-After": retry_after}), ok())

    server.client(backoff=4.0).publish(EVENT)

    assert_exponential(server.sleeps, base=4.0, cap=30.0)


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")]
)
def test_transport_errors_are_retried_with_backoff(exc: Exception) -> None:
    server = Server(exc, connect_error(), ok())

    result = server.client(backoff=1.0).publish(EVENT)

    assert result.event_id == "ev-1"
    assert len(server.requests) == 3
    assert_exponential(server.sleeps, base=1.0, cap=30.0)


def test_backoff_waits_are_capped_at_max_backoff() -> None:
    server = Server(*[error(503)] * 7, ok())

    server.client(max_attempts=8, backoff=1.0, max_backoff=5.0).publish(EVENT)

    assert len(server.sleeps) == 7
    assert all(s <= 5.0 for s in server.sleeps)
    assert all(s >= 2.5 for s in server.sleeps[3:])


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_a_client_error_is_never_retried(status: int) -> None:
    server = Server(error(status, message="payload.township: field required"))

    with pytest.raises(PublishError) as raised:
        server.client().publish(EVENT)

    assert raised.value.status == status
    assert str(raised.value) == f"{status}: payload.township: field required"
    assert raised.value.body["error"]["code"] == "x"
    assert len(server.requests) == 1
    assert server.sleeps == []


def test_a_client_error_with_a_non_json_body_keeps_the_text() -> None:
    server = Server(httpx.Response(400, text="<html>bad request</html>"))

    with pytest.raises(PublishError) as raised:
        server.client().publish(EVENT)

    assert (raised.value.status, raised.value.body) == (400, "<html>bad request</html>")


def test_the_client_gives_up_after_max_attempts_with_the_last_status() -> None:
    server = Server(*[error(503)] * 3)

    with pytest.raises(PublishError) as raised:
        server.client(max_attempts=3).publish(EVENT)

    assert raised.value.status == 503
    assert len(server.requests) == 3
    assert len(server.sleeps) == 2  # no pointless sleep after the last attempt


def test_the_client_gives_up_after_max_attempts_of_transport_errors() -> None:
    server = Server(*[connect_error() for _ in range(3)])

    with pytest.raises(PublishError, match="giving up after 3 attempts") as raised:
        server.client(max_attempts=3).publish(EVENT)

    assert raised.value.status is None
    assert len(server.requests) == 3


def test_a_retry_that_meets_a_client_error_stops_there() -> None:
    server = Server(error(503), error(409))

    with pytest.raises(PublishError) as raised:
        server.client().publish(EVENT)

    assert raised.value.status == 409
    assert len(server.requests) == 2


# -- batches ------------------------------------------------------------------------------------


def batch_answer(*items: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"results": list(items), "accepted": 1, "duplicate": 1, "refused": 1})


def test_publish_batch_maps_each_item_to_a_result_in_order() -> None:
    refused = {"code": "validation_failed", "message": "bad", "details": [{"path": "payload.township"}]}
    server = Server(
        batch_answer(
            {
                "index": 0,
                "code": 202,
                "status": "accepted",
                "event_id": "e0",
                "ledger_no": "L0",
                "duplicate": False,
            },
            {
                "index": 1,
                "code": 200,
                "status": "accepted",
                "event_id": "e1",
                "ledger_no": "L1",
                "duplicate": True,
            },
            {"index": 2, "code": 422, "status": "refused", "error": refused},
        )
    )
    typed = ComplaintEvent(
        external_id="c-2", payload=ComplaintPayload(township="丰登乡", category="x", summary="y")
    )

    results = server.client().publish_batch([EVENT, typed, {"kind": "complaint"}])

    assert results == [
        PublishResult(status=202, event_id="e0", ledger_no="L0"),
        PublishResult(status=200, event_id="e1", ledger_no="L1", duplicate=True),
        PublishResult(status=422, error=refused),
    ]
    assert [r.ok for r in results] == [True, True, False]
    request = server.requests[0]
    assert request.url.path == "/api/v1/events:batch"
    sent = json.loads(request.content)["events"]
    assert sent[0] == EVENT
    assert sent[1]["external_id"] == "c-2" and "received_at" not in sent[1]
    assert sent[2] == {"kind": "complaint"}


def test_publish_batch_retries_the_whole_request_on_503() -> None:
    server = Server(
        error(503),
        batch_answer({"index": 0, "code": 202, "event_id": "e0", "ledger_no": "L0", "duplicate": False}),
    )

    [result] = server.client().publish_batch([EVENT])

    assert result.event_id == "e0"
    assert len(server.requests) == 2
    assert server.requests[0].content == server.requests[1].content


def test_publish_batch_accepts_any_iterable() -> None:
    server = Server(batch_answer({"index": 0, "code": 202, "event_id": "e0", "ledger_no": "L0"}))

    [result] = server.client().publish_batch(e for e in [EVENT])

    assert result.status == 202
    assert json.loads(server.requests[0].content) == {"events": [EVENT]}
