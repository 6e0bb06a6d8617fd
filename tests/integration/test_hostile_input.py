"""Hostile or broken input: refused with a 4xx, never a 500, and never blocking other events."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.db import unit_of_work
from dispatcher.enums import EventStatus
from dispatcher.models import Event, Notification, Task
from dispatcher.org.model import Org
from tests import factories
from tests.integration.conftest import auth, get_event_row, post_event

LEDGER_NO = re.compile(r"^(XS|TS|QY)-\d{4}-\d{6}$")


def test_deeply_nested_json_is_a_client_error_not_a_500(api_url: str, token: str) -> None:
    r = httpx.post(
        f"{api_url}/api/v1/events",
        content=b"[" * 100_000 + b"]" * 100_000,  # 195 KiB: under the size limit
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text


@pytest.mark.parametrize(
    "received_at", ["0001-01-01T00:00:00+08:00", "0001-01-01T00:00:00-08:00", "1999-12-31T23:59:59+08:00"]
)
def test_a_received_at_before_2000_is_refused(api_url: str, token: str, received_at: str) -> None:
    r = post_event(api_url, token, {**factories.complaint(), "received_at": received_at})
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["error"]["details"]] == ["received_at"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (factories.complaint("abc\u0000def"), "external_id"),
        (factories.complaint(township="桃\u0000源镇"), "payload.township"),
        (factories.clue(subject={"name": "赵\u0000", "rank": "village"}), "payload.subject.name"),
    ],
)
def test_a_nul_character_anywhere_is_refused_with_its_path(
    engine: sa.Engine, api_url: str, token: str, body: dict[str, object], path: str
) -> None:
    r = post_event(api_url, token, body)
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["error"]["details"]] == [path]
    with unit_of_work(engine) as s:
        assert s.exec(sa.select(sa.func.count()).select_from(Event)).one()[0] == 0  # type: ignore[call-overload]


def test_one_unroutable_event_goes_to_triage_without_blocking_the_others_in_its_message(
    engine: sa.Engine, loaded_org: Org, offline_broker_api_url: str, token: str, broker: object
) -> None:
    from workers.actors import route_events

    r = httpx.post(
        f"{offline_broker_api_url}/api/v1/events:batch",
        json={"events": [factories.complaint(), factories.complaint()]},
        headers=auth(token),
    )
    bad, good = (item["event_id"] for item in r.json()["results"])
    with unit_of_work(engine) as s:  # a payload the rules cannot read (as a bug or bad data would leave it)
        event = s.get(Event, bad)
        assert event is not None
        event.payload = {**event.payload, "township": {"not": "a string"}}
        s.add(event)

    route_events([bad, good])  # one message, as the API and the relay send them

    assert get_event_row(engine, good).status == EventStatus.dispatched
    assert get_event_row(engine, bad).status == EventStatus.triage
    with unit_of_work(engine) as s:
        task = s.exec(sa.select(Task).where(Task.event_id == bad)).scalar_one()  # type: ignore[call-overload]
        assert task.rule == "routing_error"
        assert "需人工分办" in task.reason and "not" not in task.reason


def test_an_event_whose_task_cannot_be_stored_goes_to_triage_and_the_rest_of_its_message_is_routed(
    engine: sa.Engine,
    loaded_org: Org,
    offline_broker_api_url: str,
    token: str,
    broker: object,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Routing stores a message's tasks together (issue 13); a failure past the rules (here a bug
    in the notification of one task) makes it route that message again one event at a time."""
    import dispatcher.routing.dispatch as dispatch
    from workers.actors import route_events

    r = httpx.post(
        f"{offline_broker_api_url}/api/v1/events:batch",
        json={"events": [factories.complaint(), factories.complaint(), factories.complaint()]},
        headers=auth(token),
    )
    bad, *good = (item["event_id"] for item in r.json()["results"])
    real = dispatch.add_notification

    def broken(session: Any, org: Any, **kw: Any) -> Any:
        if kw["task"].event_id == bad:
            raise KeyError("a bug")
        return real(session, org, **kw)

    monkeypatch.setattr(dispatch, "add_notification", broken)
    route_events([bad, *good])

    assert "one at a time" in caplog.text
    assert [get_event_row(engine, e).status for e in good] == [EventStatus.dispatched] * 2
    assert get_event_row(engine, bad).status == EventStatus.triage
    with unit_of_work(engine) as s:
        tasks = {t.event_id: t for t in s.exec(select(Task)).all()}
        assert len(tasks) == 3 and tasks[bad].rule == "routing_error"
        notified = s.exec(select(Notification.task_id)).all()
        assert sorted(n or 0 for n in notified) == sorted(tasks[e].id or 0 for e in good)


# --- issue 11: what a hostile test found ----------------------------------------------------------


def nested(levels: int) -> str:
    """JSON text of an object nested ``levels`` deep (built as text: encoders recurse too)."""
    return '{"a":' * levels + '"x"' + "}" * levels


