"""The monthly report against hand-computed figures (DESIGN §7).

One month (October 2026) of events with known outcomes is fed through the real intake (HTTP),
routing and moves, at chosen times: complaints closed on time and late, unsatisfied and reopened,
``resolved = false``, one without feedback, one still open past its deadline with an approved
extension; a township with too few answers to be ranked; an enterprise request; clues at each
stage with a concluded case. The report's figures and ranking are compared with values worked out
by hand below, in JSON and in the XLSX read back with openpyxl. Then November happens (the open
task is designated elsewhere and closed, new items arrive) and the October report, made again,
has the same figures.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from dispatcher.bootstrap import build_runtime
from dispatcher.db import unit_of_work
from dispatcher.monthly.periods import Period
from dispatcher.monthly.training import issue_trainings, mark_attendance
from dispatcher.org.model import Org
from dispatcher.reports import render
from dispatcher.reports.build import build_report
from dispatcher.reports.charts import draw_all
from dispatcher.reports.service import generate_report, report_file
from dispatcher.routing.dispatch import dispatch_event
from dispatcher.settings import Settings
from dispatcher.supervision.policy import DEFAULT_POLICY
from dispatcher.tasks.access import Actor
from dispatcher.tasks.extensions import ExtensionRequest, ask, decide
from dispatcher.tasks.lifecycle import Move
from dispatcher.tasks.moves import MoveRequest, apply_move
from tests import factories
from tests.conftest import TEST_SECRET
from tests.integration.tasking import Desk, open_desk

TZ = ZoneInfo("Asia/Shanghai")
POLICY = DEFAULT_POLICY
OCTOBER = Period(2026, 10)

A, B, C, DEPT = "DXZ-JW", "CGJD-JW", "HSZ-JW", "RSJ"
HANDLERS = {A: "deng.xiaoming", B: "xu.dongsheng", C: "liang.zhenyu", DEPT: "chai.xiaofeng",
            "FDX-JW": "tao.li"}  # fmt: skip
VERIFIER = Actor("fang.liqun", "verifier", "SHI1")
DEPT_VERIFIER = Actor("jiang.rui", "verifier", "DFZF")
LEADER = Actor("han.zhiyuan", "zone_leader", "SHI1", zones=frozenset({"Z1"}))
PLATFORM = Actor.source("12345")
SYSTEM = Actor.system("test")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.fixture
def desk(api_url: str, engine: sa.Engine, loaded_org: Org) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


class Month:
    """Drives tasks through the core at chosen moments."""

    def __init__(self, desk: Desk, org: Org) -> None:
        self.desk, self.org, self.engine = desk, org, desk.engine

    def received(self, body: dict[str, Any], when: str) -> int:
        moment = at(when)
        event_id = self.desk.publish({**body, "received_at": moment.isoformat()})
        with unit_of_work(self.engine) as s:
            task = dispatch_event(s, event_id, now=moment, policy=POLICY, secret_key=TEST_SECRET)
            assert task is not None and task.id is not None
            return task.id

    def unit(self, task_id: int) -> str:
        unit = self.desk.row(task_id).handler_unit
        assert unit is not None
        return unit

    def handler(self, task_id: int) -> Actor:
        unit = self.unit(task_id)
        return Actor(HANDLERS[unit], "handler", unit)

    def move(self, actor: Actor, task_id: int, move: Move, when: str, **body: Any) -> None:
        with unit_of_work(self.engine) as s:
            apply_move(s, actor, task_id, MoveRequest(move=move, **body), now=at(when), org=self.org,
                       policy=POLICY)  # fmt: skip

    def accept(self, task_id: int, when: str) -> None:
        self.move(self.handler(task_id), task_id, Move.accept, when)

    def submit(self, task_id: int, when: str, outcome: dict[str, Any]) -> None:
        self.move(self.handler(task_id), task_id, Move.submit, when, outcome=outcome)

    def verify(self, task_id: int, when: str, verifier: Actor = VERIFIER) -> None:
        self.move(verifier, task_id, Move.verify, when)

    def answer(self, task_id: int, when: str, rating: str, resolved: bool | None) -> None:
        move = Move.feedback_reopen if rating == "unsatisfied" else Move.feedback_close
        self.move(PLATFORM, task_id, move, when, feedback={"rating": rating, "resolved": resolved})

    def request_done(self, task_id: int, submit: str, answers: list[tuple[str, str, bool | None]],
                     verifier: Actor = VERIFIER) -> None:  # fmt: skip
        self.submit(task_id, submit, {"resolved": True, "reply": "已办理"})
        self.verify(task_id, submit, verifier)
        for when, rating, resolved in answers:
            self.answer(task_id, when, rating, resolved)

    def approve(self, task_id: int, when: str, outcome: dict[str, Any]) -> None:
        self.submit(task_id, when, outcome)
        self.verify(task_id, when)


def feed_october(desk: Desk, org: Org) -> dict[str, int]:
    m, t = Month(desk, org), {}
    complaint = factories.complaint
    # Unit A (大兴镇纪委): six complaints received Monday 12 October 09:00; accept by 13 Oct 17:30,
    # resolve by 19 Oct 17:30 (5 working days).
    for name in ("a1", "a2", "a3", "a4", "a5", "a6"):
        t[name] = m.received(complaint(), "2026-10-12T09:00")
        assert m.unit(t[name]) == A
    for name in ("a1", "a2", "a3", "a5", "a6"):
        m.accept(t[name], "2026-10-12T10:00")
    m.accept(t["a4"], "2026-10-14T10:00")  # late: the only response not on time
    m.request_done(t["a1"], "2026-10-13T10:00", [("2026-10-14T09:00", "satisfied", True)])
    m.request_done(t["a2"], "2026-10-13T10:00", [("2026-10-14T09:00", "basically_satisfied", True)])
    m.request_done(t["a3"], "2026-10-14T10:00", [("2026-10-15T09:00", "unsatisfied", False)])
    m.submit(t["a3"], "2026-10-16T10:00", {"resolved": True, "reply": "已重新办理"})  # reopened, done again
    m.verify(t["a3"], "2026-10-16T11:00")
    m.answer(t["a3"], "2026-10-19T09:00", "satisfied", True)
    m.request_done(t["a4"], "2026-10-26T10:00", [("2026-10-27T09:00", "satisfied", False)])  # late
    m.submit(t["a5"], "2026-10-13T10:00", {"resolved": True, "reply": "已办理"})
    m.verify(t["a5"], "2026-10-13T10:00")
    m.move(SYSTEM, t["a5"], Move.feedback_expire, "2026-10-21T09:00")  # no answer: not an answer
    with unit_of_work(m.engine) as s:  # a6: an approved extension of 5 days, still open and late at the end
        ext = ask(s, m.handler(t["a6"]), t["a6"], ExtensionRequest(days=5, reason="需补充调查"),
                  now=at("2026-10-16T10:00"), org=org, policy=POLICY)  # fmt: skip
        ext_id = ext.id
    assert ext_id is not None
    with unit_of_work(m.engine) as s:
        decide(s, LEADER, t["a6"], ext_id, approve=True, note=None, now=at("2026-10-16T15:00"), org=org,
               policy=POLICY)  # fmt: skip

    # Unit B (城关街道纪工委): five complaints, all on time, all satisfied and resolved.
    for i in range(5):
        t[f"b{i}"] = m.received(complaint(township="城关街道"), "2026-10-13T09:00")
        assert m.unit(t[f"b{i}"]) == B
        m.accept(t[f"b{i}"], "2026-10-13T09:30")
        m.request_done(t[f"b{i}"], "2026-10-14T09:00", [("2026-10-15T09:00", "satisfied", True)])

    # Unit C (和顺镇纪委): two answers, below the ranking minimum of five.
    for i in range(2):
        t[f"c{i}"] = m.received(complaint(township="和顺镇"), "2026-10-14T09:00")
        assert m.unit(t[f"c{i}"]) == C
        m.accept(t[f"c{i}"], "2026-10-14T09:30")
        m.request_done(t[f"c{i}"], "2026-10-15T09:00", [("2026-10-16T09:00", "satisfied", True)])

    # An enterprise request to 人社局, verified by the 党风政风监督室.
    t["e"] = m.received(factories.enterprise_request(), "2026-10-14T09:00")
    assert m.unit(t["e"]) == DEPT
    m.accept(t["e"], "2026-10-14T09:30")
    m.request_done(t["e"], "2026-10-15T09:00", [("2026-10-16T09:00", "satisfied", True)],
                   verifier=DEPT_VERIFIER)  # fmt: skip

    # Clues (cross-handled in zone 1, approved by the room): one through talk letter to a concluded
    # case, one held, one in preliminary verification.
    for name in ("k1", "k2", "k3"):
        t[name] = m.received(factories.clue(), "2026-10-15T09:00")
        m.accept(t[name], "2026-10-15T10:00")
    m.approve(t["k1"], "2026-10-20T10:00", {"disposition": "talk_letter"})
    m.approve(t["k1"], "2026-10-27T10:00", {"result": "case_filed"})
    m.approve(t["k1"], "2026-10-30T10:00", {
        "disciplined_count": 2, "sanctions": {"party": 1, "government": 1},
        "four_forms": {"first": 1, "second": 1}, "amount_recovered": 5000,
    })  # fmt: skip
    m.approve(t["k2"], "2026-10-22T10:00", {"disposition": "hold"})
    m.approve(t["k3"], "2026-10-23T10:00", {"disposition": "preliminary_verification"})
    return t


def feed_november(desk: Desk, org: Org, t: dict[str, int]) -> None:
    """What happens after October: none of it may change October's figures."""
    m = Month(desk, org)
    with unit_of_work(m.engine) as s:  # a6 goes to another township and is finished there
        apply_move(s, LEADER, t["a6"], MoveRequest(move=Move.designate, unit="FDX-JW", reason="调整承办"),
                   now=at("2026-11-02T09:00"), org=org, policy=POLICY)  # fmt: skip
    m.accept(t["a6"], "2026-11-02T10:00")
    m.request_done(t["a6"], "2026-11-03T10:00", [("2026-11-04T09:00", "unsatisfied", False)])
    m.submit(t["a6"], "2026-11-05T10:00", {"resolved": True, "reply": "再次办理"})
    m.verify(t["a6"], "2026-11-05T11:00")
    m.answer(t["a6"], "2026-11-06T09:00", "satisfied", True)
    m.approve(t["k3"], "2026-11-10T10:00", {"result": "clarified"})
    late = m.received(factories.complaint(), "2026-11-09T09:00")
    m.accept(late, "2026-11-09T10:00")


