"""The monthly jobs (DESIGN §7): once per period, caught up when missed; the dispatch meeting with
its agenda and decisions; the training with its rotation, suggestion and attendance."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from dispatcher.bootstrap import build_runtime
from dispatcher.db import unit_of_work
from dispatcher.models import Meeting, ScheduleRun, Task, Training
from dispatcher.monthly import runs
from dispatcher.monthly.periods import Job, Period
from dispatcher.monthly.service import request_due, run_job, run_now
from dispatcher.monthly.training import issue_trainings, next_topic, suggest
from dispatcher.org.model import Org
from dispatcher.routing.dispatch import dispatch_event
from dispatcher.runtime import Runtime
from dispatcher.settings import Settings
from dispatcher.supervision.policy import DEFAULT_POLICY
from dispatcher.tasks.access import Actor
from dispatcher.tasks.lifecycle import Move
from dispatcher.tasks.moves import MoveRequest, apply_move
from dispatcher.wallclock import utcnow
from tests import factories
from tests.conftest import TEST_SECRET
from tests.integration.tasking import Desk, error_of, open_desk

TZ = ZoneInfo("Asia/Shanghai")
LEADER, ROOM_HANDLER = "han.zhiyuan", "he.jiaming"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


@dataclass
class RecordingQueue:
    """The runtime's queue, recording what the scheduler asks of the workers."""

    monthly: list[tuple[str, str]] = field(default_factory=list)

    def run_monthly(self, job: str, period: str) -> None:
        self.monthly.append((job, period))

    def route_events(self, event_ids: Sequence[str]) -> None: ...
    def deliver_webhooks(self, notification_ids: Sequence[int]) -> None: ...
    def supervise(self, task_ids: Sequence[int]) -> None: ...
    def routing_backlog(self) -> int:
        return 0

    def ping(self) -> bool:
        return True

    def close(self) -> None: ...


def runtime_at(settings: Settings, when: str, queue: RecordingQueue | None = None) -> Runtime:
    rt = build_runtime(settings, queue=queue or RecordingQueue())  # type: ignore[arg-type]
    return replace(rt, now=lambda: at(when))


@pytest.fixture
def desk(api_url: str, engine: sa.Engine, loaded_org: Org) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


def in_service_since(engine: sa.Engine, when: str) -> None:
    with unit_of_work(engine) as s:
        s.execute(
            sa.text("UPDATE org_versions SET loaded_at = :t"),
            {"t": at(when).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)},
        )


def run_rows(engine: sa.Engine) -> list[tuple[str, str, str]]:
    with unit_of_work(engine) as s:
        return sorted((r.job, r.period, r.state) for r in s.exec(select(ScheduleRun)).all())


# --- once per period, caught up --------------------------------------------------------------


def test_a_scheduler_down_across_the_first_catches_the_missed_periods_up_and_asks_each_once(
    engine: sa.Engine, loaded_org: Org, settings: Settings
) -> None:
    in_service_since(engine, "2026-09-20T10:00")  # in service since 20 September
    queue = RecordingQueue()
    rt = runtime_at(settings, "2026-11-02T09:00", queue)  # no scheduler ran on 1 October nor 1 November
    asked = request_due(rt)
    # reports of September and October; meetings and trainings of October (8 Oct) and November (2 Nov);
    # nothing due before the system came into service (the September meeting fell on 1 September)
    assert sorted(asked) == sorted(queue.monthly) == [
        ("monthly-dispatch", "2026-10"), ("monthly-dispatch", "2026-11"),
        ("monthly-report", "2026-09"), ("monthly-report", "2026-10"),
        ("monthly-training", "2026-10"), ("monthly-training", "2026-11"),
    ]  # fmt: skip
    assert request_due(rt) == []  # asked again (another replica, the next trigger): nothing new
    assert len(queue.monthly) == 6
    for job, period in asked:
        assert run_job(rt, Job(job), Period.parse(period))["state"] == "succeeded"
    assert {state for *_, state in run_rows(engine)} == {"succeeded"}
    with unit_of_work(engine) as s:
        meetings = s.exec(select(Meeting.zone_code, Meeting.period)).all()
        assert sorted(meetings) == sorted(
            (z.code, p) for z in loaded_org.zones for p in ("2026-10", "2026-11")
        )
        assert s.execute(sa.text("SELECT count(*) FROM reports")).scalar_one() == 2
    # a worker given the same run again (a redelivery) does nothing
    again = run_job(rt, Job.dispatch, Period(2026, 11))
    assert again["state"] == "succeeded" and again["attempts"] == 1