@pytest.mark.parametrize("levels", [33, 260, 500, 989, 5000])
def test_json_nested_hundreds_of_levels_deep_is_400_on_every_route_that_reads_json(
    api_url: str, token: str, engine: sa.Engine, loaded_org: Org, levels: int
) -> None:
    from tests.integration.tasking import make_user

    staff = make_user(engine, "deng.xiaoming", "DXZ-JW", "handler")
    deep = nested(levels)
    complaint = json.dumps(factories.complaint())[:-2] + ', "x": ' + deep + "}}"
    with httpx.Client(base_url=api_url, timeout=30) as http:
        bodies = [
            ("/api/v1/events", auth(token), complaint),
            ("/api/v1/events:batch", auth(token), '{"events": [' + deep + "]}"),
            ("/api/v1/events/nope/feedback", auth(token), '{"rating": "satisfied", "comment": ' + deep + "}"),
            ("/api/v1/tasks/1/submit", staff, '{"outcome": ' + deep + "}"),
            (
                "/api/v1/tasks/1/decisions",
                staff,
                '{"text": "t", "owner_unit": "X", "about_task_id": ' + deep + "}",
            ),
        ]
        for path, headers, body in bodies:
            r = http.post(
                path, content=body.encode(), headers={**headers, "Content-Type": "application/json"}
            )
            assert r.status_code < 500, (path, levels, r.status_code, r.text[:200])
            assert r.headers.get("connection") != "close", path  # the connection stays usable
        assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tasks/9223372036854775808",
        "/api/v1/tasks/99999999999999999999999999999999",
        "/api/v1/tasks?offset=9223372036854775808",
        "/api/v1/tasks?limit=99999999999999999999",
        "/api/v1/tasks/9223372036854775808/extensions/1/approve",
        "/api/v1/reports/9223372036854775808",
        "/api/v1/reports/9223372036854775808.xlsx",
        "/tasks/9223372036854775808",
    ],
)
def test_integers_beyond_64_bits_in_a_path_or_query_are_refused_not_overflowed(
    api_url: str, engine: sa.Engine, loaded_org: Org, path: str
) -> None:
    from tests.integration.tasking import make_user

    headers = make_user(engine, "tang.wenbo", "BGS", "admin")
    method = httpx.post if path.endswith("approve") else httpx.get
    r = method(f"{api_url}{path}", headers=headers, timeout=30)
    assert r.status_code in (404, 422) or (path.startswith("/tasks/") and r.status_code in (303, 422)), r.text
    assert r.status_code < 500


def test_a_form_with_unicode_digits_or_a_huge_number_is_refused_politely(
    api_url: str, engine: sa.Engine, loaded_org: Org
) -> None:
    from tests.web_helpers import add_staff, route_now, web_login

    _, password = add_staff(engine, loaded_org, "deng.xiaoming", "DXZ-JW", "handler")
    task = route_now(
        engine,
        __import__("tests.web_helpers", fromlist=["publish"]).publish(
            api_url, factories.source_token(engine)
        ),
    )
    client, csrf = web_login(api_url, "deng.xiaoming", password)
    client.post(f"/tasks/{task}/moves/accept", data={"csrf_token": csrf})
    for days, version in (("²", "²"), ("9" * 5000, "9" * 5000), ("٣", "1"), ("-5", "-1")):
        r = client.post(
            f"/tasks/{task}/extend",
            data={"csrf_token": csrf, "days": days, "reason": "x", "version": version},
        )
        assert r.status_code == 303, (days[:5], r.status_code, r.text[:200])
        r = client.post(
            f"/tasks/{task}/moves/progress", data={"csrf_token": csrf, "note": "n", "version": version}
        )
        assert r.status_code == 303
    assert client.get(f"/tasks/{task}").status_code == 200


def test_a_body_over_the_limit_is_413_even_without_a_token(api_url: str) -> None:
    big = b"{" + b" " * (300 * 1024) + b"}"
    r = httpx.post(f"{api_url}/api/v1/events", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text

    def chunks() -> object:  # no Content-Length: counted while read
        for _ in range(300):
            yield b" " * 1024

    r = httpx.post(f"{api_url}/api/v1/events", content=chunks(), headers={"Content-Type": "application/json"})  # type: ignore[arg-type]
    assert r.status_code == 413, r.text


def test_received_at_in_2000_by_its_offset_but_1999_in_the_ledgers_timezone_is_refused(
    api_url: str, token: str
) -> None:
    r = post_event(api_url, token, {**factories.complaint(), "received_at": "2000-01-01T00:00:00+14:00"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["path"] == "received_at"


def test_a_wrong_method_says_which_are_allowed(api_url: str) -> None:
    r = httpx.delete(f"{api_url}/api/v1/events")
    assert r.status_code == 405 and "POST" in r.headers.get("allow", ""), (r.status_code, r.headers)