def expected_a() -> dict[str, Any]:
    """Unit A by hand: 6 received; 5 closed (a1–a5), 4 on time (a4 late); 5 responded on time (a4
    late); answers a1, a2, a3 ×2, a4 = 5, of them resolved a1, a2, a3's second = 3, satisfied a1,
    a2 (basically), a3's second, a4 = 4; reopened a3; extended a6; late a4 and a6 (open past due)."""
    return {
        "received": 6, "closed": 5, "closed_on_time": 4, "responded_on_time": 5, "answers": 5,
        "resolved_asked": 5, "resolved_yes": 3, "satisfied": 4, "returned": 0, "reopened": 1,
        "extended": 1, "late_open": 1, "late": 2, "overdue_open": 1,
        "completion_rate": 0.8333, "on_time_rate": 0.8, "response_rate": 0.8333,
        "resolution_rate": 0.6, "satisfaction_rate": 0.8, "overdue_rate": 0.3333, "reopen_rate": 0.1667,
        # closed − received, in days: a1 2, a2 2, a3 7, a4 15, a5 9 → 35 / 5
        "avg_handling_days": 7.0,
    }  # fmt: skip


def score(response: float, resolution: float, satisfaction: float, overdue: float, reopen: float) -> float:
    return round(
        100 * (0.30 * response + 0.35 * resolution + 0.35 * satisfaction) - 10 * overdue - 10 * reopen, 2
    )