def test_a_lost_message_or_a_dead_worker_is_handed_out_again_and_finished_once(
    engine: sa.Engine, loaded_org: Org, settings: Settings
) -> None:
    in_service_since(engine, "2026-10-20T10:00")
    queue = RecordingQueue()
    rt = runtime_at(settings, "2026-11-02T09:00", queue)
    request_due(rt)
    with unit_of_work(engine) as s:  # the training run's worker was killed mid-run
        assert runs.claim(s, "monthly-training", "2026-11", now=at("2026-11-02T09:00")) is not None
    later = runtime_at(settings, "2026-11-02T09:30", queue)
    queue.monthly.clear()
    request_due(later)
    # the pending ones whose message was lost and the stale running one are handed out again
    assert sorted(queue.monthly) == [
        ("monthly-dispatch", "2026-11"),
        ("monthly-report", "2026-10"),
        ("monthly-training", "2026-11"),
    ]
    for job, period in queue.monthly:
        run_job(later, Job(job), Period.parse(period))
    with unit_of_work(engine) as s:
        trainings = s.exec(select(Training.unit_code).where(Training.period == "2026-11")).all()
        run = runs.get(s, "monthly-training", "2026-11")
    assert len(trainings) == len(set(trainings)) > 0  # one per unit
    assert run is not None and run.state == "succeeded" and run.attempts == 2


def test_two_workers_on_one_run_make_one_report(
    engine: sa.Engine, loaded_org: Org, settings: Settings
) -> None:
    rt = runtime_at(settings, "2026-11-01T01:00")
    with unit_of_work(engine) as s:
        runs.request(s, "monthly-report", "2026-10", trigger=runs.Trigger.cron, by="t", now=rt.now())
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: results.append(run_job(rt, Job.report, Period(2026, 10))))
               for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with unit_of_work(engine) as s:
        assert s.execute(sa.text("SELECT count(*) FROM reports")).scalar_one() == 1
        run = runs.get(s, "monthly-report", "2026-10")
    assert run is not None and run.state == "succeeded" and run.attempts == 1


def test_running_a_period_by_hand_twice_changes_nothing_and_a_future_one_is_refused(
    desk: Desk, engine: sa.Engine, loaded_org: Org, settings: Settings
) -> None:
    rt = runtime_at(settings, "2026-11-30T10:00")
    did, first = run_now(rt, Job.training, Period(2026, 11), by="cli")
    did_again, second = run_now(rt, Job.training, Period(2026, 11), by="cli")
    assert did and not did_again and first["id"] == second["id"] and second["trigger"] == "manual"
    with unit_of_work(engine) as s:
        assert len(s.exec(select(Training)).all()) == first["result"]["trainings"]
    with pytest.raises(Exception, match="not due yet"):
        run_now(rt, Job.training, Period(2026, 12), by="cli")
    listed = desk.http.get(f"{desk.api}/api/v1/schedules/runs", headers=desk.who("gu.xiaomei")).json()["runs"]
    assert [(r["job"], r["period"], r["state"]) for r in listed] == [
        ("monthly-training", "2026-11", "succeeded")
    ]
    error_of(
        desk.http.get(f"{desk.api}/api/v1/schedules/runs?job=nightly", headers=desk.who("gu.xiaomei")), 422
    )
    assert desk.http.get(f"{desk.api}/api/v1/schedules/runs").status_code == 401


# --- the dispatch meeting --------------------------------------------------------------------


