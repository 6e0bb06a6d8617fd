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


def test_every_way_of_seeing_a_task_is_counted_once(desk: Desk, engine: sa.Engine) -> None:
    """The counts add up each way a person sees tasks apart (their zone, their unit as handler or
    verifier, assisting units, assisting people); a task seen several ways counts once."""
    from tests.integration.tasking import make_user

    headers = make_user(engine, "multi.role", "SHI1", "zone_leader")  # zone 1's leader …
    with unit_of_work(engine) as s:  # … who also handles and verifies for the first room
        s.execute(sa.text("UPDATE users SET roles = :r WHERE login = 'multi.role'"),
                  {"r": '["zone_leader", "handler", "verifier"]'})  # fmt: skip
    ids = desk.tasks([factories.complaint() for _ in range(8)])
    set_state(desk, ids[0], zone_code="Z9", handler_unit="SHI1")  # as handler only
    set_state(desk, ids[1], zone_code="Z9", verifier_unit="SHI1", handler_unit="X")  # as verifier only
    set_state(desk, ids[2], zone_code="Z9", handler_unit="X", verifier_unit="X", assisting_units='["SHI1"]')
    set_state(desk, ids[3], zone_code="Z9", handler_unit="X", verifier_unit="X",
              assisting_logins='["multi.role"]', status="closed")  # fmt: skip
    set_state(desk, ids[4], zone_code=None, handler_unit="SHI1", verifier_unit="SHI1", status="triage")
    set_state(desk, ids[5], zone_code="Z9", handler_unit="X", verifier_unit="X")  # not theirs
    # ids[6], ids[7]: zone 1 (大兴镇), verified by SHI1: seen two ways, counted once
    r = desk.http.get(f"{desk.api}/api/v1/tasks", params={"limit": 500}, headers=headers)
    body = r.json()
    assert {t["id"] for t in body["tasks"]} == set(ids) - {ids[5]}
    assert body["total"] == 7 and body["total_exact"] is True
    assert body["counts"] == {"dispatched": 5, "closed": 1, "triage": 1}


def test_a_search_with_too_many_matches_says_more_than(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond ``COUNT_CAP`` matches a search is not counted further: "more than", no counts per
    state, still the most urgent first; a state tab under the cap is counted exactly again."""
    from dispatcher.tasks import queries

    monkeypatch.setattr(queries, "COUNT_CAP", 3)
    ids = desk.tasks([factories.complaint(summary=f"水压不足第{i}次") for i in range(5)])
    set_state(desk, ids[3], deadline_state="escalated")
    set_state(desk, ids[4], status="closed")
    many = listing(desk, q="水压不足")
    assert (many["total"], many["total_exact"], many["counts"]) == (3, False, {})
    assert many["tasks"][0]["id"] == ids[3] and len(many["tasks"]) == 5
    closed = listing(desk, q="水压不足", status="closed")
    assert (closed["total"], closed["total_exact"], [t["id"] for t in closed["tasks"]]) == (1, True, [ids[4]])
    few = listing(desk, q="水压不足第1次")
    assert (few["total"], few["total_exact"], few["counts"]) == (1, True, {"dispatched": 1})
    assert listing(desk, kind="complaint")["total_exact"] is False
    assert (listing(desk, kind="clue")["total"], listing(desk, kind="clue")["total_exact"]) == (0, True)


def test_short_words_are_found_wherever_they_are_and_a_rare_one_quickly(desk: Desk) -> None:
    """One- and two-character words (no trigram): the characters and pairs of the summary."""
    wage = desk.task(factories.complaint(summary="工地拖欠农民工工资"))
    desk.task(factories.complaint())

    def found(q: str) -> set[int]:
        return {t["id"] for t in listing(desk, q=q)["tasks"]}

    assert found("工资") == {wage} and found("欠") == {wage} and found("龙虾") == set()
    assert found("拖欠 工资") == {wage} and found("工资 补贴") == set()
