"""Every move of the task lifecycle through the staff API over real HTTP (DESIGN §6, §9; issue 3).

Tasks come from the real intake API and are routed in-process (see ``tasking.py``); every move
is a real HTTP request against the test's database (SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher.org.model import Org
from dispatcher.settings import Settings
from tests import factories
from tests.integration.tasking import Desk, dispatched_days_ago, error_of, open_desk

HANDLER, SECOND_HANDLER = "deng.xiaoming", "wei.chunyan"  # 大兴镇纪委 (DXZ-JW)
VERIFIER = "fang.liqun"  # 第一纪检监察室 (SHI1)
LEADER = "han.zhiyuan"  # 第一协作区组长
ONCALL = "gu.xiaomei"

#: kind → (event body, handling unit, a handler of it, a verifier of the verifying unit)
KINDS: dict[str, tuple[Callable[[], dict[str, Any]], str, str, str]] = {
    "complaint": (factories.complaint, "DXZ-JW", HANDLER, VERIFIER),
    "enterprise_request": (factories.enterprise_request, "RSJ", "chai.xiaofeng", "jiang.rui"),
    # a clue about 大兴镇 is cross-handled by the zone's least loaded other township (城关街道 first)
    "clue": (factories.clue, "CGJD-JW", "xu.dongsheng", VERIFIER),
}
OUTCOMES: dict[str, dict[str, Any]] = {
    "complaint": {"resolved": True, "reply": "补贴已于本周发放到位"},
    "enterprise_request": {"resolved": False, "reply": "已协调县人社局压缩备案时限"},
    "clue": {"disposition": "close_out"},  # 予以了结: the disposition stage, approved, concludes the clue
}


@pytest.fixture
def desk(engine: sa.Engine, loaded_org: Org, api_url: str) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


def kind_task(desk: Desk, kind: str) -> tuple[int, str, str]:
    """A dispatched task of ``kind``: (id, handler login, verifier login)."""
    body, unit, handler, verifier = KINDS[kind]
    task = desk.task(body())
    assert desk.row(task).handler_unit == unit
    return task, handler, verifier


def submitted(desk: Desk, kind: str = "complaint") -> tuple[int, str, str]:
    task, handler, verifier = kind_task(desk, kind)
    desk.ok(task, "accept", handler)
    desk.ok(task, "submit", handler, outcome=OUTCOMES[kind])
    return task, handler, verifier


def awaiting_feedback(desk: Desk) -> int:
    task, _, verifier = submitted(desk)
    assert desk.ok(task, "verify", verifier)["status"] == "awaiting_feedback"
    return task


def moves(detail: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(h["move"], h["from"], h["to"]) for h in detail["history"]]


# --- accept ------------------------------------------------------------------------------


def test_a_handler_accepts_a_dispatched_task_and_the_history_records_who_and_when(desk: Desk) -> None:
    task = desk.task()
    before = desk.get(task, HANDLER).json()
    assert before["allowed_moves"] == ["accept", "return", "suspend", "recuse"]

    detail = desk.ok(task, "accept", HANDLER)

    assert detail["status"] == "accepted" and detail["handler_login"] == HANDLER
    assert detail["version"] == before["version"] + 1
    assert detail["allowed_moves"] == ["return", "progress", "submit", "suspend", "recuse"]
    last = detail["history"][-1]
    assert (last["actor"], last["move"], last["from"], last["to"]) == (
        HANDLER,
        "accept",
        "dispatched",
        "accepted",
    )
    assert datetime.fromisoformat(last["at"]) > datetime.fromisoformat(detail["history"][0]["at"])
    assert desk.row(task).accepted_at is not None


# --- return ------------------------------------------------------------------------------


def test_a_wrongly_routed_task_is_returned_to_triage_with_its_reason_and_the_room_is_told(
    desk: Desk,
) -> None:
    task = desk.task()
    desk.ok(task, "accept", HANDLER)

    detail = desk.ok(task, "return", HANDLER, reason="反映事项发生在邻镇，不属本镇管辖")

    assert detail["status"] == "returned" and detail["handler_login"] is None
    assert moves(detail)[-1] == ("return", "accepted", "returned")
    assert detail["history"][-1]["note"] == "反映事项发生在邻镇，不属本镇管辖"
    triage = desk.http.get(f"{desk.api}/api/v1/triage", headers=desk.who(ONCALL)).json()["tasks"]
    assert [t["id"] for t in triage] == [task]
    room = desk.notifications("he.jiaming")  # 第一纪检监察室, the zone's room
    assert [(n["task_id"], n["kind"]) for n in room] == [(task, "returned")]
    assert "不属本镇管辖" in room[0]["message"]


def test_returning_without_a_reason_is_refused_with_422_naming_reason(desk: Desk) -> None:
    task = desk.task()
    for body in ({}, {"reason": "   "}):
        error = error_of(desk.move(task, "return", HANDLER, **body), 422)
        assert [d["path"] for d in error["details"]] == ["reason"]
    assert desk.row(task).status == "dispatched"


def test_a_task_may_be_returned_up_to_five_working_days_after_dispatch_and_not_later(
    desk: Desk, settings: Settings
) -> None:
    five, six, month = desk.tasks([factories.complaint() for _ in range(3)])
    desk.set(five, dispatched_at=dispatched_days_ago(settings.tz, 5))
    desk.set(six, dispatched_at=dispatched_days_ago(settings.tz, 6))
    desk.set(month, dispatched_at=datetime.now(settings.tz) - timedelta(days=40))
    desk.ok(five, "accept", HANDLER)

    assert desk.ok(five, "return", HANDLER, reason="不属本镇管辖")["status"] == "returned"
    for task in (six, month):
        error = error_of(desk.move(task, "return", HANDLER, reason="不属本镇管辖"), 409)
        assert error["details"]["current"] == "dispatched"
        assert error["details"]["workdays_since_dispatch"] >= 6
        assert "5 working days" in error["message"]
        assert desk.row(task).status == "dispatched"
    assert desk.history(six)[-1].move == "dispatch"  # nothing written


# --- progress ----------------------------------------------------------------------------


def test_progress_notes_are_recorded_without_changing_the_state_and_need_a_note(desk: Desk) -> None:
    task = desk.task()
    desk.ok(task, "accept", HANDLER)

    error = error_of(desk.move(task, "progress", HANDLER), 422)
    assert [d["path"] for d in error["details"]] == ["note"]
    error_of(desk.move(task, "progress", HANDLER, note=""), 422)
    detail = desk.ok(task, "progress", SECOND_HANDLER, note="已约谈村会计，核对发放台账")

    assert detail["status"] == "accepted"
    last = detail["history"][-1]
    assert (last["actor"], last["move"], last["from"], last["to"], last["note"]) == (
        SECOND_HANDLER,
        "progress",
        "accepted",
        "accepted",
        "已约谈村会计，核对发放台账",
    )


# --- submit ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_handler_submits_the_outcome_its_kind_takes(desk: Desk, kind: str) -> None:
    task, handler, verifier = kind_task(desk, kind)
    desk.ok(task, "accept", handler)

    detail = desk.ok(task, "submit", handler, outcome=OUTCOMES[kind])

    assert detail["status"] == "submitted"
    assert detail["outcome"] == OUTCOMES[kind]
    assert moves(detail)[-1] == ("submit", "accepted", "submitted")
    assert desk.get(task, verifier).json()["allowed_moves"] == ["verify", "reject", "recuse"]


#: kind → [(outcome, the paths the 422 must name)]
BAD_OUTCOMES: dict[str, list[tuple[Any, set[str]]]] = {
    "complaint": [
        (None, {"outcome"}),
        ({"resolved": "maybe", "reply": "已办"}, {"outcome.resolved"}),
        ({"resolved": True}, {"outcome.reply"}),
        ({"resolved": True, "reply": "   "}, {"outcome.reply"}),
        ({"resolved": True, "reply": "已办", "disposition": "hold"}, {"outcome.disposition"}),
        (
            {"disposition": "hold", "case_filed": False, "disciplined_count": 0},
            {
                "outcome.resolved",
                "outcome.reply",
                "outcome.disposition",
                "outcome.case_filed",
                "outcome.disciplined_count",
            },
        ),
    ],
    "enterprise_request": [
        ({"reply": "已协调"}, {"outcome.resolved"}),
        ({"resolved": True, "reply": "x" * 5001}, {"outcome.reply"}),
    ],
    "clue": [
        ({"disposition": "warning", "case_filed": True, "disciplined_count": 0}, {"outcome.disposition"}),
        (
            {"disposition": "hold", "case_filed": "perhaps", "disciplined_count": -1},
            {"outcome.case_filed", "outcome.disciplined_count"},
        ),
        ({"resolved": True, "reply": "已了结"}, {"outcome.disposition", "outcome.resolved", "outcome.reply"}),
    ],
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_outcome_of_the_wrong_shape_is_refused_with_422_naming_the_bad_paths(
    desk: Desk, kind: str
) -> None:
    task, handler, _ = kind_task(desk, kind)
    desk.ok(task, "accept", handler)
    version = desk.row(task).version

    for outcome, paths in BAD_OUTCOMES[kind]:
        body = {} if outcome is None else {"outcome": outcome}
        error = error_of(desk.move(task, "submit", handler, **body), 422)
        assert error["code"] == "validation_error"
        assert {d["path"] for d in error["details"]} == paths, (outcome, error)
    # the body itself: an outcome that is not an object, a field no move reads
    for body in ({"outcome": "resolved"}, {"outcome": OUTCOMES[kind], "rating": "satisfied"}):
        assert error_of(desk.move(task, "submit", handler, **body), 422)["code"] == "validation_error"

    row = desk.row(task)
    assert (row.status, row.version, row.outcome) == ("accepted", version, None)


# --- verify and reject -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "after"),
    [("complaint", "awaiting_feedback"), ("enterprise_request", "awaiting_feedback"), ("clue", "closed")],
)
def test_verifying_waits_for_the_requesters_feedback_except_for_clues_which_close(
    desk: Desk, settings: Settings, kind: str, after: str
) -> None:
    task, handler, verifier = submitted(desk, kind)

    detail = desk.ok(task, "verify", verifier)

    assert detail["status"] == after
    assert moves(detail)[-1] == ("verify", "submitted", after)
    if after == "closed":
        assert detail["close_reason"] == "verified" and detail["closed_at"] is not None
        assert detail["feedback_due_at"] is None
    else:
        due = datetime.fromisoformat(detail["feedback_due_at"]) - datetime.fromisoformat(detail["updated_at"])
        assert due == timedelta(days=settings.feedback_window_days)
        assert detail["closed_at"] is None
    assert desk.get(task, handler).json()["allowed_moves"] == ([] if after == "closed" else ["recuse"])


def test_a_rejected_outcome_goes_back_to_the_handler_with_the_reason_and_is_resubmitted(desk: Desk) -> None:
    task, handler, verifier = submitted(desk)

    error = error_of(desk.move(task, "reject", verifier), 422)
    assert [d["path"] for d in error["details"]] == ["reason"]
    detail = desk.ok(task, "reject", verifier, reason="回复未说明补贴发放时间")

    assert detail["status"] == "rejected"
    assert detail["history"][-1]["note"] == "回复未说明补贴发放时间"
    told = [n for n in desk.notifications(handler) if n["task_id"] == task]
    assert [n["kind"] for n in told] == ["rejected", "dispatched"]
    assert "回复未说明补贴发放时间" in told[0]["message"]
    assert desk.get(task, handler).json()["allowed_moves"] == ["progress", "submit", "suspend", "recuse"]

    again = desk.ok(task, "submit", handler, outcome={"resolved": True, "reply": "补贴已于3月5日发放"})
    assert again["status"] == "submitted" and again["outcome"]["reply"] == "补贴已于3月5日发放"
    assert desk.ok(task, "verify", verifier)["status"] == "awaiting_feedback"
    assert [m for m, _, _ in moves(desk.get(task, handler).json())] == [
        "dispatch", "accept", "submit", "reject", "submit", "verify",
    ]  # fmt: skip


# --- feedback ----------------------------------------------------------------------------


@pytest.mark.parametrize("rating", ["satisfied", "basically_satisfied"])
def test_a_satisfied_requester_closes_the_task(desk: Desk, rating: str) -> None:
    task = awaiting_feedback(desk)

    r = desk.feedback(desk.event_of(task), rating)

    assert r.status_code == 200, r.text
    assert r.json() == {
        "event_id": desk.event_of(task),
        "task_id": task,
        "status": "closed",
        "rating": rating,
    }
    detail = desk.get(task, HANDLER).json()
    assert (detail["status"], detail["close_reason"], detail["feedback_rating"]) == ("closed", rating, rating)
    assert detail["feedback_due_at"] is None and detail["closed_at"] is not None
    last = detail["history"][-1]
    assert (last["move"], last["from"], last["to"]) == ("feedback_close", "awaiting_feedback", "closed")
    assert last["actor"].startswith("source:")


def test_an_unsatisfied_requester_reopens_the_task_and_the_handler_resubmits(desk: Desk) -> None:
    task = awaiting_feedback(desk)
    event = desk.event_of(task)

    r = desk.feedback(event, "unsatisfied")

    assert r.status_code == 200 and r.json()["status"] == "reopened", r.text
    assert next(n["kind"] for n in desk.notifications(HANDLER) if n["task_id"] == task) == "reopened"
    assert desk.get(task, HANDLER).json()["allowed_moves"] == ["progress", "submit", "suspend", "recuse"]
    desk.ok(task, "progress", HANDLER, note="再次入户核实")
    desk.ok(task, "submit", HANDLER, outcome={"resolved": True, "reply": "已补发差额"})
    desk.ok(task, "verify", VERIFIER)
    assert desk.feedback(event, "basically_satisfied").json()["status"] == "closed"
    assert moves(desk.get(task, HANDLER).json())[-5:] == [
        ("feedback_reopen", "awaiting_feedback", "reopened"),
        ("progress", "reopened", "reopened"),
        ("submit", "reopened", "submitted"),
        ("verify", "submitted", "awaiting_feedback"),
        ("feedback_close", "awaiting_feedback", "closed"),
    ]


def test_feedback_from_a_source_that_did_not_publish_the_event_is_not_found(desk: Desk) -> None:
    task = awaiting_feedback(desk)

    error = error_of(desk.feedback(desk.event_of(task), "satisfied", source=desk.new_source()), 404)

    assert error["code"] == "not_found"
    assert desk.row(task).status == "awaiting_feedback"
    error_of(desk.feedback("no-such-event", "satisfied"), 404)


def test_feedback_when_the_task_is_not_awaiting_feedback_is_refused_with_its_state(desk: Desk) -> None:
    dispatched = desk.task()
    clue, _, verifier = submitted(desk, "clue")
    desk.ok(clue, "verify", verifier)  # clues close on verification: nobody to ask
    unrouted = desk.publish(factories.complaint())

    error = error_of(desk.feedback(desk.event_of(dispatched), "satisfied"), 409)
    assert error["details"]["current"] == "dispatched"
    assert error["details"]["allowed"] == ["designate", "accept", "return", "suspend", "co_handle", "recuse"]
    assert error_of(desk.feedback(desk.event_of(clue), "unsatisfied"), 409)["details"] == {
        "current": "closed",
        "allowed": [],
    }
    assert error_of(desk.feedback(unrouted, "satisfied"), 409)["details"] == {
        "current": "accepted",
        "allowed": [],
    }
    assert desk.row(dispatched).status == "dispatched" and desk.row(clue).status == "closed"


def test_feedback_with_an_unknown_rating_is_refused_with_422(desk: Desk) -> None:
    task = awaiting_feedback(desk)
    r = desk.http.post(
        f"{desk.api}/api/v1/events/{desk.event_of(task)}/feedback",
        json={"rating": "delighted"},
        headers=desk.source,
    )
    assert [d["path"] for d in error_of(r, 422)["details"]] == ["rating"]
    assert desk.row(task).status == "awaiting_feedback"


# --- suspend and resume ------------------------------------------------------------------


@pytest.mark.parametrize("before", ["dispatched", "accepted", "rejected"])
def test_a_suspended_task_resumes_to_the_state_it_was_suspended_from(desk: Desk, before: str) -> None:
    task = desk.task()
    if before != "dispatched":
        desk.ok(task, "accept", HANDLER)
    if before == "rejected":
        desk.ok(task, "submit", HANDLER, outcome=OUTCOMES["complaint"])
        desk.ok(task, "reject", VERIFIER, reason="证据不足")

    error = error_of(desk.move(task, "suspend", HANDLER), 422)
    assert [d["path"] for d in error["details"]] == ["reason"]
    suspended = desk.ok(task, "suspend", HANDLER, reason="暂存待查: 等待审计报告")
    assert suspended["status"] == "suspended"
    assert suspended["allowed_moves"] == ["progress", "resume", "recuse"]
    desk.ok(task, "progress", HANDLER, note="审计报告预计下月出具")

    resumed = desk.ok(task, "resume", HANDLER)

    assert resumed["status"] == before
    assert moves(resumed)[-3:] == [
        ("suspend", before, "suspended"),
        ("progress", "suspended", "suspended"),
        ("resume", "suspended", before),
    ]
    assert desk.row(task).suspended_from is None


# --- designate ---------------------------------------------------------------------------


def test_the_zone_leader_designates_another_unit_which_is_notified_and_takes_over(desk: Desk) -> None:
    task, handler, _ = kind_task(desk, "clue")  # 城关街道纪委
    desk.ok(task, "accept", handler)

    detail = desk.ok(task, "designate", LEADER, unit="FDX-JW", reason="城关街道力量不足，指定丰登乡办理")

    assert (detail["status"], detail["handler_unit"], detail["handler_login"]) == (
        "dispatched",
        "FDX-JW",
        None,
    )
    assert detail["verifier_unit"] == "SHI1" and detail["zone"] == "Z1"
    assert moves(detail)[-1] == ("designate", "accepted", "dispatched")
    told = [n for n in desk.notifications("tao.li") if n["task_id"] == task]
    assert [n["kind"] for n in told] == ["designated"] and "指定丰登乡办理" in told[0]["message"]
    error_of(desk.get(task, handler), 404)  # the old unit no longer sees it
    assert desk.ok(task, "accept", "tao.li")["handler_login"] == "tao.li"


def test_designating_the_subjects_own_township_for_a_clue_is_refused_as_a_conflict_of_interest(
    desk: Desk,
) -> None:
    task, _, _ = kind_task(desk, "clue")  # about 大兴镇's village party secretary

    error = error_of(desk.move(task, "designate", LEADER, unit="DXZ-JW", reason="就近办理"), 403)

    assert "回避" in error["message"] and error["code"] == "forbidden"
    row = desk.row(task)
    assert (row.handler_unit, row.status, row.version) == ("CGJD-JW", "dispatched", 1)
    assert [n.unit_code for n in desk.notification_rows(task)] == ["CGJD-JW"]


def test_designating_needs_a_reason_and_a_known_unit(desk: Desk) -> None:
    task, _, _ = kind_task(desk, "clue")
    for body, path in (
        ({"unit": "FDX-JW"}, "reason"),
        ({"unit": "FDX-JW", "reason": " "}, "reason"),
        ({"reason": "指定办理"}, "unit"),
        ({"unit": "NOPE", "reason": "指定办理"}, "unit"),
    ):
        error = error_of(desk.move(task, "designate", LEADER, **body), 422)
        assert [d["path"] for d in error["details"]] == [path], body
    assert desk.row(task).version == 1


# --- co-handling (增派人员协助) ------------------------------------------------------------


def test_an_assisting_unit_sees_the_task_and_adds_progress_but_does_not_handle_it(desk: Desk) -> None:
    task = desk.task()
    desk.ok(task, "accept", HANDLER)
    helper = "liang.zhenyu"  # 和顺镇纪委
    error_of(desk.get(task, helper), 404)
    error_of(desk.move(task, "progress", helper, note="协助走访"), 404)

    detail = desk.ok(task, "assist", LEADER, units=["HSZ-JW"], reason="涉及和顺镇，需协助调查")

    assert detail["assisting_units"] == ["HSZ-JW"] and detail["status"] == "accepted"
    assert moves(detail)[-1] == ("co_handle", "accepted", "accepted")
    assert "HSZ-JW" in detail["history"][-1]["note"]
    assert [n["kind"] for n in desk.notifications(helper) if n["task_id"] == task] == ["assist"]
    assert desk.get(task, helper).status_code == 200
    listed = desk.http.get(f"{desk.api}/api/v1/tasks", headers=desk.who(helper)).json()["tasks"]
    assert [t["id"] for t in listed] == [task]
    assert desk.ok(task, "progress", helper, note="已协助走访3户")["history"][-1]["actor"] == helper
    error_of(desk.move(task, "submit", helper, outcome=OUTCOMES["complaint"]), 403)
    assert desk.get(task, helper).json()["allowed_moves"] == ["progress", "recuse"]


def test_an_assisting_staff_member_of_another_unit_sees_the_task_and_adds_progress(desk: Desk) -> None:
    task = desk.task()
    desk.ok(task, "accept", HANDLER)
    helper = "dong.kai"  # 驻县委办纪检监察组 (PZ1)
    error_of(desk.get(task, helper), 404)

    detail = desk.ok(task, "assist", LEADER, logins=[helper], reason="增派董凯协助核查")

    assert detail["assisting_logins"] == [helper] and detail["assisting_units"] == []
    assert desk.get(task, helper).status_code == 200
    listed = desk.http.get(f"{desk.api}/api/v1/tasks", headers=desk.who(helper)).json()["tasks"]
    assert [t["id"] for t in listed] == [task]
    assert desk.ok(task, "progress", helper, note="已调取会议记录")["history"][-1]["actor"] == helper
    error_of(desk.move(task, "submit", helper, outcome=OUTCOMES["complaint"]), 403)


def test_co_handling_needs_a_reason_and_known_units_or_staff(desk: Desk) -> None:
    task = desk.task()
    for body, path in (
        ({"units": ["HSZ-JW"]}, "reason"),
        ({"reason": "需协助"}, "units"),
        ({"units": ["NOPE"], "reason": "需协助"}, "units"),
        ({"logins": ["nobody.here"], "reason": "需协助"}, "units"),
    ):
        error = error_of(desk.move(task, "assist", LEADER, **body), 422)
        assert [d["path"] for d in error["details"]] == [path], body
    assert desk.row(task).assisting_units == []


# --- triage routing (分办) ----------------------------------------------------------------


def test_oncall_routes_a_triage_item_to_a_unit_which_is_notified(desk: Desk) -> None:
    task = desk.task(factories.complaint(township="云端镇"))  # not in the org: lands in triage
    assert desk.row(task).status == "triage"
    triage = desk.http.get(f"{desk.api}/api/v1/triage", headers=desk.who(ONCALL)).json()["tasks"]
    assert [t["id"] for t in triage] == [task] and "云端镇" in triage[0]["reason"]
    error = error_of(desk.route_triage(task, ONCALL, unit="DXZ-JW"), 422)
    assert [d["path"] for d in error["details"]] == ["reason"]
    error = error_of(desk.route_triage(task, ONCALL, reason="经核实属大兴镇"), 422)
    assert [d["path"] for d in error["details"]] == ["unit"]

    r = desk.route_triage(task, ONCALL, unit="DXZ-JW", reason="经核实属大兴镇")

    assert r.status_code == 200, r.text
    detail = r.json()
    assert (detail["status"], detail["handler_unit"], detail["verifier_unit"], detail["zone"]) == (
        "dispatched",
        "DXZ-JW",
        "SHI1",
        "Z1",
    )
    assert moves(detail)[-1] == ("route", "triage", "dispatched")
    assert [n["kind"] for n in desk.notifications(HANDLER) if n["task_id"] == task] == ["dispatched"]
    assert desk.http.get(f"{desk.api}/api/v1/triage", headers=desk.who(ONCALL)).json()["tasks"] == []
    assert desk.ok(task, "accept", HANDLER)["status"] == "accepted"


def test_the_zone_leader_routes_the_zones_triage_items_and_returned_tasks(desk: Desk) -> None:
    unmapped = desk.task(factories.enterprise_request(category="文旅推广"))  # 大兴镇: zone 1, no department
    returned = desk.task()
    desk.ok(returned, "return", HANDLER, reason="应由和顺镇办理")
    other_leader = "qiao.mingde"  # 第二协作区

    assert desk.http.get(f"{desk.api}/api/v1/triage", headers=desk.who(other_leader)).json()["tasks"] == []
    error_of(desk.route_triage(unmapped, other_leader, unit="SCJG", reason="归口市场监管"), 404)
    listed = desk.http.get(f"{desk.api}/api/v1/triage", headers=desk.who(LEADER)).json()["tasks"]
    assert [t["id"] for t in listed] == [unmapped, returned]

    first = desk.route_triage(unmapped, LEADER, unit="SCJG", reason="归口市场监管")
    second = desk.route_triage(returned, LEADER, unit="HSZ-JW", reason="事发和顺镇")

    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    assert (first.json()["handler_unit"], first.json()["verifier_unit"]) == ("SCJG", "DFZF")
    assert (second.json()["status"], second.json()["handler_unit"]) == ("dispatched", "HSZ-JW")
    assert moves(second.json())[-1] == ("route", "returned", "dispatched")
    assert desk.get(returned, "liang.zhenyu").json()["allowed_moves"] == [
        "accept",
        "return",
        "suspend",
        "recuse",
    ]


def test_routing_a_task_that_is_not_waiting_in_triage_is_refused_with_409(desk: Desk) -> None:
    task = desk.task()
    error = error_of(desk.route_triage(task, ONCALL, unit="HSZ-JW", reason="改派"), 409)
    assert error["details"]["current"] == "dispatched"
    assert "route" not in error["details"]["allowed"]


def test_the_requesters_platform_reads_the_reply_once_verified_and_relays_whether_it_was_resolved(
    desk: Desk,
) -> None:
    task, _, verifier = submitted(desk)
    event = desk.event_of(task)

    def state() -> dict[str, Any]:
        r = desk.http.get(f"{desk.api}/api/v1/events/{event}", headers=desk.source)
        assert r.status_code == 200, r.text
        found: dict[str, Any] = r.json()["task"]
        return found

    assert state()["reply"] is None  # submitted, not yet verified: nothing to tell the requester
    desk.ok(task, "verify", verifier)
    assert state()["reply"] == OUTCOMES["complaint"]["reply"] and state()["verified_at"]

    r = desk.http.post(
        f"{desk.api}/api/v1/events/{event}/feedback", headers=desk.source,
        json={"rating": "basically_satisfied", "resolved": False, "comment": "补贴到了，路灯还没修"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    detail = desk.get(task, HANDLER).json()
    assert (detail["status"], detail["feedback_rating"], detail["feedback_resolved"]) == (
        "closed", "basically_satisfied", False,
    )  # fmt: skip
    assert detail["history"][-1]["note"] == "补贴到了，路灯还没修"  # the requester's own words
    bad = desk.http.post(f"{desk.api}/api/v1/events/{event}/feedback", headers=desk.source,
                         json={"rating": "satisfied", "resolved": "perhaps"})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["path"] == "resolved"