def test_the_october_report_matches_the_figures_worked_out_by_hand_and_stays_so(
    desk: Desk, engine: sa.Engine, loaded_org: Org, settings: Settings
) -> None:
    t = feed_october(desk, loaded_org)
    with unit_of_work(engine) as s:  # trainings of October: one unit holds it with 2 of its people
        issue_trainings(s, loaded_org, OCTOBER, now=at("2026-10-08T08:30"), policy=POLICY)
    training_task = _training_task(engine, B)
    with unit_of_work(engine) as s:
        marker = Actor("xu.dongsheng", "handler", B)
        present = ["xu.dongsheng", "ren.jing"]
        mark_attendance(s, marker, training_task, logins=present, present=True, now=at("2026-10-20T15:00"))
    organiser, month = Actor("xu.dongsheng", "handler", B), Month(desk, loaded_org)
    month.move(organiser, training_task, Move.accept, "2026-10-20T09:00")
    month.move(organiser, training_task, Move.submit, "2026-10-20T16:00", outcome={"held_on": "2026-10-20"})

    with unit_of_work(engine, read_only=True) as s:
        report = build_report(s, OCTOBER, loaded_org, POLICY, at("2026-11-01T01:00"))

    month = report["requests"]["month"]
    a = month["units"][A]["complaint"]
    assert {k: a[k] for k in expected_a()} == expected_a()
    assert month["units"][B]["all"]["satisfaction_rate"] == 1.0
    total = month["total"]["all"]
    assert (total["received"], total["closed"], total["answers"]) == (
        6 + 5 + 2 + 1,
        5 + 5 + 2 + 1,
        5 + 5 + 2 + 1,
    )
    assert month["total"]["enterprise_request"]["received"] == 1
    assert (
        report["requests"]["ytd"]["total"]["all"]["received"] == total["received"]
    )  # nothing before October
    assert report["requests"]["last_year"] is None and report["year_on_year"] is None  # no October 2025

    townships = {r["unit"]: r for r in report["ranking"]["township_commission"]}
    assert townships[B]["rank"] == 1 and townships[B]["score"] == score(1, 1, 1, 0, 0) == 100.0
    assert townships[A]["rank"] == 2 and townships[A]["score"] == score(0.8333, 0.6, 0.8, 0.3333, 0.1667)
    assert townships[C]["rank"] is None and townships[C]["score"] is None  # 2 answers < 5: not ranked
    assert [r["unit"] for r in report["ranking"]["township_commission"]][-1] == C
    assert report["ranking"]["functional_department"] == [
        {"unit": DEPT, "rank": None, "score": None, "received": 1, "answers": 1, "response_rate": 1.0,
         "resolution_rate": 1.0, "satisfaction_rate": 1.0, "overdue_rate": 0.0, "reopen_rate": 0.0}
    ]  # fmt: skip

    clues = report["clues"]["month"]["total"]
    assert {
        k: clues[k]
        for k in (
            "received",
            "dispositions",
            "disposition_talk_letter",
            "disposition_preliminary_verification",
            "disposition_hold",
            "disposition_close_out",
            "disposition_on_time_rate",
            "talk_letters",
            "verifications",
            "cases_filed",
            "concluded",
            "people_disciplined",
            "sanction_party",
            "sanction_government",
            "sanction_organizational",
            "form_first",
            "form_second",
            "amount_recovered",
        )
    } == {
        "received": 3,
        "dispositions": 3,
        "disposition_talk_letter": 1,
        "disposition_preliminary_verification": 1,
        "disposition_hold": 1,
        "disposition_close_out": 0,
        "disposition_on_time_rate": 1.0,
        "talk_letters": 1,
        "verifications": 1,
        "cases_filed": 1,
        "concluded": 1,
        "people_disciplined": 2,
        "sanction_party": 1,
        "sanction_government": 1,
        "sanction_organizational": 0,
        "form_first": 1,
        "form_second": 1,
        "amount_recovered": 5000,
    }
    assert set(report["ranking"]) == {"township_commission", "functional_department"}  # clues: never ranked

    trained = report["training"]["month"]
    assert trained["units"][B] == {"issued": 1, "completed": 1, "present": 2, "expected": 3,
                                   "completion_rate": 1.0, "attendance_rate": 0.6667}  # fmt: skip
    assert trained["total"]["completed"] == 1 and trained["total"]["issued"] == len(trained["units"])
    assert report["hot_spots"]["repeated_subjects"] == 1  # 赵德明, three clues: counted, never named
    assert "赵德明" not in str(report)

    # the XLSX: real numbers with number formats, read back with openpyxl
    book = load_workbook(io.BytesIO(render.to_xlsx(report)))
    assert {
        "总览",
        "协作区",
        "单位",
        "排名·乡镇（街道）纪委",
        "排名·职能部门",
        "问题线索",
        "培训",
        "热点",
    } <= set(book.sheetnames)
    sheet = book["单位"]
    header = [c.value for c in sheet[1]]
    row = next(
        r
        for r in sheet.iter_rows(min_row=2)
        if r[1].value == A and r[2].value == "群众投诉" and r[3].value == "本月"
    )
    cells = dict(zip(header, row, strict=True))
    assert (
        cells["受理"].value == 6 and cells["满意率"].value == 0.8 and cells["满意率"].number_format == "0.00%"
    )
    assert cells["平均办理天数"].value == 7.0 and cells["平均办理天数"].number_format == "0.0"
    ranking = book["排名·乡镇（街道）纪委"]
    ranks = {r[1].value: (r[2].value, r[3].value) for r in ranking.iter_rows(min_row=2)}
    assert ranks[B] == (1, 100.0) and ranks[C][0] == "不参与排名"
    clue_sheet = book["问题线索"]
    head = [c.value for c in clue_sheet[1]]
    first = dict(zip(head, next(clue_sheet.iter_rows(min_row=2)), strict=True))
    assert first["追缴金额（元）"].value == 5000 and first["追缴金额（元）"].number_format == "#,##0.00"

    # a month later the October report is made again: the same figures
    feed_november(desk, loaded_org, t)
    with unit_of_work(engine, read_only=True) as s:
        again = build_report(s, OCTOBER, loaded_org, POLICY, at("2026-12-01T01:00"))
    assert {**again, "generated_at": None} == {**report, "generated_at": None}


