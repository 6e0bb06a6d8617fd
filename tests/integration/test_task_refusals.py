"""Every refusal of a move through the staff API: 409, 404, 403, 422, and the order they come in.

``apply_move`` checks, in order: the task exists and the actor may see it (404), the actor's
role and unit may make the move (403), the actor is not recused (403, 回避), the version the
actor saw is current (409), the lifecycle allows the move now (409 naming the current state
and the allowed moves), the body carries what the move needs (422).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher.enums import TaskStatus
from dispatcher.org.model import Org
from dispatcher.tasks.lifecycle import TRANSITIONS, Move, allowed_moves
from tests import factories
from tests.integration.tasking import Desk, error_of, open_desk

HANDLER = "deng.xiaoming"  # 大兴镇纪委 (DXZ-JW)
VERIFIER = "fang.liqun"  # 第一纪检监察室 (SHI1), verifies 大兴镇's complaints
LEADER = "han.zhiyuan"  # 第一协作区组长
ONCALL = "gu.xiaomei"
STRANGER = "lei.zhigang"  # 石桥镇纪委 (zone 2)
OUTCOME = {"resolved": True, "reply": "已办结"}

#: API path of each staff move → (the lifecycle move, who is entitled to make it, a valid body)
STAFF_MOVES: dict[str, tuple[Move, str, dict[str, Any]]] = {
    "accept": (Move.accept, HANDLER, {}),
    "return": (Move.return_, HANDLER, {"reason": "不属本镇管辖"}),
    "progress": (Move.progress, HANDLER, {"note": "正在核实"}),
    "submit": (Move.submit, HANDLER, {"outcome": OUTCOME}),
    "verify": (Move.verify, VERIFIER, {}),
    "reject": (Move.reject, VERIFIER, {"reason": "回复不完整"}),
    "suspend": (Move.suspend, HANDLER, {"reason": "暂存待查"}),
    "resume": (Move.resume, HANDLER, {}),
    "designate": (Move.designate, LEADER, {"unit": "HSZ-JW", "reason": "指定和顺镇纪委办理"}),
    "assist": (Move.co_handle, LEADER, {"units": ["HSZ-JW"], "reason": "需协助"}),
}


@pytest.fixture
def desk(engine: sa.Engine, loaded_org: Org, api_url: str) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


# --- 409: illegal moves --------------------------------------------------------------------


def test_every_move_the_lifecycle_forbids_answers_409_naming_the_current_state_and_allowed_moves(
    desk: Desk,
) -> None:
    """Put one task in each state in turn and try every move the table does not allow from it."""
    task = desk.task()
    refused = 0
    for status in TaskStatus:
        allowed = [m.value for m in allowed_moves(status)]
        for path, (move, who, body) in STAFF_MOVES.items():
            if status in TRANSITIONS[move]:
                continue
            desk.set(task, status=status.value, suspended_from=None, handler_unit="DXZ-JW")
            version = desk.row(task).version

            error = error_of(desk.move(task, path, who, **body), 409)

            assert error["code"] == "illegal_move", (status, path, error)
            assert error["details"] == {"current": status.value, "allowed": allowed}, (status, path)
            assert status.value in error["message"] and move.value in error["message"]
            assert desk.row(task).version == version
            refused += 1
        route = desk.route_triage(task, ONCALL, unit="HSZ-JW", reason="分办")
        if status in TRANSITIONS[Move.route]:
            assert route.status_code == 200, route.text
        else:
            assert error_of(route, 409)["details"] == {"current": status.value, "allowed": allowed}
            refused += 1
    assert refused > 60
    assert len(desk.history(task)) == 1 + sum(s in TRANSITIONS[Move.route] for s in TaskStatus)


def test_accepting_twice_is_refused_and_names_what_is_allowed_now(desk: Desk) -> None:
    task = desk.task()
    desk.ok(task, "accept", HANDLER)

    error = error_of(desk.move(task, "accept", "wei.chunyan"), 409)

    assert error["details"] == {
        "current": "accepted",
        "allowed": ["designate", "return", "progress", "submit", "suspend", "co_handle", "recuse"],
    }
    assert "cannot accept a task that is accepted" in error["message"]
    assert desk.row(task).handler_login == HANDLER


def test_a_stale_version_is_refused_with_409_and_the_current_one_is_accepted(desk: Desk) -> None:
    task = desk.task()
    seen = desk.get(task, HANDLER).json()["version"]
    desk.ok(task, "accept", HANDLER, version=seen)

    error = error_of(desk.move(task, "progress", "wei.chunyan", note="我也在办", version=seen), 409)

    assert error["code"] == "conflict"
    assert error["details"] == {"current": "accepted", "version": seen + 1}
    assert "reload" in error["message"]
    for stale in (seen - 1, seen + 5):
        error_of(desk.move(task, "progress", "wei.chunyan", note="x", version=stale), 409)
    fresh = desk.ok(task, "progress", "wei.chunyan", note="重新加载后补充", version=seen + 1)
    assert fresh["version"] == seen + 2
    assert [h.move for h in desk.history(task)] == ["dispatch", "accept", "progress"]


# --- 404: another unit's task --------------------------------------------------------------


def test_another_units_staff_get_404_for_the_task_on_every_route(desk: Desk) -> None:
    task = desk.task()
    missing = task + 1000

    for login in (STRANGER, "qiao.mingde", "chai.xiaofeng"):  # another township, zone, department
        assert error_of(desk.get(task, login), 404)["code"] == "not_found"
        listed = desk.http.get(f"{desk.api}/api/v1/tasks", headers=desk.who(login)).json()["tasks"]
        assert listed == []
        r = desk.http.post(
            f"{desk.api}/api/v1/tasks/{task}/identity", json={"reason": "核查"}, headers=desk.who(login)
        )
        error_of(r, 404)
    for path, (_, _, body) in STAFF_MOVES.items():
        error_of(desk.move(task, path, STRANGER, **body), 404)
        error_of(desk.move(missing, path, HANDLER, **body), 404)
    error_of(desk.route_triage(missing, ONCALL, unit="HSZ-JW", reason="分办"), 404)
    error_of(desk.get(missing, ONCALL), 404)
    assert desk.row(task).version == 1


def test_the_404_of_another_units_task_and_of_a_missing_task_read_the_same(desk: Desk) -> None:
    task = desk.task()
    theirs = error_of(desk.get(task, STRANGER), 404)
    missing = error_of(desk.get(task + 1000, STRANGER), 404)
    assert theirs["message"].replace(str(task), "N") == missing["message"].replace(str(task + 1000), "N")


# --- 403: a role without the right ---------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "path", "body"),
    [
        (VERIFIER, "accept", {}),  # the verifier unit sees the task but does not handle it
        ("luo.guohua", "accept", {}),  # a verifier of the handling unit
        ("he.jiaming", "accept", {}),  # a handler of the verifying unit
        (LEADER, "accept", {}),
        (ONCALL, "accept", {}),
        ("tang.wenbo", "accept", {}),  # admin
        (HANDLER, "designate", {"unit": "HSZ-JW", "reason": "改派"}),
        (HANDLER, "assist", {"units": ["HSZ-JW"], "reason": "需协助"}),
        (VERIFIER, "designate", {"unit": "HSZ-JW", "reason": "改派"}),
    ],
)
def test_a_role_without_the_right_to_a_move_gets_403(
    desk: Desk, login: str, path: str, body: dict[str, Any]
) -> None:
    task = desk.task()
    error = error_of(desk.move(task, path, login, **body), 403)
    assert error["code"] == "forbidden"
    assert desk.row(task).version == 1


def test_a_handler_cannot_verify_or_reject_and_a_verifier_of_another_unit_cannot_either(desk: Desk) -> None:
    task = desk.task()
    desk.ok(task, "accept", HANDLER)
    desk.ok(task, "submit", HANDLER, outcome=OUTCOME)

    for login in (HANDLER, "luo.guohua", LEADER):
        error_of(desk.move(task, "verify", login), 403)
        error_of(desk.move(task, "reject", login, reason="不行"), 403)
    error_of(desk.move(task, "verify", "jiang.rui"), 404)  # DFZF verifies enterprise requests only
    assert desk.row(task).status == "submitted"


def test_triage_is_only_for_oncall_zone_leaders_and_admins(desk: Desk) -> None:
    task = desk.task(factories.complaint(township="云端镇"))
    for login in (HANDLER, VERIFIER):
        error_of(desk.http.get(f"{desk.api}/api/v1/triage", headers=desk.who(login)), 403)
        error_of(desk.route_triage(task, login, unit="DXZ-JW", reason="分办"), 403)
        error_of(desk.http.get(f"{desk.api}/api/v1/notifications/failed", headers=desk.who(login)), 403)
    assert desk.row(task).status == "triage"


def test_a_forbidden_move_answers_403_even_when_the_state_would_also_refuse_it(desk: Desk) -> None:
    task = desk.task()
    desk.set(task, status="closed")
    error_of(desk.move(task, "accept", VERIFIER), 403)  # 403 comes before 409
    error_of(desk.move(task, "verify", HANDLER), 403)


# --- 403: recusal (回避) -------------------------------------------------------------------


def test_a_recused_member_of_the_handling_unit_sees_the_task_but_may_not_touch_it(desk: Desk) -> None:
    """ou.li (柳河乡纪委) declared a recusal for 白沙镇; a clue about 白沙镇 is cross-handled by 柳河乡."""
    task = desk.task(factories.clue(township="白沙镇", subject={"name": "尹国强", "rank": "village"}))
    row = desk.row(task)
    assert row.handler_unit == "LHX-JW" and "ou.li" in row.recused_logins

    detail = desk.get(task, "ou.li").json()
    assert detail["allowed_moves"] == [] and detail["may_reveal_identity"] is False
    for path in ("accept", "suspend", "return"):
        error = error_of(desk.move(task, path, "ou.li", reason="自行处理"), 403)
        assert "回避" in error["message"] and "ou.li" in error["message"]
    assert desk.ok(task, "accept", "qin.dawei")["handler_login"] == "qin.dawei"
    error_of(desk.move(task, "progress", "ou.li", note="x"), 403)


def test_a_recusal_set_on_the_task_refuses_every_move_of_that_person_before_the_state_is_checked(
    desk: Desk,
) -> None:
    task = desk.task()
    desk.ok(task, "accept", HANDLER)
    desk.set(task, recused_logins=[HANDLER, VERIFIER])

    for path in ("progress", "submit", "accept"):  # accept would otherwise be a 409
        assert "回避" in error_of(desk.move(task, path, HANDLER, note="x", outcome=OUTCOME), 403)["message"]
    desk.ok(task, "submit", "wei.chunyan", outcome=OUTCOME)
    error_of(desk.move(task, "verify", VERIFIER), 403)
    assert desk.ok(task, "verify", "t.shi1.verifier")["status"] == "awaiting_feedback"


# --- the order of the checks ---------------------------------------------------------------


def test_refusals_come_in_order_404_then_403_then_recusal_then_stale_version_then_state_then_body(
    desk: Desk,
) -> None:
    task = desk.task()  # dispatched, version 1
    # another unit asking a forbidden, stale, illegal move with a bad body: 404
    error_of(desk.move(task, "verify", STRANGER, version=9), 404)
    # a role without the right, stale and illegal: 403
    assert error_of(desk.move(task, "verify", HANDLER, version=9), 403)["code"] == "forbidden"
    # a stale version of an illegal move with a bad body: the stale version (409 conflict)
    assert error_of(desk.move(task, "progress", HANDLER, version=9), 409)["code"] == "conflict"
    # current version, illegal move, bad body: the state (409 illegal_move)
    assert error_of(desk.move(task, "progress", HANDLER, version=1), 409)["code"] == "illegal_move"
    # legal move, bad body: 422
    assert error_of(desk.move(task, "return", HANDLER, version=1), 422)["code"] == "validation_error"
    desk.set(task, recused_logins=[HANDLER])
    assert "回避" in error_of(desk.move(task, "accept", HANDLER, version=9), 403)["message"]
    assert desk.row(task).version == 1 and len(desk.history(task)) == 1
