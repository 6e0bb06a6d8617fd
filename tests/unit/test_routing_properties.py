"""Property tests of routing over random orgs and events: the conflict-of-interest rules always hold.

The oracles here re-derive DESIGN §5 rules 5 and 6 from the raw data (names folded by
whitespace and case, as the org directory does) instead of calling routing's own helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.org.model import Org, Unit, UnitKind
from dispatcher.routing.conflict import assist_refusal, designation_refusal
from dispatcher.routing.rules import DISPATCH, TRIAGE, decide_route

TOWNSHIP_NAMES = ("东湖镇", "西山乡", "南坪镇", "北岭乡", "中和镇", "金沙镇", "银杏乡", "桃源镇")
EXTRA_NAMES = ("桂花镇", "石门乡", "清水镇", "龙泉乡", "白鹤镇", "凤凰乡", "梨园镇")
VILLAGES = ("新村", "红星村", "团结村", "光明村", "和平村")
PEOPLE = ("赵德明", "钱卫国", "孙丽华", "李建军", "周敏")
#: Units a subject may work in that are not in the org directory.
OUTSIDE_UNITS = ("某村委会", "县水利局", "某中学")

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fold(text: str) -> str:
    return "".join(text.split()).casefold()


def respell(draw: st.DrawFn, text: str) -> str:
    """The same name as a person might type it: other case, stray spaces."""
    variant = draw(st.sampled_from(["same", "upper", "lower", "spaced"]))
    if variant == "upper":
        return text.upper()
    if variant == "lower":
        return text.lower()
    if variant == "spaced":
        return f" {text[:1]} {text[1:]} "
    return text


@st.composite
def orgs(draw: st.DrawFn) -> Org:
    """1–3 zones of 1–5 townships; rooms, commissions, two offices, a department; random staff."""
    n_zones = draw(st.integers(1, 3))
    counts = [draw(st.integers(1, 5)) for _ in range(n_zones)]
    names = list(draw(st.permutations(TOWNSHIP_NAMES + EXTRA_NAMES)))
    units: list[dict[str, Any]] = [
        {"code": "AJGL", "name": "案件监督管理室", "kind": "commission_office"},
        {"code": "DFZF", "name": "党风政风监督室", "kind": "commission_office"},
        {"code": "SCJG", "name": "县市场监督管理局", "kind": "functional_department"},
    ]
    zones: list[dict[str, Any]] = []
    townships: list[dict[str, Any]] = []
    if draw(st.booleans()):  # a stationed group overseeing the department
        units.append({"code": "PZ1", "name": "派驻第一纪检监察组", "kind": "stationed_group", "zone": "Z1",
                      "covers": ["SCJG"]})  # fmt: skip
    for z, count in enumerate(counts, start=1):
        zones.append({"code": f"Z{z}", "name": f"第{z}协作区", "room": f"R{z}"})
        units.append({"code": f"R{z}", "name": f"第{z}纪检监察室", "kind": "room", "zone": f"Z{z}"})
        for k in range(1, count + 1):
            code, name = f"T{z}{k}", names.pop()
            villages = draw(st.lists(st.sampled_from(VILLAGES), max_size=2, unique=True))
            alias = [name[:-1]] if draw(st.booleans()) else []
            townships.append(
                {"code": code, "name": name, "zone": f"Z{z}", "aliases": alias, "villages": villages}
            )
            units.append(
                {
                    "code": f"{code}-JW",
                    "name": f"{name}纪委",
                    "kind": "township_commission",
                    "zone": f"Z{z}",
                    "township": code,
                }
            )

    def recusal() -> dict[str, str]:
        what = draw(
            st.sampled_from(["person", "unit", "unit_code", "outside_unit", "township", "township_code"])
        )
        if what == "person":
            return {"person": draw(st.sampled_from(PEOPLE))}
        if what == "unit":
            return {"unit": draw(st.sampled_from(units))["name"]}
        if what == "unit_code":
            return {"unit": draw(st.sampled_from(units))["code"]}
        if what == "outside_unit":
            return {"unit": draw(st.sampled_from(OUTSIDE_UNITS))}
        t = draw(st.sampled_from(townships))
        return {
            "township": t["code"]
            if what == "township_code"
            else draw(st.sampled_from([t["name"], *t["aliases"]]))
        }

    staff = []
    for u in units:
        for i in range(draw(st.integers(0, 3))):
            roles = draw(st.sampled_from([["handler"], ["verifier"], ["handler", "verifier"], ["oncall"]]))
            staff.append(
                {
                    "login": f"{u['code'].lower()}.{i}",
                    "name": draw(st.sampled_from(PEOPLE)),
                    "unit": u["code"],
                    "roles": roles,
                    "recusals": [recusal() for _ in range(draw(st.integers(0, 2)))],
                }
            )
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
            "staff": staff,
            "enterprise_categories": {"市场监管": "SCJG"},
        }
    )


def township_text(draw: st.DrawFn, org: Org) -> tuple[str, str | None]:
    """A township as upstream systems send it: code, name, alias, unknown, or unknown plus a village."""
    t = draw(st.sampled_from(org.townships))
    how = draw(st.sampled_from(["code", "name", "alias", "unknown", "village"]))
    if how == "code":
        return respell(draw, t.code), None
    if how == "name":
        return respell(draw, t.name), None
    if how == "alias" and t.aliases:
        return t.aliases[0], None
    village = draw(st.sampled_from(VILLAGES)) if how == "village" else None
    return "火星镇", village


@st.composite
def clue_cases(draw: st.DrawFn) -> tuple[Org, dict[str, Any], dict[str, int]]:
    org = draw(orgs())
    township, village = township_text(draw, org)
    subject: dict[str, Any] = {
        "name": respell(draw, draw(st.sampled_from(PEOPLE))),
        "rank": draw(st.sampled_from(["village", "village", "township", "county"])),
    }
    unit_how = draw(st.sampled_from(["none", "name", "code", "outside"]))
    if unit_how in ("name", "code"):
        unit = draw(st.sampled_from(org.units))
        subject["unit"] = respell(draw, unit.name if unit_how == "name" else unit.code)
    elif unit_how == "outside":
        subject["unit"] = draw(st.sampled_from(OUTSIDE_UNITS))
    payload = {
        "township": township,
        "subject": subject,
        "category": "优亲厚友",
        "summary": "…",
        "severity": draw(st.sampled_from(["normal", "normal", "serious"])),
        **({"village": village} if village else {}),
    }
    open_counts = {
        u.code: draw(st.integers(0, 3)) for u in org.township_commissions.values() if draw(st.booleans())
    }
    return org, payload, open_counts


@st.composite
def any_cases(draw: st.DrawFn) -> tuple[str, Org, dict[str, Any], dict[str, int]]:
    """Any kind of event, including complaints about random units and enterprise requests."""
    kind = draw(st.sampled_from(["clue", "complaint", "enterprise_request"]))
    org, payload, counts = draw(clue_cases())
    if kind == "complaint":
        payload = {
            "township": payload["township"],
            **({"village": payload["village"]} if "village" in payload else {}),
            "category": "惠民资金",
            "summary": "…",
            "about_rank": draw(st.sampled_from([None, "village", "township", "county"])),
            "about_unit": payload["subject"].get("unit"),
            "severity": draw(st.sampled_from(["normal", "major"])),
        }
    elif kind == "enterprise_request":
        payload = {
            "enterprise": {"name": draw(st.sampled_from([*OUTSIDE_UNITS, *(u.name for u in org.units)]))},
            "category": draw(st.sampled_from(["市场监管", "其他"])),
            "summary": "…",
            "township": payload["township"],
        }
    return kind, org, payload, counts


# -- oracles --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What a clue is about, resolved from the raw payload without routing's helpers."""

    township: str | None  #: township code the event happened in
    subject_unit: str | None  #: the unit code the subject works in, when it is in the org
    subject_unit_text: str | None
    person: str


