"""Personal identity (reporter, complainant, contact) is never stored in plaintext."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa

from dispatcher.org.model import Org
from dispatcher.security import IdentityBox
from tests import factories
from tests.conftest import TEST_SECRET
from tests.integration.conftest import auth, db_counts, get_event_row, post_event
from tests.support import wait_for

REPORTER: dict[str, Any] = {"name": "欧阳明远", "phone": "13600001234", "anonymous": False}
ANONYMOUS: dict[str, Any] = {"name": "司马静怡", "phone": "13600005678", "anonymous": True}
COMPLAINANT: dict[str, Any] = {"name": "上官秀兰", "phone": "18911112345"}
CONTACT: dict[str, Any] = {"name": "诸葛经理", "phone": "15099998888"}
SECRETS: list[str] = [
    str(p[f]) for p in (REPORTER, ANONYMOUS, COMPLAINANT, CONTACT) for f in ("name", "phone")
]


def needles(secret: str) -> set[str]:
    """The secret as text, and as it looks inside ASCII-escaped JSON (\\u6b27...)."""
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret).encode("unicode_escape").decode()[1:-1]}


def dump_database(engine: sa.Engine) -> dict[str, list[str]]:
    """Every row of every table (``SELECT *``), every value turned into text."""
    out: dict[str, list[str]] = {}
    tables = sa.inspect(engine).get_table_names()
    with engine.connect() as conn:
        for table in tables:
            rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()
            out[table] = [" | ".join(_text(v) for v in row) for row in rows]
    return out


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False) + json.dumps(value)
    return str(value)


def post_personal_events(api_url: str, token: str) -> list[dict[str, Any]]:
    bodies = [
        factories.clue(reporter=REPORTER),
        factories.clue(reporter=ANONYMOUS, subject={"name": "钱多多", "rank": "township"}),
        factories.complaint(complainant=COMPLAINANT, channel="hotline"),
        factories.enterprise_request(contact=CONTACT),
    ]
    answers = []
    for body in bodies:
        r = post_event(api_url, token, body)
        assert r.status_code == 202, r.text
        answers.append(r.json())
    # and once more through the batch route
    r = httpx.post(
        f"{api_url}/api/v1/events:batch",
        json={
            "events": [
                factories.complaint(complainant=COMPLAINANT),
                factories.enterprise_request(contact=CONTACT),
            ]
        },
        headers=auth(token),
    )
    assert r.json()["accepted"] == 2, r.text
    return answers


def test_no_name_or_phone_of_a_reporter_complainant_or_contact_is_stored_in_plaintext(
    engine: sa.Engine, loaded_org: Org, api_url: str, token: str, worker: object, broker: Any
) -> None:
    answers = post_personal_events(api_url, token)
    # routed too: tasks and history hold no identity either (the API sends routing messages from a
    # background thread after answering, so wait for the tasks, not for an empty queue)
    wait_for(lambda: db_counts(engine)["tasks"] == 6, timeout=15, what="the six events to be routed")
    broker.join("routing", timeout=15_000)

    dump = dump_database(engine)

    assert len(dump["events"]) == 6 and len(dump["tasks"]) == 6 and len(dump["task_history"]) == 6
    for table, rows in dump.items():
        for row in rows:
            for secret in SECRETS:
                for needle in needles(secret):
                    assert needle not in row, f"{secret!r} in plaintext in table {table}: {row[:300]}"
    # sanity: the dump does see the payload (the subject of a clue is not personal identity)
    assert any("钱多多" in row or "\\u94b1\\u591a\\u591a" in row for row in dump["events"])
    assert answers


def test_no_name_or_phone_travels_through_the_broker(
    engine: sa.Engine, api_url: str, token: str, redis_url: str, broker_namespace: str
) -> None:
    post_personal_events(api_url, token)  # no worker: the messages stay in Redis
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(f"{broker_namespace}*"))
        assert keys
        stored = ""
        for key in keys:
            if client.type(key) == b"hash":
                stored += " ".join(_text(v) for v in client.hgetall(key).values())
    finally:
        client.close()
    assert stored
    for secret in SECRETS:
        for needle in needles(secret):
            assert needle not in stored


def test_the_stored_identity_decrypts_back_with_the_secret_key(
    engine: sa.Engine, api_url: str, token: str
) -> None:
    reporter, anonymous, complainant, contact = post_personal_events(api_url, token)
    box = IdentityBox(TEST_SECRET)

    assert box.open(get_event_row(engine, reporter["event_id"]).identity_enc) == {"reporter": REPORTER}
    assert box.open(get_event_row(engine, anonymous["event_id"]).identity_enc) == {"reporter": ANONYMOUS}
    assert box.open(get_event_row(engine, complainant["event_id"]).identity_enc) == {
        "complainant": COMPLAINANT
    }
    assert box.open(get_event_row(engine, contact["event_id"]).identity_enc) == {"contact": CONTACT}
    row = get_event_row(engine, complainant["event_id"])
    assert "complainant" not in row.payload
    assert row.payload["channel"] == "hotline"


def test_an_event_without_identity_stores_none(engine: sa.Engine, api_url: str, token: str) -> None:
    body = factories.complaint()
    del body["payload"]["complainant"]
    event_id = post_event(api_url, token, body).json()["event_id"]
    assert get_event_row(engine, event_id).identity_enc is None


def test_the_identity_cannot_be_read_with_another_key(engine: sa.Engine, api_url: str, token: str) -> None:
    event_id = post_event(api_url, token, factories.complaint(complainant=COMPLAINANT)).json()["event_id"]
    sealed = get_event_row(engine, event_id).identity_enc
    with pytest.raises(ValueError, match="cannot be decrypted"):
        IdentityBox("another-secret-key-that-is-long-enough-xyz").open(sealed)


def test_reading_an_event_back_over_http_shows_no_identity(api_url: str, token: str) -> None:
    event_id = post_event(api_url, token, factories.complaint(complainant=COMPLAINANT)).json()["event_id"]
    state = httpx.get(f"{api_url}/api/v1/events/{event_id}", headers=auth(token)).text
    for secret in SECRETS:
        assert all(needle not in state for needle in needles(secret))
