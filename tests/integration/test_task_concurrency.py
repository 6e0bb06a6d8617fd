"""Two people acting on one task at once: exactly one wins, the other gets 409 (issue 3).

Real parallel HTTP requests: every request waits at a barrier in its own thread with its own
connection, so they reach the API together; on both backends.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dispatcher.org.model import Org
from tests import factories
from tests.integration.tasking import Desk, open_desk

HANDLERS = ("deng.xiaoming", "wei.chunyan")  # both of 大兴镇纪委 (DXZ-JW)
VERIFIERS = ("fang.liqun", "t.shi1.verifier")  # both of 第一纪检监察室 (SHI1)
OUTCOME = {"resolved": True, "reply": "已办结"}


@pytest.fixture
def desk(engine: sa.Engine, loaded_org: Org, api_url: str) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


Request = tuple[str, str, dict[str, str], dict[str, Any]]  # (key, url, headers, body)


def all_at_once(requests: list[Request]) -> dict[str, httpx.Response]:
    """Send every request in its own thread and connection, released together by a barrier."""
    barrier = threading.Barrier(len(requests))

    def send(request: Request) -> tuple[str, httpx.Response]:
        key, url, headers, body = request
        with httpx.Client(timeout=60) as client:
            client.get(url.rsplit("/", 1)[0], headers=headers)  # connect (and warm up) before the barrier
            barrier.wait(timeout=30)
            return key, client.post(url, json=body or None, headers=headers)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return dict(pool.map(send, requests))


def one_winner(responses: list[httpx.Response]) -> httpx.Response:
    """Exactly one of ``responses`` succeeded and every other one is a 409; returns the winner."""
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 1, 409: len(responses) - 1}, [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"]["code"] in ("conflict", "illegal_move"), r.text
    return next(r for r in responses if r.status_code == 200)


def test_two_handlers_accepting_the_same_tasks_at_once_each_task_has_exactly_one_winner(desk: Desk) -> None:
    tasks = desk.tasks([factories.complaint() for _ in range(20)])
    url: Callable[[int], str] = lambda task: f"{desk.api}/api/v1/tasks/{task}/accept"  # noqa: E731

    responses = all_at_once(
        [(f"{task}/{login}", url(task), desk.who(login), {}) for task in tasks for login in HANDLERS]
    )

    wins: Counter[str] = Counter()
    for task in tasks:
        winner = one_winner([responses[f"{task}/{login}"] for login in HANDLERS])
        login = winner.json()["handler_login"]
        wins[login] += 1
        row = desk.row(task)
        assert (row.status, row.handler_login, row.version) == ("accepted", login, 2)
        history = desk.history(task)
        assert [(h.move, h.actor) for h in history] == [("dispatch", "system:routing"), ("accept", login)]
    assert sum(wins.values()) == len(tasks)


def test_the_same_stale_version_sent_by_two_handlers_at_once_lets_exactly_one_progress_note_in(
    desk: Desk,
) -> None:
    tasks = desk.tasks([factories.complaint() for _ in range(10)])
    for task in tasks:
        desk.ok(task, "accept", HANDLERS[0])

    responses = all_at_once(
        [
            (f"{task}/{login}", f"{desk.api}/api/v1/tasks/{task}/progress", desk.who(login),
             {"note": f"{login} 的进展", "version": 2})
            for task in tasks
            for login in HANDLERS
        ]
    )  # fmt: skip

    for task in tasks:
        winner = one_winner([responses[f"{task}/{login}"] for login in HANDLERS])
        notes = [h.note for h in desk.history(task) if h.move == "progress"]
        assert notes == [winner.json()["history"][-1]["note"]]
        assert desk.row(task).version == 3


def test_a_verifier_verifying_while_another_rejects_leaves_exactly_one_decision(desk: Desk) -> None:
    tasks = desk.tasks([factories.complaint() for _ in range(10)])
    for task in tasks:
        desk.ok(task, "accept", HANDLERS[0])
        desk.ok(task, "submit", HANDLERS[0], outcome=OUTCOME)

    responses = all_at_once(
        [
            (f"{task}/verify", f"{desk.api}/api/v1/tasks/{task}/verify", desk.who(VERIFIERS[0]), {})
            for task in tasks
        ]
        + [
            (f"{task}/reject", f"{desk.api}/api/v1/tasks/{task}/reject", desk.who(VERIFIERS[1]),
             {"reason": "回复不完整"})
            for task in tasks
        ]
    )  # fmt: skip

    decided: Counter[str] = Counter()
    for task in tasks:
        winner = one_winner([responses[f"{task}/verify"], responses[f"{task}/reject"]])
        status = winner.json()["status"]
        assert status in ("awaiting_feedback", "rejected")
        decided[status] += 1
        row = desk.row(task)
        assert (row.status, row.version) == (status, 4)
        moves = [h.move for h in desk.history(task)]
        assert moves[:3] == ["dispatch", "accept", "submit"] and len(moves) == 4
        assert moves[3] == ("verify" if status == "awaiting_feedback" else "reject")
        kinds = [n.kind for n in desk.notification_rows(task)]
        assert kinds.count("rejected") == (status == "rejected")
    assert sum(decided.values()) == len(tasks)


def test_two_feedback_deliveries_for_one_task_at_once_leave_exactly_one_answer(desk: Desk) -> None:
    """The requester's platform posts "satisfied" and "unsatisfied" for the same event at once."""
    tasks = desk.tasks([factories.complaint() for _ in range(8)])
    for task in tasks:
        desk.ok(task, "accept", HANDLERS[0])
        desk.ok(task, "submit", HANDLERS[0], outcome=OUTCOME)
        desk.ok(task, "verify", VERIFIERS[0])

    responses = all_at_once(
        [
            (f"{task}/{rating}", f"{desk.api}/api/v1/events/{desk.event_of(task)}/feedback", desk.source,
             {"rating": rating})
            for task in tasks
            for rating in ("satisfied", "unsatisfied")
        ]
    )  # fmt: skip

    for task in tasks:
        winner = one_winner([responses[f"{task}/satisfied"], responses[f"{task}/unsatisfied"]])
        rating, status = winner.json()["rating"], winner.json()["status"]
        assert status == ("closed" if rating == "satisfied" else "reopened")
        row = desk.row(task)
        assert (row.status, row.feedback_rating) == (status, rating)
        assert [h.move for h in desk.history(task)][-2:] == [
            "verify",
            "feedback_close" if rating == "satisfied" else "feedback_reopen",
        ]