def routed(desk: Desk, body: dict[str, Any], received: str, *, now: str | None = None) -> int:
    event_id = desk.publish({**body, "received_at": at(received).isoformat()})
    with unit_of_work(desk.engine) as s:
        task = dispatch_event(s, event_id, now=at(now or received), secret_key=TEST_SECRET)
        assert task is not None and task.id is not None
        return task.id


def move(desk: Desk, org: Org, actor: Actor, task_id: int, m: Move, when: str, **kw: Any) -> None:
    with unit_of_work(desk.engine) as s:
        apply_move(s, actor, task_id, MoveRequest(move=m, **kw), now=at(when), org=org, policy=DEFAULT_POLICY)


def meeting_task(engine: sa.Engine, zone: str, period: str) -> int:
    with unit_of_work(engine) as s:
        meeting = s.exec(select(Meeting).where(Meeting.zone_code == zone, Meeting.period == period)).one()
        return meeting.task_id


def test_the_meeting_agenda_names_the_zones_work_and_its_decisions_become_supervised_tasks(
    desk: Desk, engine: sa.Engine, loaded_org: Org, settings: Settings
) -> None:
    handler = Actor("deng.xiaoming", "handler", "DXZ-JW")
    # overdue (imported late, past every deadline) and stale: received in September, untouched
    late = routed(desk, factories.complaint(), "2026-09-01T09:00", now="2026-10-20T09:00")
    # piled on 大兴镇: six more open complaints, none on 城关街道 — a re-balancing is suggested
    for _ in range(6):
        routed(desk, factories.complaint(), "2026-10-28T09:00")
    # answered unsatisfied in October (reopened)
    sad = routed(desk, factories.complaint(), "2026-10-12T09:00")
    move(desk, loaded_org, handler, sad, Move.accept, "2026-10-12T10:00")
    move(
        desk,
        loaded_org,
        handler,
        sad,
        Move.submit,
        "2026-10-13T10:00",
        outcome={"resolved": True, "reply": "r"},
    )
    move(desk, loaded_org, Actor("fang.liqun", "verifier", "SHI1"), sad, Move.verify, "2026-10-13T11:00")
    move(desk, loaded_org, Actor.source("p"), sad, Move.feedback_reopen, "2026-10-14T09:00",
         feedback={"rating": "unsatisfied", "resolved": False})  # fmt: skip
    # a held clue due for review in November
    clue = routed(desk, factories.clue(), "2026-08-03T09:00")
    clue_handler = Actor("xu.dongsheng", "handler", desk.row(clue).handler_unit or "")
    move(desk, loaded_org, clue_handler, clue, Move.accept, "2026-08-03T10:00")
    move(
        desk, loaded_org, clue_handler, clue, Move.submit, "2026-08-10T10:00", outcome={"disposition": "hold"}
    )
    move(desk, loaded_org, Actor("fang.liqun", "verifier", "SHI1"), clue, Move.verify, "2026-08-10T11:00")
    # the room's handler declares a conflict on the late complaint: the agenda withholds it from him
    room_handler = Actor(ROOM_HANDLER, "handler", "SHI1")
    move(desk, loaded_org, room_handler, late, Move.recuse, "2026-10-21T09:00", reason="与投诉人系亲属")

    rt = runtime_at(settings, "2026-11-02T09:00")
    did, run = run_now(rt, Job.dispatch, Period(2026, 11), by="cli")
    assert did and run["result"]["meetings"] == len(loaded_org.zones)
    dd = meeting_task(engine, "Z1", "2026-11")
    detail = desk.get(dd, LEADER).json()
    assert detail["ledger_no"].startswith("DD-2026-") and detail["kind"] == "monthly_dispatch"
    sections = detail["meeting"]["agenda"]["sections"]
    ids = {name: [i["task_id"] for i in s["items"]] for name, s in sections.items() if name not in ("load",)}
    assert late in ids["overdue"] and late in ids["stale"]
    assert sad in ids["unsatisfied"] and clue in ids["held_review"]
    assert sections["load"]["rebalance"] == {"from": "DXZ-JW", "to": "CGJD-JW", "from_open": 8, "to_open": 0,
                                             "move": 4}  # fmt: skip
    assert "李秀英" not in str(detail["meeting"]) and "13812345678" not in str(detail["meeting"])
    withheld = desk.get(dd, ROOM_HANDLER).json()["meeting"]["agenda"]["sections"]["overdue"]["items"]
    assert {"task_id": None, "ledger_no": desk.row(late).ledger_no, "withheld": True} in withheld

    # decisions: a follow-up task with an owner and a deadline, supervised like any other
    decisions = f"{desk.api}/api/v1/tasks/{dd}/decisions"
    text = "督促大兴镇纪委本周内办结超期投诉"
    due = (utcnow().astimezone(TZ) + timedelta(days=14)).date()  # the API acts now
    body = {"text": text, "owner_unit": "DXZ-JW", "due": due.isoformat(), "about_task_id": late}
    r = desk.http.post(decisions, headers=desk.who(LEADER), json=body)
    assert r.status_code == 200, r.text
    follow = desk.row(r.json()["task_id"])
    assert (follow.kind, follow.status, follow.handler_unit, follow.verifier_unit) == (
        "follow_up",
        "dispatched",
        "DXZ-JW",
        "SHI1",
    )
    assert follow.ledger_no.startswith("DD-2026-") and follow.next_check_at is not None
    assert follow.resolve_due_at == datetime.combine(due, time(17, 30), tzinfo=TZ)
    # rule 5: a decision about a clue may not make the subject's own township its owner
    body = {"text": "由大兴镇纪委核查", "owner_unit": "DXZ-JW", "about_task_id": clue}
    refused = desk.http.post(decisions, headers=desk.who(LEADER), json=body)
    assert "回避" in error_of(refused, 403)["message"]
    # only the zone's leader decides; a bad body names its fields
    assert desk.http.post(f"{desk.api}/api/v1/tasks/{dd}/decisions", headers=desk.who(ROOM_HANDLER),
                          json={"text": "x", "owner_unit": "DXZ-JW"}).status_code == 403  # fmt: skip
    bad = desk.http.post(f"{desk.api}/api/v1/tasks/{dd}/decisions", headers=desk.who(LEADER),
                         json={"text": " ", "owner_unit": "NOPE"})  # fmt: skip
    assert {d["path"] for d in error_of(bad, 422)["details"]} == {"text", "owner_unit"}

    # the meeting is held and recorded: it closes; decisions are no longer taken
    desk.ok(dd, "accept", LEADER)
    desk.ok(dd, "submit", LEADER, outcome={"minutes": "会议纪要：……"})
    assert desk.row(dd).status == "closed"
    closed = desk.http.post(f"{desk.api}/api/v1/tasks/{dd}/decisions", headers=desk.who(LEADER),
                            json={"text": "x", "owner_unit": "DXZ-JW"})  # fmt: skip
    error_of(closed, 409)

    # next month's agenda opens with the decision and its state
    december = runtime_at(settings, "2026-12-01T09:00")
    run_now(december, Job.dispatch, Period(2026, 12), by="cli")
    opened = desk.get(meeting_task(engine, "Z1", "2026-12"), LEADER).json()["meeting"]["agenda"]["sections"]
    assert [(d["text"], d["status"]) for d in opened["decisions"]["items"]] == [(text, "dispatched")]


