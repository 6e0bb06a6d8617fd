"""DESIGN §4 row by row over real HTTP, a real database and a real Redis broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import redis
import sqlalchemy as sa

from dispatcher.enums import EventStatus
from dispatcher.org.model import Org
from tests import factories
from tests.integration.conftest import assert_error, auth, db_counts, get_event_row, post_event
from tests.support import wait_for

# --- one event ---------------------------------------------------------------------------


def test_a_new_event_is_answered_202_with_its_id_and_ledger_number(
    engine: sa.Engine, api_url: str, token: str
) -> None:
    r = post_event(api_url, token, factories.complaint())
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == {"event_id", "ledger_no", "status", "duplicate"}
    assert body["status"] == "accepted"
    assert body["duplicate"] is False
    assert body["ledger_no"].startswith("TS-") and body["ledger_no"].endswith("-000001")
    row = get_event_row(engine, body["event_id"])
    assert row.ledger_no == body["ledger_no"]
    assert row.status == EventStatus.accepted


def test_the_same_key_again_answers_200_with_the_stored_event_and_creates_nothing(
    engine: sa.Engine, api_url: str, token: str
) -> None:
    body = factories.clue()
    first = post_event(api_url, token, body)
    assert first.status_code == 202, first.text
    before = db_counts(engine)

    again = post_event(api_url, token, body)

    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "duplicate": True}
    assert db_counts(engine) == before


def test_the_same_key_with_other_content_is_409_naming_the_existing_event(
    engine: sa.Engine, api_url: str, token: str
) -> None:
    body = factories.complaint("dup-key-1")
    first = post_event(api_url, token, body).json()
    before = db_counts(engine)
    changed = factories.complaint("dup-key-1", summary="完全不同的投诉内容。")

    r = post_event(api_url, token, changed)

    error = assert_error(r, 409, "conflict")
    assert first["event_id"] in error["message"]
    assert error["details"] == {"event_id": first["event_id"], "ledger_no": first["ledger_no"]}
    assert db_counts(engine) == before


def test_the_same_external_id_from_two_sources_is_two_events(engine: sa.Engine, api_url: str) -> None:
    a, b = factories.source_token(engine), factories.source_token(engine)
    body = factories.complaint("shared-upstream-id")
    ra, rb = post_event(api_url, a, body), post_event(api_url, b, body)
    assert (ra.status_code, rb.status_code) == (202, 202)
    assert ra.json()["event_id"] != rb.json()["event_id"]


def test_with_the_broker_unreachable_intake_still_answers_202_and_leaves_the_event_to_the_relay(
    engine: sa.Engine, offline_broker_api_url: str, token: str
) -> None:
    r = post_event(offline_broker_api_url, token, factories.enterprise_request())

    assert r.status_code == 202, r.text
    assert r.json()["status"] == "accepted"
    row = get_event_row(engine, r.json()["event_id"])
    assert row.status == EventStatus.accepted
    assert row.relay_after is not None
    assert row.relay_after > row.accepted_at
    assert row.relay_attempts == 0


def test_with_the_database_unreachable_intake_answers_503_with_retry_after_and_enqueues_nothing(
    offline_database_api_url: str, redis_url: str, broker_namespace: str
) -> None:
    r = post_event(offline_database_api_url, "src_some-token", factories.complaint())

    error = assert_error(r, 503, "unavailable")
    assert int(r.headers["Retry-After"]) > 0
    assert "database" in error["message"]
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(f"{broker_namespace}*")) == []
    finally:
        client.close()


# --- refusals ----------------------------------------------------------------------------


def test_malformed_json_is_400(engine: sa.Engine, api_url: str, token: str) -> None:
    r = httpx.post(
        f"{api_url}/api/v1/events",
        content=b'{"kind": "complaint", "external_id": ',
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert_error(r, 400, "bad_request")
    assert db_counts(engine)["events"] == 0


def test_schema_errors_are_422_naming_the_path_of_every_bad_field(
    engine: sa.Engine, api_url: str, token: str
) -> None:
    body = factories.clue("x" * 129, severity="catastrophic")
    body["payload"]["subject"]["rank"] = "mayor"
    del body["payload"]["summary"]

    r = post_event(api_url, token, body)

    error = assert_error(r, 422, "validation_error")
    paths = {d["path"] for d in error["details"]}
    assert paths == {"external_id", "payload.subject.rank", "payload.summary", "payload.severity"}
    assert all(d["message"] for d in error["details"])
    assert db_counts(engine)["events"] == 0


def test_an_unknown_kind_is_422_on_the_kind_field(api_url: str, token: str) -> None:
    r = post_event(api_url, token, {**factories.complaint(), "kind": "rumour"})
    error = assert_error(r, 422, "validation_error")
    assert [d["path"] for d in error["details"]] == ["kind"]


def test_a_body_cannot_claim_a_source_of_its_own(api_url: str, token: str) -> None:
    r = post_event(api_url, token, {**factories.complaint(), "source": "someone-else"})
    error = assert_error(r, 422, "validation_error")
    assert [d["path"] for d in error["details"]] == ["source"]


def test_received_at_in_the_future_is_422(engine: sa.Engine, api_url: str, token: str) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = post_event(api_url, token, {**factories.complaint(), "received_at": future})
    error = assert_error(r, 422, "validation_error")
    assert [d["path"] for d in error["details"]] == ["received_at"]
    assert db_counts(engine)["events"] == 0


def test_received_at_without_a_utc_offset_is_422(api_url: str, token: str) -> None:
    r = post_event(api_url, token, {**factories.complaint(), "received_at": "2026-03-01T09:30:00"})
    error = assert_error(r, 422, "validation_error")
    assert [d["path"] for d in error["details"]] == ["received_at"]


def test_a_received_at_in_the_past_is_kept(engine: sa.Engine, api_url: str, token: str) -> None:
    r = post_event(api_url, token, {**factories.complaint(), "received_at": "2026-03-01T09:30:00+08:00"})
    assert r.status_code == 202, r.text
    row = get_event_row(engine, r.json()["event_id"])
    assert row.received_at == datetime(2026, 3, 1, 1, 30, tzinfo=UTC)


def test_a_body_over_256_kib_is_413(engine: sa.Engine, api_url: str, token: str) -> None:
    body = factories.complaint(summary="长" * (100 * 1024))  # 3 bytes each in UTF-8: 300 KiB
    r = post_event(api_url, token, body)
    assert_error(r, 413, "payload_too_large")
    assert db_counts(engine)["events"] == 0


def test_a_chunked_body_over_256_kib_is_413_while_reading(
    engine: sa.Engine, api_url: str, token: str
) -> None:
    data = json.dumps(factories.complaint(summary="x" * (300 * 1024))).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is checked while reading
        for i in range(0, len(data), 16 * 1024):
            yield data[i : i + 16 * 1024]

    r = httpx.post(
        f"{api_url}/api/v1/events",
        content=chunks(),
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert_error(r, 413, "payload_too_large")
    assert db_counts(engine)["events"] == 0


def test_a_missing_token_is_401(api_url: str) -> None:
    r = httpx.post(f"{api_url}/api/v1/events", json=factories.complaint())
    assert_error(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_an_unknown_token_is_401(api_url: str, token: str) -> None:
    r = post_event(api_url, token + "x", factories.complaint())
    assert_error(r, 401, "unauthorized")


def test_a_kind_the_source_may_not_publish_is_403(engine: sa.Engine, api_url: str) -> None:
    clue_only = factories.source_token(engine, kinds=("clue",))
    r = post_event(api_url, clue_only, factories.complaint())
    assert_error(r, 403, "forbidden")
    assert db_counts(engine)["events"] == 0
    assert post_event(api_url, clue_only, factories.clue()).status_code == 202


def test_too_many_requests_from_one_source_is_429_with_retry_after(engine: sa.Engine, api_url: str) -> None:
    slow = factories.source_token(engine, rate=1, burst=2)
    answers = [post_event(api_url, slow, factories.complaint()) for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [202, 202]
    assert_error(answers[2], 429, "rate_limited")
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert db_counts(engine)["events"] == 2
    other = factories.source_token(engine)  # the limit is per source
    assert post_event(api_url, other, factories.complaint()).status_code == 202


# --- batch -------------------------------------------------------------------------------


def post_batch(api_url: str, token: str, events: Any) -> httpx.Response:
    return httpx.post(
        f"{api_url}/api/v1/events:batch", json={"events": events}, headers=auth(token), timeout=30
    )


def test_a_batch_answers_each_item_on_its_own(engine: sa.Engine, api_url: str) -> None:
    token = factories.source_token(engine, kinds=("clue", "complaint"))
    stored = factories.complaint("stored-before")
    first = post_event(api_url, token, stored).json()
    bad = factories.clue()
    del bad["payload"]["subject"]
    items = [
        factories.complaint("new-1"),
        bad,
        stored,
        factories.enterprise_request(),
        factories.complaint("stored-before", summary="另一件事。"),
        factories.clue("new-2"),
    ]

    r = post_batch(api_url, token, items)

    assert r.status_code == 200, r.text
    body = r.json()
    results = body["results"]
    assert [a["index"] for a in results] == list(range(len(items)))
    assert [a["code"] for a in results] == [202, 422, 200, 403, 409, 202]
    assert (body["accepted"], body["duplicate"], body["refused"]) == (2, 1, 3)
    for ok in (results[0], results[5]):
        assert ok["status"] == "accepted" and ok["duplicate"] is False
        assert get_event_row(engine, ok["event_id"]).ledger_no == ok["ledger_no"]
    assert results[2]["status"] == "accepted" and results[2]["duplicate"] is True
    assert (results[2]["event_id"], results[2]["ledger_no"]) == (first["event_id"], first["ledger_no"])
    for refused, code in (
        (results[1], "validation_error"),
        (results[3], "forbidden"),
        (results[4], "conflict"),
    ):
        assert refused["status"] == "refused"
        assert "event_id" not in refused
        assert set(refused["error"]) == {"code", "message", "details"}
        assert refused["error"]["code"] == code
    assert [d["path"] for d in results[1]["error"]["details"]] == ["payload.subject"]
    assert results[4]["error"]["details"]["event_id"] == first["event_id"]
    assert db_counts(engine)["events"] == 3


def test_a_batch_of_more_than_500_events_is_422(engine: sa.Engine, api_url: str, token: str) -> None:
    r = post_batch(api_url, token, [factories.complaint() for _ in range(501)])
    error = assert_error(r, 422, "validation_error")
    assert error["details"][0]["path"] == "events"
    assert db_counts(engine)["events"] == 0


def test_a_batch_of_exactly_500_events_is_accepted(engine: sa.Engine, api_url: str, token: str) -> None:
    r = post_batch(api_url, token, [factories.complaint() for _ in range(500)])
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 500
    assert db_counts(engine)["events"] == 500


def test_an_empty_batch_is_422(api_url: str, token: str) -> None:
    error = assert_error(post_batch(api_url, token, []), 422, "validation_error")
    assert error["details"][0]["path"] == "events"


def test_a_batch_that_is_not_a_list_of_events_is_422(api_url: str, token: str) -> None:
    r = httpx.post(f"{api_url}/api/v1/events:batch", json={"events": "nope"}, headers=auth(token))
    assert_error(r, 422, "validation_error")


# --- reading an event --------------------------------------------------------------------


def get_event(api_url: str, token: str, event_id: str) -> httpx.Response:
    return httpx.get(f"{api_url}/api/v1/events/{event_id}", headers=auth(token))


def test_reading_an_event_tells_its_state_ledger_number_and_task_once_routed(
    engine: sa.Engine, loaded_org: Org, api_url: str, token: str, worker: object
) -> None:
    posted = post_event(api_url, token, factories.complaint("read-me")).json()

    def routed() -> dict[str, Any] | None:
        state: dict[str, Any] = get_event(api_url, token, posted["event_id"]).json()
        return state if state["task"] else None

    state = wait_for(routed, timeout=15, what="the event to be routed")
    assert state["event_id"] == posted["event_id"]
    assert state["ledger_no"] == posted["ledger_no"]
    assert state["external_id"] == "read-me"
    assert state["kind"] == "complaint"
    assert state["status"] == "dispatched"
    task = state["task"]
    assert task["status"] == "dispatched"
    assert (task["handler_unit"], task["verifier_unit"], task["rule"]) == (
        "DXZ-JW",
        "SHI1",
        "complaint_township",
    )
    assert task["dispatched_at"] is not None
    assert "complainant" not in json.dumps(state, ensure_ascii=False)


def test_reading_an_event_before_routing_shows_it_accepted_without_task(
    offline_broker_api_url: str, token: str
) -> None:
    posted = post_event(offline_broker_api_url, token, factories.clue()).json()
    state = get_event(offline_broker_api_url, token, posted["event_id"]).json()
    assert (state["status"], state["task"], state["ledger_no"]) == ("accepted", None, posted["ledger_no"])


def test_another_sources_event_is_404(engine: sa.Engine, api_url: str, token: str) -> None:
    posted = post_event(api_url, token, factories.complaint()).json()
    other = factories.source_token(engine)
    assert_error(get_event(api_url, other, posted["event_id"]), 404, "not_found")
    assert_error(get_event(api_url, token, "0" * 32), 404, "not_found")
    assert get_event(api_url, token, posted["event_id"]).status_code == 200


def test_reading_an_event_needs_a_source_token(api_url: str) -> None:
    assert_error(httpx.get(f"{api_url}/api/v1/events/{'0' * 32}"), 401, "unauthorized")