def resolve_unit(org: Org, text: str | None) -> str | None:
    if not text:
        return None
    return next((u.code for u in org.units if fold(text) in (fold(u.code), fold(u.name))), None)


def resolve_township(org: Org, text: str | None, village: str | None = None) -> str | None:
    if text:
        for t in org.townships:
            if fold(text) in {fold(k) for k in (t.code, t.name, *t.aliases)}:
                return t.code
    if village:
        having = [t.code for t in org.townships if fold(village) in {fold(v) for v in t.villages}]
        if len(having) == 1:
            return having[0]
    return None


def facts_of(org: Org, payload: dict[str, Any]) -> Facts:
    subject = payload["subject"]
    return Facts(
        township=resolve_township(org, payload["township"], payload.get("village")),
        subject_unit=resolve_unit(org, subject.get("unit")),
        subject_unit_text=subject.get("unit"),
        person=subject["name"],
    )


def must_recuse(org: Org, facts: Facts) -> set[str]:
    """Rule 5: everyone whose recusals name the subject, the subject's unit or township."""
    out = set()
    for s in org.staff:
        for r in s.recusals:
            if r.person is not None and fold(r.person) == fold(facts.person):
                out.add(s.login)
            if r.unit is not None and (
                (facts.subject_unit is not None and resolve_unit(org, r.unit) == facts.subject_unit)
                or (facts.subject_unit_text is not None and fold(r.unit) == fold(facts.subject_unit_text))
            ):
                out.add(s.login)
            if (
                r.township is not None
                and facts.township is not None
                and resolve_township(org, r.township) == facts.township
            ):
                out.add(s.login)
    return out


