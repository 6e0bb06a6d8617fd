"""Clues as commissions handle them (DESIGN §5, §6): stages, jurisdiction, acknowledgement, history.

Every move goes through the staff API over HTTP; the supervision of a held clue's review runs the
actor's code on a fixed clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from dispatcher.db import unit_of_work
from dispatcher.models import ClueStage, Notification
from dispatcher.org.model import Org
from dispatcher.supervision.orders import supervise
from dispatcher.supervision.policy import DEFAULT_POLICY
from dispatcher.wallclock import utcnow
from tests import factories
from tests.integration.tasking import Desk, error_of, open_desk

HANDLER, VERIFIER, LEADER = "xu.dongsheng", "fang.liqun", "han.zhiyuan"


@pytest.fixture
def desk(api_url: str, engine: sa.Engine, loaded_org: Org) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


def stages(desk: Desk, task_id: int) -> list[ClueStage]:
    with unit_of_work(desk.engine) as s:
        return list(s.exec(select(ClueStage).where(ClueStage.task_id == task_id).order_by(col(ClueStage.id))))


def approve(desk: Desk, task_id: int, outcome: dict[str, Any]) -> dict[str, Any]:
    """The handler submits the stage's outcome and the verifier approves it (审批)."""
    desk.ok(task_id, "submit", HANDLER, outcome=outcome)
    return desk.ok(task_id, "verify", VERIFIER, note="同意")


#: A handler of each township that cross-handles 大兴镇's clues.
TOWNSHIP_HANDLER = {"CGJD-JW": "xu.dongsheng", "FDX-JW": "tao.li", "HSZ-JW": "liang.zhenyu"}


def clue_task(desk: Desk, **payload: Any) -> int:
    task = desk.task(factories.clue(**payload))
    assert desk.row(task).handler_unit == "CGJD-JW"  # cross-handled: another township of the zone
    return task


def days_between(later: str | None, earlier: datetime) -> float:
    assert later is not None
    return (datetime.fromisoformat(later) - earlier).total_seconds() / 86_400


def test_a_clue_walks_disposition_verification_case_each_stage_clocked_and_approved(desk: Desk) -> None:
    task = clue_task(desk)
    first = desk.ok(task, "accept", HANDLER)
    assert first["stage"] == "disposition"
    # 处置意见 within a month of receipt: the disposition's clock is the kind's 30 calendar days
    assert 29 < days_between(first["resolve_due_at"], desk.row(task).received_at) <= 31

    after = approve(desk, task, {"disposition": "preliminary_verification"})
    assert (after["status"], after["stage"], after["outcome"]) == (
        "accepted",
        "preliminary_verification",
        None,
    )
    assert 89 < days_between(after["resolve_due_at"], utcnow()) <= 91  # 初步核实: 90 days from now
    assert [m["move"] for m in after["history"]][-2:] == ["submit", "verify"]

    after = approve(desk, task, {"result": "case_filed", "note": "核实属实，建议立案"})
    assert (after["status"], after["stage"]) == ("accepted", "case")
    assert 89 < days_between(after["resolve_due_at"], utcnow()) <= 91  # 审查调查: 90 days

    # the verifier sends the case back once; the handler resubmits in the same stage
    desk.ok(task, "submit", HANDLER, outcome={"disciplined_count": 1})
    rejected = desk.ok(task, "reject", VERIFIER, reason="处分情况未列明")
    assert (rejected["status"], rejected["stage"]) == ("rejected", "case")
    case = {
        "disciplined_count": 2, "sanctions": {"party": 1, "government": 1, "organizational": 1},
        "four_forms": {"second": 1, "third": 1}, "amount_recovered": 12000.5,
    }  # fmt: skip
    done = approve(desk, task, case)
    assert (done["status"], done["close_reason"]) == ("closed", "verified")  # 审结: the clue is concluded

    rows = stages(desk, task)
    assert [(r.stage, r.result) for r in rows] == [
        ("disposition", "preliminary_verification"),
        ("preliminary_verification", "case"),
        ("case", "concluded"),
    ]
    assert all(r.decided_by == VERIFIER and r.submitted_at is not None and r.due_at is not None for r in rows)
    assert rows[2].outcome is not None and rows[2].outcome["disciplined_count"] == 2
    assert rows[2].outcome["sanctions"] == {"party": 1, "government": 1, "organizational": 1}
    assert rows[2].outcome["amount_recovered"] == 12000.5
    assert [s["stage"] for s in done["stages"]] == ["disposition", "preliminary_verification", "case"]


