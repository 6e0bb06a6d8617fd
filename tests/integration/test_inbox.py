"""The inbox (DESIGN §9, issue 11): most urgent first, a summary, counts per state, pages with a
total, search by ledger number or words of the summary — on SQLite (FTS5) and PostgreSQL (pg_trgm)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher.db import unit_of_work
from dispatcher.org.model import Org
from tests import factories
from tests.integration.tasking import Desk, open_desk

HANDLER, VERIFIER = "deng.xiaoming", "fang.liqun"


@pytest.fixture
def desk(api_url: str, engine: sa.Engine, loaded_org: Org) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


def listing(desk: Desk, login: str = HANDLER, **params: Any) -> dict[str, Any]:
    r = desk.http.get(f"{desk.api}/api/v1/tasks", params=params, headers=desk.who(login))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def set_state(desk: Desk, task: int, **columns: Any) -> None:
    with unit_of_work(desk.engine) as s:
        sets = ", ".join(f"{k} = :{k}" for k in columns)
        s.execute(sa.text(f"UPDATE tasks SET {sets} WHERE id = :id"), {**columns, "id": task})


def test_the_most_urgent_come_first(desk: Desk) -> None:
    normal, escalated, overdue, reopened, rejected, closed = desk.tasks(
        [factories.complaint() for _ in range(6)]
    )
    set_state(desk, escalated, deadline_state="escalated")
    set_state(desk, overdue, deadline_state="overdue")
    set_state(desk, reopened, status="reopened")
    set_state(desk, rejected, status="rejected")
    set_state(desk, closed, status="closed")
    order = [t["id"] for t in listing(desk)["tasks"]]
    assert order == [escalated, overdue, reopened, rejected, normal, closed]
    assert listing(desk, sort="newest")["tasks"][0]["id"] == closed
    assert desk.http.get(f"{desk.api}/api/v1/tasks?sort=random", headers=desk.who(HANDLER)).status_code == 422


def test_pages_carry_the_total_and_the_count_in_each_state(desk: Desk) -> None:
    ids = desk.tasks([factories.complaint() for _ in range(7)])
    set_state(desk, ids[0], status="closed")
    first = listing(desk, limit=3)
    assert first["total"] == 7 and len(first["tasks"]) == 3
    assert first["counts"] == {"dispatched": 6, "closed": 1}
    third = listing(desk, limit=3, offset=6)
    assert len(third["tasks"]) == 1
    only_closed = listing(desk, status="closed")
    assert only_closed["total"] == 1 and only_closed["counts"]["dispatched"] == 6  # every tab still counted
    assert {t["summary"] for t in first["tasks"]} == {"村民反映惠民补贴迟迟未发放到位。"}


def test_search_finds_a_ledger_number_or_words_of_the_summary(desk: Desk) -> None:
    road = desk.task(factories.complaint(summary="村道硬化工程质量差，路面开裂"))
    water = desk.task(factories.complaint(summary="自来水管网改造后水压不足"))
    money = desk.task(factories.complaint())  # 惠民补贴
    ledger = desk.row(water).ledger_no

    def found(q: str) -> set[int]:
        return {t["id"] for t in listing(desk, q=q)["tasks"]}

    assert found(ledger) == {water}
    assert found(ledger[-6:]) == {water}  # part of the number
    assert found("路面开裂") == {road}  # four characters
    assert found("水压") == {water}  # two characters (shorter than a trigram)
    assert found("补贴 未发放") == {money}  # every word required
    assert found("补贴 水压") == set()
    assert found("100%_") == set()  # wildcards are literal
    assert listing(desk, q="水压")["total"] == 1
    # what the searcher may not see stays out of the results
    other = listing(desk, login="xu.dongsheng", q=ledger)
    assert other["tasks"] == [] and other["total"] == 0