def conflicted_units(org: Org, facts: Facts) -> set[str]:
    """Units that may never handle or verify the clue: the subject's own and the township's commission."""
    out = {facts.subject_unit} if facts.subject_unit else set()
    if facts.township is not None:
        out.add(org.township_commissions[facts.township].code)
    return out


def has_free(org: Org, unit: str, role: str, recused: set[str]) -> bool:
    """The unit has someone in ``role`` who is not recused, or nobody in that role at all."""
    people = [s.login for s in org.staff if s.unit == unit and role in s.roles]
    return not people or any(login not in recused for login in people)


def unit(org: Org, code: str | None) -> Unit:
    assert code is not None
    return org.units_by_code[code]


def in_commission(org: Org, facts: Facts) -> bool:
    """The subject serves in the commission itself (an office, a room, a stationed group)."""
    kinds = (UnitKind.commission_office, UnitKind.room, UnitKind.stationed_group)
    return facts.subject_unit is not None and org.units_by_code[facts.subject_unit].kind in kinds


# -- properties -----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(clue_cases())
def test_a_clue_is_never_handled_or_verified_by_the_subjects_unit_or_township(
    case: tuple[Org, dict[str, Any], dict[str, int]],
) -> None:
    org, payload, counts = case

    decision = decide_route("clue", payload, org, counts)

    if decision.outcome == DISPATCH:
        facts = facts_of(org, payload)
        assert decision.township == facts.township
        forbidden = conflicted_units(org, facts)
        assert decision.handler_unit not in forbidden, decision
        assert decision.verifier_unit not in forbidden, decision
        for code in (decision.handler_unit, decision.verifier_unit):
            if code is not None and facts.township is not None:  # a referral has no verifier
                assert unit(org, code).township != facts.township
        if payload["subject"]["rank"] == "county" or in_commission(org, facts):
            assert decision.rule == "refer_upward", decision  # 管辖: the higher commission's


@PROPERTY_SETTINGS
@given(clue_cases())
def test_everyone_whose_recusals_name_the_subject_their_unit_or_township_is_recused(
    case: tuple[Org, dict[str, Any], dict[str, int]],
) -> None:
    org, payload, counts = case
    facts = facts_of(org, payload)

    decision = decide_route("clue", payload, org, counts)

    assert must_recuse(org, facts) == set(decision.recused_logins)


@PROPERTY_SETTINGS
@given(any_cases())
def test_a_dispatched_unit_keeps_a_handler_and_verifier_who_are_not_recused(
    case: tuple[str, Org, dict[str, Any], dict[str, int]],
) -> None:
    kind, org, payload, counts = case

    decision = decide_route(kind, payload, org, counts)

    if decision.outcome == DISPATCH:
        recused = set(decision.recused_logins)
        assert decision.handler_unit is not None
        assert has_free(org, decision.handler_unit, "handler", recused), decision
        if decision.rule == "refer_upward":
            assert decision.verifier_unit is None
            return
        assert decision.verifier_unit is not None
        assert has_free(org, decision.verifier_unit, "verifier", recused), decision
        assert decision.handler_unit != decision.verifier_unit