def test_a_talk_letter_may_send_the_clue_back_to_a_new_disposition(desk: Desk) -> None:
    task = clue_task(desk)
    desk.ok(task, "accept", HANDLER)
    approve(desk, task, {"disposition": "talk_letter"})
    back = approve(desk, task, {"result": "disposition"})
    assert (back["status"], back["stage"]) == ("accepted", "disposition")
    closed = approve(desk, task, {"disposition": "close_out"})
    assert closed["status"] == "closed"
    assert [(r.stage, r.result) for r in stages(desk, task)] == [
        ("disposition", "talk_letter"),
        ("talk_letter", "disposition"),
        ("disposition", "concluded"),
    ]


def test_a_stage_outcome_of_another_stage_is_refused_naming_its_fields(desk: Desk) -> None:
    task = clue_task(desk)
    desk.ok(task, "accept", HANDLER)
    approve(desk, task, {"disposition": "preliminary_verification"})
    error = error_of(desk.move(task, "submit", HANDLER, outcome={"disposition": "close_out"}), 422)
    assert {d["path"] for d in error["details"]} == {"outcome.result", "outcome.disposition"}


def test_a_held_clue_comes_back_for_review_and_its_disposition_is_reopened(
    desk: Desk, engine: sa.Engine, loaded_org: Org
) -> None:
    task = clue_task(desk)
    desk.ok(task, "accept", HANDLER)
    held = approve(desk, task, {"disposition": "hold"})
    assert held["status"] == "held"  # out of the handler's active work, not concluded
    assert "review" in desk.get(task, HANDLER).json()["allowed_moves"]
    row = desk.row(task)
    assert row.review_due_at is not None and 89 < (row.review_due_at - utcnow()).days <= 91  # a quarter
    assert row.next_check_at == row.review_due_at  # the sweep brings it back

    before = row.review_due_at - timedelta(days=1)
    with unit_of_work(engine) as s:
        assert supervise(s, task, now=before, policy=DEFAULT_POLICY, org=loaded_org) == []
    with unit_of_work(engine) as s:
        taken = supervise(
            s, task, now=row.review_due_at + timedelta(hours=1), policy=DEFAULT_POLICY, org=loaded_org
        )
    assert [t.order.step for t in taken] == ["review#1"]
    with unit_of_work(engine) as s:  # again at the same time: taken once
        assert (
            supervise(
                s, task, now=row.review_due_at + timedelta(hours=2), policy=DEFAULT_POLICY, org=loaded_org
            )
            == []
        )
    with unit_of_work(engine) as s:
        told = sorted(
            n.unit_code
            for n in s.exec(
                select(Notification).where(Notification.task_id == task, Notification.kind == "review")
            )
        )
    assert told == ["CGJD-JW", "SHI1"]  # the zone's room (its leaders) and the handling unit
    later = desk.row(task)
    assert later.review_due_at is not None and later.review_due_at > row.review_due_at  # the next quarter

    reviewed = desk.ok(task, "review", LEADER, reason="调度会研究：重新提出处置意见")
    assert (reviewed["status"], reviewed["stage"], reviewed["review_due_at"]) == (
        "accepted",
        "disposition",
        None,
    )
    assert approve(desk, task, {"disposition": "close_out"})["status"] == "closed"
    assert [(r.stage, r.result) for r in stages(desk, task)] == [
        ("disposition", "held"),
        ("disposition", "concluded"),
    ]