def _training_task(engine: sa.Engine, unit: str) -> int:
    with unit_of_work(engine) as s:
        task_id = s.execute(
            sa.text("SELECT task_id FROM trainings WHERE unit_code = :u AND period = '2026-10'"), {"u": unit}
        ).scalar_one()
    return int(task_id)


def test_the_report_is_made_once_kept_and_served_in_every_format(
    desk: Desk, engine: sa.Engine, loaded_org: Org, settings: Settings
) -> None:
    feed_october(desk, loaded_org)
    rt = replace(build_runtime(settings), now=lambda: at("2026-11-01T01:00"))
    first = generate_report(rt, OCTOBER)
    second = generate_report(rt, OCTOBER)
    assert first["created"] and not second["created"] and first["report_id"] == second["report_id"]
    report_id = first["report_id"]
    with unit_of_work(engine) as s:
        assert s.execute(sa.text("SELECT count(*) FROM reports")).scalar_one() == 1
        told = s.execute(sa.text("SELECT unit_code, link FROM notifications WHERE kind = 'report'")).all()
    assert ("SHI1", f"/reports/{report_id}") in told  # zone leaders are told, with the link

    leader = desk.who("han.zhiyuan")
    for fmt, media in (
        ("xlsx", "spreadsheetml"),
        ("csv", "text/csv"),
        ("html", "text/html"),
        ("json", "json"),
    ):
        r = desk.http.get(f"{desk.api}/api/v1/reports/{report_id}.{fmt}", headers=leader)
        assert r.status_code == 200 and media in r.headers["content-type"], (fmt, r.text[:200])
        assert "report-2026-10" in r.headers["content-disposition"]
    assert desk.http.get(f"{desk.api}/api/v1/reports/{report_id}.xlsx").status_code == 401
    assert desk.http.get(f"{desk.api}/api/v1/reports/{report_id}.pdf", headers=leader).status_code == 422
    assert desk.http.get(f"{desk.api}/api/v1/reports/999999", headers=leader).status_code == 404
    listed = desk.http.get(f"{desk.api}/api/v1/reports?period=2026-10", headers=leader).json()["reports"]
    assert [r["id"] for r in listed] == [report_id]
    assert desk.http.get(f"{desk.api}/api/v1/reports?period=2026-13", headers=leader).status_code == 422
    body = desk.http.get(f"{desk.api}/api/v1/reports/{report_id}.html", headers=leader).text
    assert "月度工作报告" in body and "<svg" in body and "不参与排名" in body
    name, content = report_file(rt, report_id, "json")
    assert name == "report-2026-10.json" and b'"period": "2026-10"' in content
    charts = draw_all(build_report_again(engine, loaded_org))
    assert {"intake_by_week", "handling_days", "units_on_time", "trend", "hot_spots"} <= set(charts)


def build_report_again(engine: sa.Engine, org: Org) -> dict[str, Any]:
    with unit_of_work(engine, read_only=True) as s:
        return build_report(s, OCTOBER, org, POLICY, at("2026-11-01T01:00") + timedelta(days=3))