@PROPERTY_SETTINGS
@given(any_cases())
def test_routing_never_raises_and_always_dispatches_or_triages(
    case: tuple[str, Org, dict[str, Any], dict[str, int]],
) -> None:
    kind, org, payload, counts = case

    decision = decide_route(kind, payload, org, counts)

    assert decision.outcome in (DISPATCH, TRIAGE)
    assert decision.reason
    if decision.outcome == DISPATCH:
        assert decision.handler_unit in org.units_by_code
        assert decision.verifier_unit in org.units_by_code or decision.rule == "refer_upward"
    else:
        assert (decision.handler_unit, decision.verifier_unit) == (None, None)
    if decision.township is not None and decision.rule != "stationed_group":  # a group has its own zone
        assert decision.zone == org.townships_by_code[decision.township].zone


@PROPERTY_SETTINGS
@given(clue_cases())
def test_cross_handling_picks_an_eligible_township_with_the_fewest_open_tasks(
    case: tuple[Org, dict[str, Any], dict[str, int]],
) -> None:
    org, payload, counts = case
    payload = {**payload, "severity": "normal", "subject": {**payload["subject"], "rank": "village"}}
    facts = facts_of(org, payload)

    decision = decide_route("clue", payload, org, counts)

    if in_commission(org, facts):
        assert decision.rule in ("refer_upward", "no_eligible_unit"), decision
        return
    if decision.rule == "stationed_group":  # 派驻监督 of the subject's department
        assert facts.subject_unit == "SCJG" and decision.handler_unit == "PZ1"
        return
    if facts.township is None:
        assert decision.rule == "unknown_township"
        return
    zone = org.townships_by_code[facts.township].zone
    recused = must_recuse(org, facts)
    forbidden = conflicted_units(org, facts)
    eligible = sorted(
        (counts.get(u.code, 0), u.code)
        for u in org.units
        if u.kind is UnitKind.township_commission
        and u.zone == zone
        and u.code not in forbidden
        and has_free(org, u.code, "handler", recused)
    )
    room = next(z.room for z in org.zones if z.code == zone)
    verifier_available = any(
        code not in forbidden and has_free(org, code, "verifier", recused) for code in (room, "AJGL")
    )
    if eligible and verifier_available:
        assert decision.rule == "cross_handling", decision
        assert decision.handler_unit == eligible[0][1]
        assert counts.get(decision.handler_unit, 0) == min(n for n, _ in eligible)
        assert f"（{eligible[0][0]}件）" in decision.reason
    else:
        assert decision.rule in ("cross_handling_fallback_room", "no_eligible_unit"), decision
        assert decision.handler_unit in (room, None)


@st.composite
def people_cases(draw: st.DrawFn) -> tuple[str, Org, dict[str, Any], str]:
    """A matter and a unit or a person someone might name by hand (designation, triage, co-handling)."""
    kind, org, payload, _ = draw(any_cases())
    if kind != "clue":
        kind = "clue"
        _, payload, _ = draw(clue_cases())
        org = draw(orgs())
    who = draw(st.sampled_from([*(u.code for u in org.units), *(s.login for s in org.staff)] or ["AJGL"]))
    return kind, org, payload, who


@PROPERTY_SETTINGS
@given(people_cases())
def test_nobody_conflicted_is_designated_routed_by_hand_or_added_to_help(
    case: tuple[str, Org, dict[str, Any], str],
) -> None:
    """Rule 5 holds on every path a person takes (指定办案, triage routing, 增派协助), not only routing."""
    kind, org, payload, who = case
    facts = facts_of(org, payload)
    forbidden, recused = conflicted_units(org, facts), must_recuse(org, facts)

    if who in org.units_by_code:
        if designation_refusal(kind, payload, org, who) is None:
            assert who not in forbidden and has_free(org, who, "handler", recused)
        else:
            assert designation_refusal(kind, payload, org, who).startswith("回避")  # type: ignore[union-attr]
        if assist_refusal(kind, payload, org, who) is None:
            assert who not in forbidden
    else:
        person = next(s for s in org.staff if s.login == who)
        refusal = assist_refusal(kind, payload, org, who)
        if refusal is None:
            assert who not in recused and person.unit not in forbidden
        else:
            assert refusal.startswith("回避") and person.name in refusal