@pytest.mark.parametrize(
    ("subject", "why"),
    [
        ({"name": "陈国栋", "position": "副县长", "rank": "county"}, "县处级"),
        ({"name": "孙立", "unit": "第一纪检监察室", "rank": "village"}, "纪检监察机关干部"),
    ],
)
def test_a_clue_beyond_the_countys_jurisdiction_is_recorded_and_referred_upward(
    desk: Desk, subject: dict[str, Any], why: str
) -> None:
    task = desk.task(factories.clue(subject=subject))
    detail = desk.get(task, "t.ajgl.handler").json()
    assert (detail["rule"], detail["handler_unit"], detail["verifier_unit"], detail["stage"]) == (
        "refer_upward", "AJGL", None, "referral",
    )  # fmt: skip
    assert why in detail["reason"]
    desk.ok(task, "accept", "t.ajgl.handler")
    done = desk.ok(task, "submit", "t.ajgl.handler", outcome={"referred_to": "市纪委监委"})
    assert (done["status"], done["close_reason"]) == ("closed", "referred")  # recorded, no approval
    assert [(r.stage, r.result) for r in stages(desk, task)] == [("referral", "concluded")]
    # the named reporter is told, through the platform that sent the clue
    state = desk.http.get(f"{desk.api}/api/v1/events/{desk.event_of(task)}", headers=desk.source).json()
    ack = state["task"]["acknowledgement"]
    assert ack["acknowledged_at"] and "移送上级纪委监委" in ack["message"]


def test_a_named_reporter_is_told_of_acceptance_through_the_source_within_the_clock(desk: Desk) -> None:
    task = clue_task(desk)
    event = desk.event_of(task)

    def acknowledgement() -> dict[str, Any]:
        r = desk.http.get(f"{desk.api}/api/v1/events/{event}", headers=desk.source)
        assert r.status_code == 200, r.text
        ack: dict[str, Any] = r.json()["task"]["acknowledgement"]
        return ack

    waiting = acknowledgement()
    assert waiting["acknowledged_at"] is None and waiting["message"] is None
    received = desk.row(task).received_at
    assert 14 <= (datetime.fromisoformat(waiting["due_at"]) - received).days <= 31  # 15 working days
    desk.ok(task, "accept", HANDLER)
    told = acknowledgement()
    assert (
        told["acknowledged_at"]
        and "已受理" in told["message"]
        and desk.row(task).ledger_no in told["message"]
    )

    anonymous = desk.task(factories.clue(reporter={"anonymous": True}))
    state = desk.http.get(f"{desk.api}/api/v1/events/{desk.event_of(anonymous)}", headers=desk.source).json()
    assert state["task"]["acknowledgement"] is None  # nobody to tell


def test_assisting_units_and_people_are_subject_to_recusal_in_words(desk: Desk) -> None:
    task = clue_task(desk)
    # the subject's own township may not be added to help, and so never reads the clue
    refused = error_of(desk.move(task, "assist", LEADER, units=["DXZ-JW"], reason="请协助"), 403)
    assert refused["message"].startswith("回避") and "大兴镇纪委" in refused["message"]
    assert desk.get(task, "deng.xiaoming").status_code == 404
    # nor a person who declared a conflict with the township (康伟 recuses 大兴镇)
    refused = error_of(desk.move(task, "assist", LEADER, logins=["kang.wei"], reason="请协助"), 403)
    assert refused["message"].startswith("回避") and "康伟" in refused["message"]
    assert desk.get(task, "kang.wei").status_code == 404
    # an unconflicted unit may
    helped = desk.ok(task, "assist", LEADER, units=["FDX-JW"], reason="请协助调取材料")
    assert helped["assisting_units"] == ["FDX-JW"]


