"""Unit tests of routing (DESIGN §5): one table per rule, over the example org and small inline orgs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dispatcher.org.loader import check_org_text, load_org_file
from dispatcher.org.model import Org
from dispatcher.routing.rules import DISPATCH, TRIAGE, RouteDecision, decide_route

EXAMPLE = load_org_file(Path(__file__).resolve().parents[2] / "examples" / "org.yaml")

TOWNSHIP_NAMES = ("东湖镇", "西山乡", "南坪镇", "北岭乡", "中和镇", "金沙镇", "银杏乡", "桃源镇", "柳岸乡")


def build_org(
    *townships_per_zone: int,
    staff: list[dict[str, Any]] | None = None,
    extra_staff: tuple[dict[str, Any], ...] = (),
    recusals: dict[str, list[dict[str, str]]] | None = None,
) -> Org:
    """A minimal org: zone Zn with room Rn (第n纪检监察室) and townships Tn1.. (each with a commission).

    Townships are named from ``TOWNSHIP_NAMES`` in order; commissions are ``Tnk-JW`` named
    ``<township>纪委``. The case office is AJGL, the enterprise verifier DFZF, and category
    市场监管 maps to the department SCJG. Unless ``staff`` replaces them, every room and
    commission has one handler (``h.<code>``) and one verifier (``v.<code>``), each office one
    verifier and the department one handler; ``recusals`` maps a login to its recusals.
    """
    names = iter(TOWNSHIP_NAMES)
    zones, townships = [], []
    units: list[dict[str, Any]] = [
        {"code": "AJGL", "name": "案件监督管理室", "kind": "commission_office"},
        {"code": "DFZF", "name": "党风政风监督室", "kind": "commission_office"},
        {"code": "SCJG", "name": "县市场监督管理局", "kind": "functional_department"},
    ]
    for z, count in enumerate(townships_per_zone, start=1):
        zones.append({"code": f"Z{z}", "name": f"第{z}协作区", "room": f"R{z}"})
        units.append({"code": f"R{z}", "name": f"第{z}纪检监察室", "kind": "room", "zone": f"Z{z}"})
        for k in range(1, count + 1):
            code, name = f"T{z}{k}", next(names)
            townships.append({"code": code, "name": name, "zone": f"Z{z}", "villages": [f"{name}一村"]})
            units.append(
                {
                    "code": f"{code}-JW",
                    "name": f"{name}纪委",
                    "kind": "township_commission",
                    "zone": f"Z{z}",
                    "township": code,
                }
            )
    if staff is None:
        staff = []
        for u in units:
            if u["kind"] in ("room", "township_commission", "functional_department"):
                staff.append(
                    {"login": f"h.{u['code']}", "name": "承办人", "unit": u["code"], "roles": ["handler"]}
                )
            if u["kind"] != "functional_department":
                staff.append(
                    {"login": f"v.{u['code']}", "name": "验收人", "unit": u["code"], "roles": ["verifier"]}
                )
    people = [{**s, "recusals": (recusals or {}).get(s["login"], [])} for s in staff] + list(extra_staff)
    return Org.model_validate(
        {
            "commission": {
                "code": "XJW",
                "name": "某县纪委监委",
                "enterprise_verifier": "DFZF",
                "clue_verifier": "AJGL",
            },
            "zones": zones,
            "units": units,
            "townships": townships,
            "staff": people,
            "enterprise_categories": {"市场监管": "SCJG"},
        }
    )


def clue(
    township: str, *, rank: str = "village", unit: str | None = None, name: str = "赵德明", **kw: Any
) -> dict[str, Any]:
    subject = {"name": name, "rank": rank, **({"unit": unit} if unit else {})}
    return {"township": township, "subject": subject, "category": "优亲厚友", "summary": "…", **kw}


def complaint(township: str, **kw: Any) -> dict[str, Any]:
    return {"township": township, "category": "惠民资金", "summary": "…", **kw}


def enterprise(category: str, *, name: str = "青禾食品有限公司", **kw: Any) -> dict[str, Any]:
    return {"enterprise": {"name": name}, "category": category, "summary": "…", **kw}


def assert_decision(
    decision: RouteDecision,
    *,
    outcome: str,
    rule: str,
    handler: str | None,
    verifier: str | None,
    reason_has: tuple[str, ...] = (),
) -> None:
    assert (decision.outcome, decision.rule, decision.handler_unit, decision.verifier_unit) == (
        outcome,
        rule,
        handler,
        verifier,
    ), decision
    for fragment in reason_has:
        assert fragment in decision.reason, (fragment, decision.reason)


@pytest.mark.parametrize("shape", [(1,), (2,), (1, 3), (2, 2, 5)])
def test_the_inline_org_builder_makes_orgs_the_loader_accepts(shape: tuple[int, ...]) -> None:
    org = build_org(*shape, recusals={"h.T11-JW": [{"township": "东湖镇"}, {"unit": "R1"}]})

    # JSON is YAML: run the loader's cross-reference checks over the built org.
    checked, problems = check_org_text(json.dumps(org.model_dump(mode="json"), ensure_ascii=False))

    assert problems == []
    assert checked == org


# -- rule 1: the township ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "payload", "reason_has"),
    [
        ("complaint", complaint("火星镇"), ("火星镇", "不在组织目录中", "需人工分办")),
        ("clue", clue("火星镇"), ("火星镇", "不在组织目录中")),
        # 新村 exists in both 大兴镇 and 石桥镇: the village cannot decide.
        ("complaint", complaint("火星镇", village="新村"), ("火星镇", "新村", "不在组织目录中")),
        ("clue", clue("火星镇", village="新村"), ("村「新村」",)),
        ("complaint", complaint("火星镇", village="不存在村"), ("不存在村",)),
    ],
    ids=["complaint", "clue", "ambiguous-village-complaint", "ambiguous-village-clue", "unknown-village"],
)
def test_an_unknown_township_goes_to_triage_naming_what_was_given(
    kind: str, payload: dict[str, Any], reason_has: tuple[str, ...]
) -> None:
    decision = decide_route(kind, payload, EXAMPLE, {})

    assert_decision(
        decision, outcome=TRIAGE, rule="unknown_township", handler=None, verifier=None, reason_has=reason_has
    )
    assert (decision.zone, decision.township) == (None, None)


@pytest.mark.parametrize(
    ("township", "village", "expected"),
    [
        ("DXZ", None, "DXZ"),
        ("大兴镇", None, "DXZ"),
        ("大兴", None, "DXZ"),  # alias
        (" 大 兴 镇 ", None, "DXZ"),  # spaces are folded
        ("城关镇", None, "CGJD"),  # old name kept as alias
        ("qsz", None, "QSZ"),  # codes are case-insensitive
        ("火星镇", "庙湾村", "DXZ"),  # village that belongs to exactly one township
        ("火星镇", "鹤鸣村", "YJZ"),
        ("丰登乡", "庙湾村", "FDX"),  # a known township wins over the village
    ],
)
def test_the_township_is_found_by_code_name_alias_or_unique_village(
    township: str, village: str | None, expected: str
) -> None:
    payload = complaint(township, **({"village": village} if village else {}))

    decision = decide_route("complaint", payload, EXAMPLE, {})

    assert decision.outcome == DISPATCH
    assert decision.township == expected
    assert decision.zone == EXAMPLE.townships_by_code[expected].zone


def test_an_unknown_kind_goes_to_triage() -> None:
    decision = decide_route("petition", {"township": "大兴镇"}, EXAMPLE, {})

    assert_decision(
        decision, outcome=TRIAGE, rule="unknown_kind", handler=None, verifier=None, reason_has=("petition",)
    )


# -- rule 2: complaints -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("township", "handler", "verifier", "reason_has"),
    [
        ("大兴镇", "DXZ-JW", "SHI1", ("大兴镇", "大兴镇纪委", "第一纪检监察室")),
        ("LHX", "LHX-JW", "SHI2", ("柳河乡", "柳河乡纪委", "第二纪检监察室")),
        ("杨家场", "YJZ-JW", "SHI3", ("杨家镇", "杨家镇纪委", "第三纪检监察室")),
    ],
)
def test_a_complaint_goes_to_its_township_commission_verified_by_the_zones_room(
    township: str, handler: str, verifier: str, reason_has: tuple[str, ...]
) -> None:
    decision = decide_route("complaint", complaint(township), EXAMPLE, {})

    assert_decision(
        decision,
        outcome=DISPATCH,
        rule="complaint_township",
        handler=handler,
        verifier=verifier,
        reason_has=("属地办理", *reason_has),
    )


@pytest.mark.parametrize(
    ("extra", "reason_has"),
    [
        ({"about_unit": "大兴镇纪委"}, ("大兴镇纪委本身",)),
        ({"about_unit": "DXZ-JW"}, ("大兴镇纪委本身",)),
        ({"about_unit": " 大兴镇 纪委 "}, ("大兴镇纪委本身",)),
        ({"about_rank": "township"}, ("乡镇及以上领导干部",)),
        ({"about_rank": "county"}, ("乡镇及以上领导干部",)),
        ({"severity": "major"}, ("重大投诉",)),
        (
            {"about_unit": "大兴镇纪委", "about_rank": "township", "severity": "major"},
            ("大兴镇纪委本身", "乡镇及以上领导干部", "重大投诉"),
        ),
    ],
)
def test_a_complaint_is_escalated_to_the_room_when_about_the_commission_a_township_official_or_major(
    extra: dict[str, Any], reason_has: tuple[str, ...]
) -> None:
    decision = decide_route("complaint", complaint("大兴镇", **extra), EXAMPLE, {})

    assert_decision(
        decision,
        outcome=DISPATCH,
        rule="complaint_escalated",
        handler="SHI1",
        verifier="AJGL",
        reason_has=("提级办理", "第一纪检监察室", *reason_has),
    )


@pytest.mark.parametrize(
    ("about_rank", "severity"), [("village", "normal"), (None, "normal"), ("village", None)]
)
def test_a_village_level_normal_complaint_stays_in_the_township(
    about_rank: str | None, severity: str | None
) -> None:
    extra = {k: v for k, v in {"about_rank": about_rank, "severity": severity}.items() if v}

    decision = decide_route("complaint", complaint("大兴镇", **extra), EXAMPLE, {})

    assert decision.rule == "complaint_township"


def test_a_complaint_about_another_unit_stays_in_the_township() -> None:
    decision = decide_route("complaint", complaint("大兴镇", about_unit="县住房和城乡建设局"), EXAMPLE, {})

    assert_decision(decision, outcome=DISPATCH, rule="complaint_township", handler="DXZ-JW", verifier="SHI1")
    assert decision.recused_logins == ("kang.wei", "shi.yuting")


def test_a_complaint_is_escalated_when_every_handler_of_the_commission_is_recused() -> None:
    second = {"login": "h2.T11-JW", "name": "承办人", "unit": "T11-JW", "roles": ["handler"]}
    org = build_org(
        2,
        extra_staff=({**second, "recusals": [{"township": "T11"}]},),
        recusals={"h.T11-JW": [{"township": "东湖镇"}]},
    )

    decision = decide_route("complaint", complaint("东湖镇"), org, {})

    assert_decision(
        decision,
        outcome=DISPATCH,
        rule="complaint_escalated",
        handler="R1",
        verifier="AJGL",
        reason_has=("东湖镇纪委承办人员均需回避", "由第1纪检监察室办理"),
    )
    assert decision.recused_logins == ("h.T11-JW", "h2.T11-JW")


def test_a_complaint_stays_in_the_township_while_one_handler_of_the_commission_is_not_recused() -> None:
    recusing = {
        "login": "x0",
        "name": "回避人",
        "unit": "T11-JW",
        "roles": ["handler"],
        "recusals": [{"township": "T11"}],
    }
    org = build_org(2, extra_staff=(recusing,))

    decision = decide_route("complaint", complaint("东湖镇"), org, {})

    assert_decision(decision, outcome=DISPATCH, rule="complaint_township", handler="T11-JW", verifier="R1")
    assert decision.recused_logins == ("x0",)


@pytest.mark.parametrize(
    ("extra", "reason_has"),
    [
        # escalation needed, but the complaint is about the room itself
        (
            {"about_unit": "第一纪检监察室", "severity": "major"},
            ("重大投诉", "第一纪检监察室也需回避", "需人工指定"),
        ),
        # no escalation, but the only verifier (the room) is what the complaint is about
        ({"about_unit": "SHI1"}, ("大兴镇纪委", "没有可验单的单位")),
        # escalated to the room, but the case office that verifies is what the complaint is about
        ({"about_unit": "案件监督管理室", "severity": "major"}, ("重大投诉", "没有可验单的单位")),
    ],
)
def test_a_complaint_goes_to_triage_when_no_unit_may_handle_or_verify_it(
    extra: dict[str, Any], reason_has: tuple[str, ...]
) -> None:
    decision = decide_route("complaint", complaint("大兴镇", **extra), EXAMPLE, {})

    assert_decision(
        decision, outcome=TRIAGE, rule="no_eligible_unit", handler=None, verifier=None, reason_has=reason_has
    )
    assert (decision.zone, decision.township) == ("Z1", "DXZ")


# -- rule 3: enterprise requests ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "township", "handler", "zone", "reason_has"),
    [
        ("税费", None, "SWJ", None, ("税费", "国家税务总局青岚县税务局", "党风政风监督室")),
        ("水电气", "大兴镇", "ZJJ", "Z1", ("县住房和城乡建设局",)),
        ("项目建设", "BSZ", "ZJJ", "Z2", ("项目建设",)),
        (" 市 场监管 ", None, "SCJG", None, ("县市场监督管理局",)),  # category is folded
        ("融资", "火星镇", "JRB", None, ("县地方金融服务中心",)),  # an unknown township does not matter
    ],
)
def test_an_enterprise_request_goes_to_the_mapped_department_verified_by_the_commission(
    category: str, township: str | None, handler: str, zone: str | None, reason_has: tuple[str, ...]
) -> None:
    payload = enterprise(category, **({"township": township} if township else {}))

    decision = decide_route("enterprise_request", payload, EXAMPLE, {})

    assert_decision(
        decision,
        outcome=DISPATCH,
        rule="enterprise_department",
        handler=handler,
        verifier="DFZF",
        reason_has=("部门接单", *reason_has),
    )
    assert decision.zone == zone


@pytest.mark.parametrize("category", ["其他", "环境保护", ""])
def test_an_enterprise_request_of_an_unmapped_category_goes_to_triage(category: str) -> None:
    decision = decide_route("enterprise_request", enterprise(category, township="大兴镇"), EXAMPLE, {})

    assert_decision(
        decision,
        outcome=TRIAGE,
        rule="unmapped_category",
        handler=None,
        verifier=None,
        reason_has=(f"「{category}」", "没有对应的职能部门"),
    )
    assert (decision.zone, decision.township) == ("Z1", "DXZ")


@pytest.mark.parametrize(
    "login",
    [
        "h.SCJG",  # the only handler of the department
        "v.DFZF",  # the only verifier of the verifying unit
    ],
)
def test_an_enterprise_request_goes_to_triage_when_the_department_or_verifier_is_recused(login: str) -> None:
    org = build_org(1, recusals={login: [{"unit": "青禾食品有限公司"}]})

    decision = decide_route("enterprise_request", enterprise("市场监管"), org, {})

    assert_decision(
        decision,
        outcome=TRIAGE,
        rule="no_eligible_unit",
        handler=None,
        verifier=None,
        reason_has=("市场监管", "县市场监督管理局", "需回避"),
    )
    assert decision.recused_logins == (login,)


def test_an_enterprise_request_never_goes_to_the_unit_it_names_as_the_enterprise() -> None:
    decision = decide_route(
        "enterprise_request", enterprise("市场监管", name="县市场监督管理局"), build_org(1), {}
    )

    assert_decision(
        decision,
        outcome=TRIAGE,
        rule="no_eligible_unit",
        handler=None,
        verifier=None,
        reason_has=("县市场监督管理局", "需回避"),
    )


# -- rule 4: clues ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason_has"),
    [
        (clue("大兴镇", rank="township"), ("被反映人为乡镇领导干部",)),
        (clue("大兴镇", severity="serious"), ("问题线索性质严重",)),
        (clue("DXZ", rank="township", severity="serious"), ("被反映人为乡镇领导干部",)),
    ],
)
def test_a_township_rank_or_serious_clue_is_escalated_to_the_zones_room(
    payload: dict[str, Any], reason_has: tuple[str, ...]
) -> None:
    decision = decide_route("clue", payload, EXAMPLE, {"FDX-JW": 0})

    assert_decision(
        decision,
        outcome=DISPATCH,
        rule="clue_escalated",
        handler="SHI1",
        verifier="AJGL",
        reason_has=("提级办案", "第一纪检监察室", "案件监督管理室", *reason_has),
    )
    assert (decision.zone, decision.township) == ("Z1", "DXZ")


@pytest.mark.parametrize(
    ("township", "counts", "handler", "count"),
    [
        # fewest open tasks wins
        ("大兴镇", {"CGJD-JW": 3, "FDX-JW": 2, "HSZ-JW": 1}, "HSZ-JW", 1),
        # ties by unit code (CGJD-JW < FDX-JW < HSZ-JW)
        ("大兴镇", {}, "CGJD-JW", 0),
        ("大兴镇", {"CGJD-JW": 1, "FDX-JW": 1, "HSZ-JW": 1}, "CGJD-JW", 1),
        ("大兴镇", {"CGJD-JW": 2, "FDX-JW": 1, "HSZ-JW": 1}, "FDX-JW", 1),
        # the subject's own township never takes it, however idle it is
        ("城关街道", {"CGJD-JW": 0, "DXZ-JW": 5, "FDX-JW": 4, "HSZ-JW": 4}, "FDX-JW", 4),
        ("石桥镇", {"SQZ-JW": 0, "LHX-JW": 7, "BSZ-JW": 7}, "BSZ-JW", 7),
        # units of other zones do not count
        ("青山镇", {"CGJD-JW": 0, "MTX-JW": 2, "YJZ-JW": 1}, "YJZ-JW", 1),
    ],
)
def test_a_village_clue_is_cross_handled_by_the_least_busy_other_township_of_the_zone(
    township: str, counts: dict[str, int], handler: str, count: int
) -> None:
    decision = decide_route("clue", clue(township), EXAMPLE, counts)

    own = EXAMPLE.find_township(township)
    assert own is not None
    zone = EXAMPLE.zones_by_code[own.zone]
    room = EXAMPLE.units_by_code[zone.room]
    assert_decision(
        decision,
        outcome=DISPATCH,
        rule="cross_handling",
        handler=handler,
        verifier=room.code,
        reason_has=(
            f"排除被反映人所在的{own.name}",
            EXAMPLE.units_by_code[handler].name,
            f"（{count}件）",
            f"{room.name}审核",
        ),
    )


def test_a_clue_is_never_routed_to_the_subjects_township() -> None:
    for township in EXAMPLE.townships:
        counts = {u.code: 99 for u in EXAMPLE.township_commissions.values()}
        counts[EXAMPLE.township_commissions[township.code].code] = 0

        decision = decide_route("clue", clue(township.code), EXAMPLE, counts)

        assert decision.rule == "cross_handling"
        assert decision.handler_unit != EXAMPLE.township_commissions[township.code].code


def test_a_clue_is_not_cross_handled_by_the_subjects_own_unit() -> None:
    counts = {"CGJD-JW": 0, "FDX-JW": 1, "HSZ-JW": 2}

    decision = decide_route("clue", clue("大兴镇", unit="城关街道纪工委"), EXAMPLE, counts)

    assert (decision.rule, decision.handler_unit) == ("cross_handling", "FDX-JW")


def test_a_clue_skips_a_township_whose_handlers_are_all_recused() -> None:
    # 余雪莲 (BSZ-JW) recuses 尹国强, but 沈涛 does not: BSZ-JW stays eligible for clues about him.
    # Make LHX-JW's only handlers recuse him and it must be skipped despite having no open tasks.
    org = Org.model_validate(
        {
            **EXAMPLE.model_dump(mode="json"),
            "staff": [
                {**s.model_dump(mode="json"), "recusals": [{"person": "尹国强"}]}
                if s.unit == "LHX-JW" and "handler" in s.roles
                else s.model_dump(mode="json")
                for s in EXAMPLE.staff
            ],
        }
    )

    decision = decide_route("clue", clue("石桥镇", name="尹国强"), org, {"LHX-JW": 0, "BSZ-JW": 3})

    assert (decision.rule, decision.handler_unit) == ("cross_handling", "BSZ-JW")
    assert {"ou.li", "qin.dawei", "yu.xuelian", "yin.shaohua"} <= set(decision.recused_logins)


@pytest.mark.parametrize(
    ("org", "payload", "excluded"),
    [
        # a zone with a single township: nobody to cross-handle
        (build_org(1), clue("东湖镇"), "东湖镇"),
        # the only other township is the subject's unit
        (build_org(2), clue("东湖镇", unit="西山乡纪委"), "东湖镇"),
        (build_org(2), clue("西山乡", unit="t11-jw"), "西山乡"),
        # the only other township's only handler recuses the subject's township
        (build_org(2, recusals={"h.T12-JW": [{"township": "东湖镇"}]}), clue("东湖镇"), "东湖镇"),
        # ... or the subject
        (build_org(2, recusals={"h.T12-JW": [{"person": "赵德明"}]}), clue("东湖镇"), "东湖镇"),
        # the other townships are in another zone
        (build_org(1, 3), clue("东湖镇"), "东湖镇"),
    ],
    ids=[
        "single-township",
        "subjects-unit-by-name",
        "subjects-unit-by-code",
        "recused-township",
        "recused-person",
        "other-zone",
    ],
)
def test_a_clue_falls_back_to_the_room_when_no_other_township_is_eligible(
    org: Org, payload: dict[str, Any], excluded: str
) -> None:
    decision = decide_route("clue", payload, org, {})

    assert_decision(
        decision,
        outcome=DISPATCH,
        rule="cross_handling_fallback_room",
        handler="R1",
        verifier="AJGL",
        reason_has=(
            f"排除{excluded}后本协作区没有可交叉办理的乡镇",
            "由第1纪检监察室办理",
            "案件监督管理室审核",
        ),
    )


@pytest.mark.parametrize(
    ("org", "reason_has"),
    [
        # escalated, but the room's only handler is recused from the subject
        (
            build_org(2, recusals={"h.R1": [{"person": "赵德明"}]}),
            ("被反映人为乡镇领导干部", "第1纪检监察室需回避"),
        ),
        # escalated, but the case office's only verifier is recused: nobody verifies room cases
        (
            build_org(2, recusals={"v.AJGL": [{"person": "赵德明"}]}),
            ("被反映人为乡镇领导干部", "没有可审核的单位"),
        ),
    ],
)
def test_an_escalated_clue_goes_to_triage_when_the_room_or_case_office_is_conflicted(
    org: Org, reason_has: tuple[str, ...]
) -> None:
    decision = decide_route("clue", clue("东湖镇", rank="township"), org, {})

    assert_decision(
        decision, outcome=TRIAGE, rule="no_eligible_unit", handler=None, verifier=None, reason_has=reason_has
    )
    assert (decision.zone, decision.township) == ("Z1", "T11")


def test_a_clue_goes_to_triage_when_neither_another_township_nor_the_room_is_eligible() -> None:
    org = build_org(1, recusals={"h.R1": [{"township": "东湖镇"}]})
    decision = decide_route("clue", clue("东湖镇"), org, {})

    assert_decision(
        decision,
        outcome=TRIAGE,
        rule="no_eligible_unit",
        handler=None,
        verifier=None,
        reason_has=("没有可交叉办理的乡镇", "第1纪检监察室需回避", "需人工指定"),
    )


# -- rule 4: jurisdiction (管辖) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        # managed above the county (县处级)
        (clue("大兴镇", rank="county"), "县处级"),
        (clue("火星镇", rank="county", severity="serious"), "县处级"),  # no township needed to refer it
        # serving in the commission itself: a room, an office, a stationed group
        (clue("大兴镇", rank="village", unit="第一纪检监察室"), "第一纪检监察室任职"),
        (clue("大兴镇", severity="serious", unit="AJGL"), "案件监督管理室任职"),
        (clue("石桥镇", unit="县纪委监委驻县政府办纪检监察组"), "纪检监察组任职"),
        # a zone leader, whatever unit is written
        (clue("大兴镇", name="韩志远"), "协作区组长"),
    ],
)
def test_a_clue_beyond_the_countys_jurisdiction_is_referred_upward_by_the_referral_office(
    payload: dict[str, Any], why: str
) -> None:
    decision = decide_route("clue", payload, EXAMPLE, {})

    assert (decision.outcome, decision.rule, decision.verifier_unit) == (DISPATCH, "refer_upward", None)
    # the case office records transfers, unless the subject serves there: then another office does
    expected = "DFZF" if payload["subject"].get("unit") == "AJGL" else "AJGL"
    assert decision.handler_unit == expected, decision
    assert "上报" in decision.reason and "移送上级纪委监委" in decision.reason
    assert why in decision.reason, decision.reason


@pytest.mark.parametrize(
    ("unit", "group", "room"),
    [
        ("县住房和城乡建设局", "PZ3", "SHI3"),  # covered by the group stationed at 农业农村局, zone 3
        ("SCJG", "PZ2", "SHI2"),
        ("县人力资源和社会保障局", "PZ1", "SHI1"),
    ],
)
def test_a_clue_about_a_covered_departments_official_goes_to_its_stationed_group(
    unit: str, group: str, room: str
) -> None:
    decision = decide_route("clue", clue("大兴镇", unit=unit), EXAMPLE, {})

    assert_decision(
        decision, outcome=DISPATCH, rule="stationed_group", handler=group, verifier=room,
        reason_has=("派驻监督", EXAMPLE.units_by_code[group].name),
    )  # fmt: skip
    assert decision.zone == EXAMPLE.units_by_code[group].zone


def test_a_stationed_group_whose_handlers_are_recused_leaves_the_clue_to_the_ordinary_rules() -> None:
    org = Org.model_validate(
        {
            **EXAMPLE.model_dump(mode="json", exclude_none=True),
            "staff": [
                {**s.model_dump(mode="json", exclude_none=True), "recusals": [{"person": "赵德明"}]}
                if s.unit == "PZ2" else s.model_dump(mode="json", exclude_none=True)
                for s in EXAMPLE.staff
            ],
        }
    )  # fmt: skip
    decision = decide_route("clue", clue("大兴镇", unit="SCJG"), org, {})

    assert decision.rule == "cross_handling" and decision.handler_unit != "PZ2"


def test_a_staff_recusal_of_a_reporter_is_matched_on_the_keyed_hash_of_the_name() -> None:
    from dispatcher.security import person_key

    secret = "k" * 40
    org = build_org(2, recusals={"h.T12-JW": [{"reporter": "王秀英"}]}).with_hashed_reporters(
        lambda n: person_key(secret, n)
    )
    stored = org.model_dump_json()
    assert "王秀英" not in stored and person_key(secret, "王秀英") in stored

    reported = frozenset({person_key(secret, " 王 秀英 ")})
    decision = decide_route("clue", clue("东湖镇"), org, {}, reporter_keys=reported)
    assert "h.T12-JW" in decision.recused_logins
    assert decision.rule == "cross_handling_fallback_room"  # the only other township's handler is recused
    someone = frozenset({person_key(secret, "李四")})
    other = decide_route("clue", clue("东湖镇"), org, {}, reporter_keys=someone)
    assert other.rule == "cross_handling" and "h.T12-JW" not in other.recused_logins


# -- rule 5: recusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # 尹少华 and 余雪莲 recuse the person 尹国强; 欧丽 recuses 白沙 (alias of 白沙镇)
        (clue("白沙镇", name="尹国强"), ("ou.li", "yin.shaohua", "yu.xuelian")),
        (clue("白沙镇", name=" 尹 国强"), ("ou.li", "yin.shaohua", "yu.xuelian")),
        (clue("石桥镇", name="尹国强"), ("yin.shaohua", "yu.xuelian")),
        # 魏春燕 recuses 丰登乡 by name, 康伟 recuses DXZ by code
        (clue("FDX"), ("wei.chunyan",)),
        (clue("大兴"), ("kang.wei",)),
        # 石雨婷 recuses 县住房和城乡建设局 by name, 葛鹏飞 recuses SWJ by code:
        # either form of the subject's unit matches
        (clue("和顺镇", unit="ZJJ"), ("shi.yuting",)),
        (clue("和顺镇", unit="县住房和城乡建设局"), ("shi.yuting",)),
        (clue("柳河乡", unit="国家税务总局青岚县税务局"), ("ge.pengfei",)),
        (clue("柳河乡", unit="swj"), ("ge.pengfei",)),
        # 冀向东 recuses 杨家镇纪委 (a unit, not the township)
        (clue("杨家镇", unit="YJZ-JW"), ("ji.xiangdong",)),
        (clue("杨家镇", unit="杨家镇白果村委会"), ()),
        (clue("和顺镇", name="无关人员"), ()),
    ],
)
def test_recused_logins_list_everyone_whose_recusals_name_the_subject_their_unit_or_township(
    payload: dict[str, Any], expected: tuple[str, ...]
) -> None:
    decision = decide_route("clue", payload, EXAMPLE, {})

    assert decision.outcome == DISPATCH
    assert decision.recused_logins == expected


def test_a_recused_room_verifier_moves_verification_to_the_case_office() -> None:
    org = build_org(2, recusals={"v.R1": [{"person": "赵德明"}]})

    decision = decide_route("clue", clue("东湖镇"), org, {})

    assert_decision(
        decision,
        outcome=DISPATCH,
        rule="cross_handling",
        handler="T12-JW",
        verifier="AJGL",
        reason_has=("案件监督管理室审核",),
    )
    assert decision.recused_logins == ("v.R1",)


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        # 尹少华 and 余雪莲 recuse the person 尹国强; 石雨婷 recuses 县住房和城乡建设局 (ZJJ)
        (
            "clue",
            {
                "township": "白沙乡",
                "subject": {"name": "尹国强", "unit": "白沙乡人民政府", "rank": "village"},
            },
            {"yin.shaohua", "yu.xuelian"},
        ),
        ("complaint", {"township": "火星镇", "about_unit": "县住房和城乡建设局"}, {"shi.yuting"}),
    ],
)
def test_a_triaged_unknown_township_still_lists_person_and_unit_recusals(
    kind: str, payload: dict[str, object], expected: set[str]
) -> None:
    decision = decide_route(kind, payload, EXAMPLE, {})

    assert decision.rule == "unknown_township"
    assert expected <= set(decision.recused_logins)
