"""Extensions (延期) over the staff API: request, approve, refuse, every refusal (issue 4 item 5).

A handler of the handling unit asks while the resolve clock runs; the zone leader (or an admin)
decides; the requester's platform reads the outcome on ``GET /events/{id}``. Real HTTP against
the test's database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from dispatcher.db import unit_of_work
from dispatcher.models import Extension, SupervisionOrder
from dispatcher.org.model import Org
from dispatcher.supervision.deadlines import extend
from dispatcher.supervision.policy import DEFAULT_POLICY
from dispatcher.wallclock import utcnow
from tests import factories
from tests.integration.tasking import Desk, error_of, open_desk

HANDLER, SECOND_HANDLER = "deng.xiaoming", "wei.chunyan"  # 大兴镇纪委 (DXZ-JW)
VERIFIER = "fang.liqun"  # 第一纪检监察室 (SHI1)
LEADER = "han.zhiyuan"  # 第一协作区组长 (SHI1 is the zone's room)
ROOM_STAFF = "he.jiaming"  # a handler of SHI1: reads the room's notifications
OTHER_LEADER = "qiao.mingde"  # 第二协作区组长
OTHER_UNIT = "tao.li"  # 丰德乡纪委, same zone, not the handling unit
ADMIN = "tang.wenbo"
REASON = "需调取三年补贴发放台账，涉及多个部门"


@pytest.fixture
def desk(engine: sa.Engine, loaded_org: Org, api_url: str) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


def accepted(desk: Desk) -> int:
    task = desk.task()
    desk.ok(task, "accept", HANDLER)
    return task


def ask(desk: Desk, task: int, login: str = HANDLER, **body: Any) -> httpx.Response:
    return desk.move(task, "extend", login, **({"reason": REASON, "days": 10} | body))


def decide(
    desk: Desk, task: int, extension: int, decision: str, login: str = LEADER, **body: Any
) -> httpx.Response:
    return desk.http.post(
        f"{desk.api}/api/v1/tasks/{task}/extensions/{extension}/{decision}",
        json=body or None,
        headers=desk.who(login),
    )


def pending_id(detail: dict[str, Any]) -> int:
    (pending,) = [x for x in detail["extensions"] if x["status"] == "pending"]
    ext_id: int = pending["id"]
    return ext_id


def extension_rows(desk: Desk, task: int) -> list[Extension]:
    with unit_of_work(desk.engine) as s:
        return list(s.exec(select(Extension).where(Extension.task_id == task)).all())


def moves(desk: Desk, task: int) -> list[tuple[str, str | None, str]]:
    return [(h.move, h.from_status, h.to_status) for h in desk.history(task)]


# --- the happy paths ---------------------------------------------------------------------


def test_a_handler_asks_and_the_zone_leader_approves_pushing_the_resolve_deadline(desk: Desk) -> None:
    task = accepted(desk)
    before = desk.row(task)
    assert before.resolve_due_at is not None

    detail = ask(desk, task).json()

    assert detail["status"] == "accepted" and detail["version"] == before.version + 1
    (row,) = extension_rows(desk, task)
    assert (row.status, row.days, row.reason, row.requested_by) == ("pending", 10, REASON, HANDLER)
    assert detail["extensions"][0]["status"] == "pending" and detail["may_request_extension"] is False
    assert moves(desk, task)[-1] == ("extend", "accepted", "accepted")
    assert desk.row(task).resolve_due_at == before.resolve_due_at  # nothing moves until approved
    room = [n for n in desk.notifications(ROOM_STAFF) if n["task_id"] == task]
    assert [n["kind"] for n in room] == ["extension_requested"] and "10" in room[0]["message"]
    assert desk.get(task, LEADER).json()["may_decide_extension"] is True

    approved = decide(desk, task, row.id or 0, "approve", note="同意延期")

    assert approved.status_code == 200, approved.text
    after = desk.row(task)
    expected = extend(before.resolve_due_at, 10, DEFAULT_POLICY.extension.kind, DEFAULT_POLICY.frame())
    assert after.resolve_due_at == expected == before.resolve_due_at + timedelta(days=10)
    assert after.extensions_used == 1 and after.status == "accepted" and after.deadline_state == "on_time"
    assert after.next_check_at is not None and after.next_check_at > before.next_check_at  # type: ignore[operator]
    (row,) = extension_rows(desk, task)
    assert (row.status, row.decided_by, row.note) == ("approved", LEADER, "同意延期")
    assert row.decided_at is not None
    assert moves(desk, task)[-1] == ("extend_approve", "accepted", "accepted")
    assert "同意延期" in desk.history(task)[-1].note
    handler = [n for n in desk.notifications(HANDLER) if n["task_id"] == task]
    assert [n["kind"] for n in handler if n["kind"].startswith("extension")] == ["extension_approved"]
    shown = approved.json()
    assert shown["resolve_due_at"] == expected.isoformat() and shown["deadline"]["due_at"] is not None
    assert datetime.fromisoformat(shown["deadline"]["due_at"]) == expected


def test_a_refusal_moves_nothing_and_the_handler_may_ask_again(desk: Desk) -> None:
    task = accepted(desk)
    before = desk.row(task)
    ext = pending_id(ask(desk, task).json())

    refused = decide(desk, task, ext, "refuse", note="理由不充分")

    assert refused.status_code == 200, refused.text
    after = desk.row(task)
    assert (after.resolve_due_at, after.extensions_used, after.deadline_state, after.next_check_at) == (
        before.resolve_due_at, 0, before.deadline_state, before.next_check_at,
    )  # fmt: skip
    (row,) = extension_rows(desk, task)
    assert (row.status, row.note, row.decided_by) == ("refused", "理由不充分", LEADER)
    assert moves(desk, task)[-2:] == [
        ("extend", "accepted", "accepted"),
        ("extend_refuse", "accepted", "accepted"),
    ]
    kinds = [n["kind"] for n in desk.notifications(HANDLER) if n["task_id"] == task]
    assert "extension_refused" in kinds
    assert refused.json()["may_request_extension"] is False  # the leader's view
    assert desk.get(task, HANDLER).json()["may_request_extension"] is True
    assert ask(desk, task, days=5).status_code == 200  # a refused request does not count


def test_an_admin_may_decide_too(desk: Desk) -> None:
    task = accepted(desk)
    ext = pending_id(ask(desk, task, days=3).json())

    assert decide(desk, task, ext, "approve", login=ADMIN).status_code == 200
    assert desk.row(task).extensions_used == 1


def test_an_overdue_task_is_back_on_time_when_the_new_deadline_is_ahead(desk: Desk) -> None:
    task = accepted(desk)
    now = utcnow()
    desk.set(task, resolve_due_at=now - timedelta(days=2), deadline_state="overdue")
    assert desk.get(task, HANDLER).json()["deadline"]["state"] == "overdue"
    ext = pending_id(ask(desk, task, days=30).json())

    decide(desk, task, ext, "approve")

    after = desk.row(task)
    assert after.deadline_state == "on_time" and after.escalation_level == 0
    assert after.resolve_due_at is not None and after.resolve_due_at > now + timedelta(days=27)
    assert after.next_check_at is not None and after.next_check_at > now
    assert desk.get(task, HANDLER).json()["deadline"]["state"] == "on_time"


def test_a_short_extension_of_an_overdue_task_leaves_it_overdue(desk: Desk) -> None:
    task = accepted(desk)
    desk.set(task, resolve_due_at=utcnow() - timedelta(days=5), deadline_state="overdue")
    ext = pending_id(ask(desk, task, days=2).json())

    decide(desk, task, ext, "approve")

    assert desk.row(task).deadline_state == "overdue"


def escalated(desk: Desk, days_ago: int) -> tuple[int, datetime]:
    """An accepted task four days past its deadline, taken up the ladder once."""
    task = accepted(desk)
    now = utcnow()
    due = now - timedelta(days=days_ago)
    desk.set(task, resolve_due_at=due, deadline_state="escalated", escalation_level=1)
    with unit_of_work(desk.engine) as s:
        for step in ("resolve.warning", "resolve.overdue", "resolve.escalated.1"):
            s.add(SupervisionOrder(task_id=task, step=step, late_unit="DXZ-JW", deadline=due,
                                   days_over=days_ago, notified="zone_leader", created_at=now))  # fmt: skip
    return task, now


def test_an_extension_whose_deadline_lies_ahead_lifts_the_escalation_in_a_new_run_of_the_clock(
    desk: Desk,
) -> None:
    task, now = escalated(desk, days_ago=4)
    ext = pending_id(ask(desk, task, days=30).json())

    detail = decide(desk, task, ext, "approve").json()

    after = desk.row(task)
    # DESIGN §6: an extended task keeps the escalation it reached unless its new deadline lies ahead
    assert (after.deadline_state, after.escalation_level, after.extensions_used) == ("on_time", 0, 1)
    # the extended deadline is a new run of the resolve clock (resolve#2.*): its own warning
    # comes before the new deadline, and will be taken once like every step
    assert after.resolve_run == 2 and after.next_check_at is not None and after.resolve_due_at is not None
    assert now < after.next_check_at < after.resolve_due_at
    assert [o["step"] for o in detail["supervision_orders"]] == [
        "resolve.warning", "resolve.overdue", "resolve.escalated.1",
    ]  # fmt: skip
    assert detail["deadline"]["state"] == "on_time"


def test_an_extension_that_leaves_the_deadline_in_the_past_keeps_the_escalation(desk: Desk) -> None:
    task, _ = escalated(desk, days_ago=20)

    decide(desk, task, pending_id(ask(desk, task, days=5).json()), "approve")

    after = desk.row(task)
    assert after.resolve_due_at is not None and after.resolve_due_at < utcnow()
    assert (after.deadline_state, after.escalation_level) == ("escalated", 1)


def test_a_rejected_or_reopened_task_may_be_extended(desk: Desk) -> None:
    task = accepted(desk)
    desk.ok(task, "submit", HANDLER, outcome={"resolved": True, "reply": "已办结"})
    desk.ok(task, "reject", VERIFIER, reason="答复不完整")

    ext = pending_id(ask(desk, task).json())

    assert decide(desk, task, ext, "approve").status_code == 200
    assert desk.row(task).status == "rejected" and desk.row(task).extensions_used == 1


# --- the requester is told -----------------------------------------------------------------


def test_the_source_reads_the_latest_extension_and_the_current_deadline_on_the_event(desk: Desk) -> None:
    task = accepted(desk)
    event = desk.event_of(task)

    def state() -> dict[str, Any]:
        r = desk.http.get(f"{desk.api}/api/v1/events/{event}", headers=desk.source)
        assert r.status_code == 200, r.text
        shown: dict[str, Any] = r.json()["task"]
        return shown

    first = state()
    assert first["extension"] is None
    assert first["resolve_due_at"] == desk.row(task).resolve_due_at.isoformat()  # type: ignore[union-attr]

    ext = pending_id(ask(desk, task, days=7).json())
    assert state()["extension"] == {"days": 7, "status": "pending", "decided_at": None}

    decide(desk, task, ext, "approve")
    told = state()
    row = desk.row(task)
    assert told["extension"]["days"] == 7 and told["extension"]["status"] == "approved"
    assert told["extension"]["decided_at"] is not None
    assert told["resolve_due_at"] == row.resolve_due_at.isoformat()  # type: ignore[union-attr]
    assert "reason" not in told["extension"]  # the handler's reason stays internal


# --- refusals ----------------------------------------------------------------------------


def test_a_second_request_while_one_is_pending_is_refused_with_409(desk: Desk) -> None:
    task = accepted(desk)
    ask(desk, task)

    error = error_of(ask(desk, task, login=SECOND_HANDLER), 409)

    assert error["details"]["extension"] == "pending"
    assert len(extension_rows(desk, task)) == 1


def test_no_more_than_max_count_extensions_are_granted(desk: Desk) -> None:
    task = accepted(desk)
    decide(desk, task, pending_id(ask(desk, task).json()), "approve")

    error = error_of(ask(desk, task), 409)

    assert error["details"]["extension"] == "max_count" and error["details"]["max_count"] == 1
    assert desk.row(task).extensions_used == 1


@pytest.mark.parametrize(
    "body",
    [{"days": 0}, {"days": -3}, {"days": 31}, {"days": None}, {"reason": None}, {"reason": "   "}],
    ids=["zero", "negative", "over-max", "no-days", "no-reason", "blank-reason"],
)
def test_a_bad_length_or_no_reason_is_refused_with_422(desk: Desk, body: dict[str, Any]) -> None:
    task = accepted(desk)

    error = error_of(ask(desk, task, **body), 422)

    assert error["code"] == "validation_error"
    assert {d["path"] for d in error["details"]} & {"days", "reason"}
    assert extension_rows(desk, task) == [] and moves(desk, task)[-1][0] == "accept"


def test_unknown_fields_and_wrong_types_are_refused_with_422(desk: Desk) -> None:
    task = accepted(desk)
    error_of(ask(desk, task, until="2099-01-01"), 422)
    error_of(ask(desk, task, days="ten"), 422)


@pytest.mark.parametrize("status", ["dispatched", "submitted", "suspended"])
def test_no_extension_is_asked_when_the_resolve_clock_does_not_run(desk: Desk, status: str) -> None:
    task = desk.task()
    if status != "dispatched":
        desk.ok(task, "accept", HANDLER)
    if status == "submitted":
        desk.ok(task, "submit", HANDLER, outcome={"resolved": True, "reply": "已办结"})
    if status == "suspended":
        desk.ok(task, "suspend", HANDLER, reason="听证")

    error = error_of(ask(desk, task), 409)

    assert error["details"] == {"current": status, "extension": "clock_not_running"}


def test_who_may_ask(desk: Desk) -> None:
    task = accepted(desk)
    error_of(ask(desk, task, login=OTHER_UNIT), 404)  # another unit's task is not acknowledged
    error_of(ask(desk, task, login=OTHER_LEADER), 404)
    error_of(ask(desk, task, login=VERIFIER), 403)  # sees it as the verifier, but does not handle it
    error_of(ask(desk, task, login=LEADER), 403)  # the leader decides, does not ask
    desk.set(task, recused_logins=[SECOND_HANDLER])
    assert "回避" in error_of(ask(desk, task, login=SECOND_HANDLER), 403)["message"]
    assert extension_rows(desk, task) == []


def test_who_may_decide(desk: Desk) -> None:
    task = accepted(desk)
    ext = pending_id(ask(desk, task).json())

    error_of(decide(desk, task, ext, "approve", login=HANDLER), 403)
    error_of(decide(desk, task, ext, "approve", login=VERIFIER), 403)
    error_of(decide(desk, task, ext, "refuse", login=OTHER_LEADER), 404)
    error_of(decide(desk, task, ext, "approve", login=OTHER_UNIT), 404)
    desk.set(task, recused_logins=[LEADER])
    error_of(decide(desk, task, ext, "approve", login=LEADER), 403)
    assert extension_rows(desk, task)[0].status == "pending" and desk.row(task).extensions_used == 0


def test_deciding_twice_an_unknown_or_another_tasks_extension_is_refused(desk: Desk) -> None:
    task, other = accepted(desk), accepted(desk)
    ext = pending_id(ask(desk, task).json())
    error_of(decide(desk, other, ext, "approve"), 404)  # not this task's
    error_of(decide(desk, task, 999_999, "approve"), 404)
    decide(desk, task, ext, "refuse")

    error = error_of(decide(desk, task, ext, "approve"), 409)

    assert error["details"]["extension"] == "refused"
    assert desk.row(task).extensions_used == 0


def test_a_stale_version_is_refused_with_409(desk: Desk) -> None:
    task = accepted(desk)
    seen = desk.row(task).version
    ext = pending_id(ask(desk, task, version=seen).json())

    error = error_of(decide(desk, task, ext, "approve", version=seen), 409)  # the request bumped it

    assert error["details"]["version"] == seen + 1
    assert decide(desk, task, ext, "approve", version=seen + 1).status_code == 200


def test_approving_after_the_task_was_submitted_is_refused_but_refusing_is_not(desk: Desk) -> None:
    task = accepted(desk)
    ext = pending_id(ask(desk, task).json())
    desk.ok(task, "submit", HANDLER, outcome={"resolved": True, "reply": "已办结"})

    assert error_of(decide(desk, task, ext, "approve"), 409)["details"]["extension"] == "clock_not_running"
    assert decide(desk, task, ext, "refuse").status_code == 200


def test_two_concurrent_requests_make_one_extension(desk: Desk) -> None:
    task = accepted(desk)
    desk.who(SECOND_HANDLER)
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def one(login: str) -> None:
        with httpx.Client(timeout=30) as http:
            barrier.wait()
            r = http.post(
                f"{desk.api}/api/v1/tasks/{task}/extend",
                json={"reason": REASON, "days": 5},
                headers=desk.who(login),
            )
            answers.append(r.status_code)

    threads = [threading.Thread(target=one, args=(login,)) for login in (HANDLER, SECOND_HANDLER)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(answers) == [200, 409]
    assert len(extension_rows(desk, task)) == 1
    assert [m for m, _, _ in moves(desk, task)].count("extend") == 1


def test_two_concurrent_decisions_decide_once(desk: Desk) -> None:
    task = accepted(desk)
    ext = pending_id(ask(desk, task).json())
    desk.who(ADMIN)
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def one(login: str, decision: str) -> None:
        with httpx.Client(timeout=30) as http:
            barrier.wait()
            r = http.post(
                f"{desk.api}/api/v1/tasks/{task}/extensions/{ext}/{decision}", headers=desk.who(login)
            )
            answers.append(r.status_code)

    threads = [threading.Thread(target=one, args=a) for a in ((LEADER, "approve"), (ADMIN, "refuse"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(answers) == [200, 409]
    (row,) = extension_rows(desk, task)
    assert desk.row(task).extensions_used == (1 if row.status == "approved" else 0)
    assert len([m for m, _, _ in moves(desk, task) if m.startswith("extend_")]) == 1


def test_the_extension_routes_need_credentials(desk: Desk) -> None:
    task = accepted(desk)
    ext = pending_id(ask(desk, task).json())
    for path in (f"/tasks/{task}/extend", f"/tasks/{task}/extensions/{ext}/approve",
                 f"/tasks/{task}/extensions/{ext}/refuse"):  # fmt: skip
        for headers in ({}, desk.source):
            r = desk.http.post(f"{desk.api}/api/v1{path}", json={"reason": "x", "days": 1}, headers=headers)
            assert error_of(r, 401)["code"] == "unauthorized"
    assert extension_rows(desk, task)[0].status == "pending"


def test_an_enterprise_request_is_extended_by_its_own_zone_leader(desk: Desk) -> None:
    """An enterprise request's handler (人社局) sits outside the zones; its task's zone leader decides."""
    task = desk.task(factories.enterprise_request())
    row = desk.row(task)
    desk.ok(task, "accept", "chai.xiaofeng")
    r = ask(desk, task, login="chai.xiaofeng")
    assert r.status_code == 200, r.text
    leader = {"Z1": LEADER, "Z2": OTHER_LEADER}.get(row.zone_code or "", ADMIN)
    assert decide(desk, task, pending_id(r.json()), "approve", login=leader).status_code == 200
