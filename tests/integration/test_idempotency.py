"""Idempotent intake under concurrent retries, and gap-free ledger numbers per kind and year."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.db import unit_of_work
from dispatcher.models import Event
from tests import factories
from tests.integration.conftest import auth, db_counts, post_event


def this_year() -> int:
    """Ledger years are counted in the deployment's time zone (Asia/Shanghai)."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).year


def post_all(api_url: str, token: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """Post every body at once, one thread and one connection each."""

    def one(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            return client.post(f"{api_url}/api/v1/events", json=body, headers=auth(token))

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def test_fifty_concurrent_posts_of_one_key_create_exactly_one_event(
    engine: sa.Engine, api_url: str, token: str
) -> None:
    body = factories.complaint("retried-50-times")

    answers = post_all(api_url, token, [body] * 50)

    assert sorted(a.status_code for a in answers) == [200] * 49 + [202], [a.text for a in answers]
    assert len({a.json()["event_id"] for a in answers}) == 1
    assert len({a.json()["ledger_no"] for a in answers}) == 1
    assert sum(a.json()["duplicate"] is False for a in answers) == 1
    with unit_of_work(engine) as s:
        rows = s.exec(select(Event).where(Event.external_id == "retried-50-times")).all()
    assert len(rows) == 1
    assert rows[0].id == answers[0].json()["event_id"]
    assert db_counts(engine)["counters"] == {("TS", this_year()): 1}


def test_concurrent_posts_of_one_key_with_different_content_store_one_and_refuse_the_rest(
    engine: sa.Engine, api_url: str, token: str
) -> None:
    bodies = [factories.complaint("contested", summary=f"第{i}种说法。") for i in range(20)]

    answers = post_all(api_url, token, bodies)

    assert sorted(a.status_code for a in answers) == [202] + [409] * 19
    winner = next(a.json() for a in answers if a.status_code == 202)
    assert all(
        a.json()["error"]["details"]["event_id"] == winner["event_id"]
        for a in answers
        if a.status_code == 409
    )
    assert db_counts(engine)["events"] == 1


def test_ledger_numbers_are_sequential_per_kind_and_a_duplicate_consumes_none(
    engine: sa.Engine, api_url: str, token: str
) -> None:
    year = this_year()
    clue_a = factories.clue()
    numbers = [
        post_event(api_url, token, clue_a).json()["ledger_no"],
        post_event(api_url, token, factories.complaint()).json()["ledger_no"],
        post_event(api_url, token, clue_a).json()["ledger_no"],  # duplicate
        post_event(api_url, token, factories.enterprise_request()).json()["ledger_no"],
        post_event(api_url, token, factories.clue()).json()["ledger_no"],
        post_event(api_url, token, factories.complaint()).json()["ledger_no"],
    ]
    # refusals consume no number either: a conflict, a schema error, a forbidden kind
    assert (
        post_event(api_url, token, {**clue_a, "payload": {**clue_a["payload"], "summary": "改"}}).status_code
        == 409
    )
    assert post_event(api_url, token, {**factories.clue(), "payload": {}}).status_code == 422
    clue_only = factories.source_token(engine, kinds=("clue",))
    assert post_event(api_url, clue_only, factories.complaint()).status_code == 403
    numbers.append(post_event(api_url, token, factories.clue()).json()["ledger_no"])
    numbers.append(post_event(api_url, clue_only, factories.clue()).json()["ledger_no"])

    assert numbers == [
        f"XS-{year}-000001",
        f"TS-{year}-000001",
        f"XS-{year}-000001",
        f"QY-{year}-000001",
        f"XS-{year}-000002",
        f"TS-{year}-000002",
        f"XS-{year}-000003",
        f"XS-{year}-000004",  # one counter per kind and year, whichever source publishes
    ]


def test_the_ledger_year_is_the_year_of_receipt_in_shanghai_time(api_url: str, token: str) -> None:
    year = this_year()

    def ledger(received_at: str | None) -> str:
        body = factories.complaint()
        if received_at:
            body["received_at"] = received_at
        r = post_event(api_url, token, body)
        assert r.status_code == 202, r.text
        no: str = r.json()["ledger_no"]
        return no

    assert ledger("2025-06-01T10:00:00+08:00") == "TS-2025-000001"
    assert ledger("2025-12-31T15:59:59+00:00") == "TS-2025-000002"  # 23:59:59 in Shanghai
    assert ledger("2025-12-31T16:00:00+00:00") == "TS-2026-000001"  # already 1 January in Shanghai
    assert ledger(None) == f"TS-{year}-{'000002' if year == 2026 else '000001'}"
    assert ledger("2024-02-29T12:00:00-05:00") == "TS-2024-000001"


def test_concurrent_distinct_events_get_distinct_consecutive_numbers(
    engine: sa.Engine, api_url: str, token: str
) -> None:
    year = this_year()

    answers = post_all(api_url, token, [factories.clue() for _ in range(40)])

    assert [a.status_code for a in answers] == [202] * 40, [a.text for a in answers if a.status_code != 202]
    numbers = sorted(a.json()["ledger_no"] for a in answers)
    assert numbers == [f"XS-{year}-{n:06d}" for n in range(1, 41)]
    assert db_counts(engine)["counters"] == {("XS", year): 40}


def test_concurrent_events_of_several_kinds_number_each_kind_without_gaps(
    engine: sa.Engine, api_url: str, token: str
) -> None:
    year = this_year()
    bodies = [factories.clue() for _ in range(10)]
    bodies += [factories.complaint() for _ in range(10)]
    bodies += [factories.enterprise_request() for _ in range(10)]
    bodies += bodies[:5] + bodies[10:15]  # concurrent retries of some of them

    answers = post_all(api_url, token, bodies)

    assert sorted(a.status_code for a in answers) == [200] * 10 + [202] * 30
    fresh = [a.json()["ledger_no"] for a in answers if a.status_code == 202]
    for prefix in ("XS", "TS", "QY"):
        assert sorted(n for n in fresh if n.startswith(prefix)) == [
            f"{prefix}-{year}-{n:06d}" for n in range(1, 11)
        ]
    assert db_counts(engine)["events"] == 30