def test_designating_the_subjects_township_is_refused_with_the_reason(desk: Desk) -> None:
    task = clue_task(desk)
    refused = error_of(desk.move(task, "designate", LEADER, unit="DXZ-JW", reason="改派"), 403)
    assert refused["message"].startswith("回避") and "被反映人" in refused["message"]


def test_a_recusal_of_the_reporter_is_matched_without_the_name_being_stored(desk: Desk) -> None:
    task = clue_task(desk, reporter={"name": "任建国", "phone": "13900001111"})  # 任静's father
    assert "ren.jing" in desk.row(task).recused_logins
    assert desk.ok(task, "accept", HANDLER)["status"] == "accepted"
    refused = error_of(desk.move(task, "progress", "ren.jing", note="了解情况"), 403)
    assert refused["message"].startswith("回避")
    with unit_of_work(desk.engine) as s:
        stored = s.execute(sa.text("SELECT document FROM org_versions")).scalar_one()
    assert "任建国" not in str(stored)


def test_a_staff_member_may_declare_a_conflict_and_the_task_leaves_their_hands(desk: Desk) -> None:
    task = desk.task()  # a complaint of 大兴镇: DXZ-JW has two handlers
    desk.ok(task, "accept", "deng.xiaoming")
    left = desk.ok(task, "recuse", "deng.xiaoming", reason="投诉人系本人亲属")
    assert (left["status"], left["handler_login"]) == ("accepted", None)
    assert left["allowed_moves"] == [] and left["history"][-1]["move"] == "recuse"
    assert "自行回避" in left["history"][-1]["note"]
    assert error_of(desk.move(task, "progress", "deng.xiaoming", note="x"), 403)["message"].startswith("回避")
    assert desk.ok(task, "progress", "wei.chunyan", note="已接手")["status"] == "accepted"


def test_when_every_handler_of_the_unit_recuses_the_task_goes_back_to_the_zone(desk: Desk) -> None:
    task = clue_task(desk)
    desk.ok(task, "recuse", "xu.dongsheng", reason="与被反映人系同学")
    back = desk.ok(task, "recuse", "ren.jing", reason="与被反映人系邻居")
    assert back["status"] == "returned"  # the zone leader designates another unit
    notes = [n for n in desk.notification_rows(task) if n.kind == "returned"]
    assert [n.unit_code for n in notes] == ["SHI1"]
    rerouted = desk.route_triage(task, LEADER, unit="FDX-JW", reason="改由丰登乡纪委交叉办理")
    assert rerouted.status_code == 200 and rerouted.json()["handler_unit"] == "FDX-JW"


def test_the_subject_history_shows_earlier_items_to_those_entitled_only(desk: Desk) -> None:
    first = clue_task(desk)
    about_unit = desk.task(factories.complaint(about_unit="大兴村委会"))
    desk.ok(about_unit, "accept", "deng.xiaoming")  # 大兴镇纪委
    desk.ok(about_unit, "submit", "deng.xiaoming", outcome={"resolved": True, "reply": "已联系投诉人张三"})
    later = desk.task(factories.clue())  # the least loaded other township handles it
    handler = TOWNSHIP_HANDLER[desk.row(later).handler_unit or ""]

    history = desk.get(later, handler).json()["subject_history"]
    by_task = {h["task_id"]: h["match"] for h in history}
    assert by_task == {first: "subject", about_unit: "unit"}
    earlier = next(h for h in history if h["task_id"] == about_unit)
    assert earlier["outcome"] == {"resolved": True}  # figures only: a reply may name people
    assert desk.get(later, VERIFIER).json()["subject_history"] is not None
    assert desk.get(later, "gu.xiaomei").json()["subject_history"] is None  # on-call: not entitled
    with unit_of_work(desk.engine) as s:  # matched on keyed hashes, never on the name
        keys = s.execute(sa.text("SELECT subject_key FROM events WHERE kind = 'clue'")).scalars().all()
    assert len(set(keys)) == 1 and "赵德明" not in str(keys)