# --- the training ----------------------------------------------------------------------------


def test_the_curriculum_rotates_from_what_each_unit_was_given_and_survives_edits() -> None:
    topics = ["A", "B", "C"]
    assert next_topic(topics, []) == "A"
    assert next_topic(topics, ["A"]) == "B"
    assert next_topic(topics, ["A", "B", "C"]) == "A"  # a round done: again from the start
    assert next_topic(["N", *topics], ["A", "B"]) == "N"  # a new topic comes before any repeat
    assert next_topic(["B", "C"], ["A", "B"]) == "C"  # a removed one is never given again


def test_trainings_rotate_suggest_from_the_months_reasons_and_count_attendance(
    desk: Desk, engine: sa.Engine, loaded_org: Org, settings: Settings
) -> None:
    handler, verifier = Actor("deng.xiaoming", "handler", "DXZ-JW"), Actor("fang.liqun", "verifier", "SHI1")
    for _ in range(2):  # two October rejections with the same reason
        task = routed(desk, factories.complaint(), "2026-10-12T09:00")
        move(desk, loaded_org, handler, task, Move.accept, "2026-10-12T10:00")
        move(
            desk,
            loaded_org,
            handler,
            task,
            Move.submit,
            "2026-10-13T10:00",
            outcome={"resolved": True, "reply": "r"},
        )
        move(desk, loaded_org, verifier, task, Move.reject, "2026-10-14T10:00", reason="答复未附现场核查材料")
    curriculum = ("第一课", "第二课", "第三课")
    policy = DEFAULT_POLICY.model_copy(
        update={"training": DEFAULT_POLICY.training.model_copy(update={"curriculum": curriculum})}
    )
    with unit_of_work(engine) as s:
        issue_trainings(s, loaded_org, Period(2026, 10), now=at("2026-10-08T08:30"), policy=policy)
        issue_trainings(s, loaded_org, Period(2026, 11), now=at("2026-11-02T08:30"), policy=policy)
        issue_trainings(
            s, loaded_org, Period(2026, 11), now=at("2026-11-02T08:31"), policy=policy
        )  # again: nothing
        rows = {(t.unit_code, t.period): t for t in s.exec(select(Training)).all()}
        assert suggest(s, "HSZ-JW", Period(2026, 11), policy) is None
    dxz = rows[("DXZ-JW", "2026-11")]
    assert (rows[("DXZ-JW", "2026-10")].topic, dxz.topic) == ("第一课", "第二课")
    assert dxz.suggested_topic == "针对“答复未附现场核查材料”（上月验单退回2次）开展专题培训"
    assert sorted(dxz.expected) == ["deng.xiaoming", "luo.guohua", "wei.chunyan"]
    assert len([1 for (_, p) in rows if p == "2026-11"]) == len({u for u, p in rows if p == "2026-11"})
    with unit_of_work(engine) as s:
        px = s.exec(select(Task).where(col(Task.id) == dxz.task_id)).one()
    assert (
        px.ledger_no.startswith("PX-2026-") and px.handler_unit == "DXZ-JW" and px.next_check_at is not None
    )

    url = f"{desk.api}/api/v1/tasks/{dxz.task_id}/attendance"
    me = desk.http.post(url, headers=desk.who("wei.chunyan"), json={})  # marks herself
    assert me.status_code == 200 and me.json()["present"] == 1
    others = desk.http.post(
        url, headers=desk.who("deng.xiaoming"), json={"logins": ["deng.xiaoming", "luo.guohua"]}
    )
    assert others.json()["present"] == 3 and others.json()["expected"] == 3
    assert (
        desk.http.post(url, headers=desk.who("luo.guohua"), json={"logins": ["wei.chunyan"]}).status_code
        == 403
    )
    assert error_of(
        desk.http.post(url, headers=desk.who("deng.xiaoming"), json={"logins": ["kang.wei"]}), 422
    )
    assert desk.http.post(url, headers=desk.who("xu.dongsheng"), json={}).status_code == 404  # not his unit's
    desk.ok(dxz.task_id, "accept", "deng.xiaoming")
    desk.ok(dxz.task_id, "submit", "deng.xiaoming", outcome={"held_on": "2026-11-20"})
    assert desk.row(dxz.task_id).status == "closed"
    error_of(desk.http.post(url, headers=desk.who("wei.chunyan"), json={"present": False}), 409)
    assert desk.get(dxz.task_id, "deng.xiaoming").json()["training"]["present"] == 3


def test_a_policy_with_a_bad_cron_or_weights_is_refused_naming_the_field() -> None:
    from dispatcher.supervision.policy import check_policy_text

    text = (
        "schedules:\n  monthly_report: {cron: 'every month'}\n"
        "ranking:\n  weights: {response: 0.5, resolution: 0.5, satisfaction: 0.5}\n"
    )
    _, problems = check_policy_text(text)
    text = " ".join(str(p) for p in problems)
    assert "schedules.monthly_report.cron" in text and "ranking" in text and "add up to 1" in text
