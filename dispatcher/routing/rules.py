"""Routing (归口分办): pure rules that turn an event into a handling and a verifying unit.

DESIGN §5. Every function here is pure: it takes the event's payload, the org and the open
task counts, and returns a ``RouteDecision`` naming the rule that decided and a reason a zone
leader can read. Unknown townships or categories become triage decisions, never errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatcher.enums import Role, TaskKind
from dispatcher.org.model import Org, Township, Unit, UnitKind
from dispatcher.routing.conflict import ConflictOfInterest, eligible_verifier, is_eligible, recused_logins

TRIAGE = "triage"
DISPATCH = "dispatch"


@dataclass(frozen=True, slots=True)
class RouteDecision:
    outcome: str  #: ``dispatch`` or ``triage``
    rule: str
    reason: str
    zone: str | None = None
    township: str | None = None
    handler_unit: str | None = None
    verifier_unit: str | None = None
    #: Everyone whose recusals name this matter (回避); they may never handle or verify it.
    recused_logins: tuple[str, ...] = field(default_factory=tuple)


def _triage(rule: str, reason: str, **kw: Any) -> RouteDecision:
    return RouteDecision(outcome=TRIAGE, rule=rule, reason=reason, **kw)


def _no_eligible_unit(why: str, township: Township, recused: tuple[str, ...]) -> RouteDecision:
    """Rule 5 left nobody: a person must designate a unit (指定办案)."""
    return _triage(
        "no_eligible_unit", why, zone=township.zone, township=township.code, recused_logins=recused
    )


def decide_route(
    kind: str,
    payload: Mapping[str, Any],
    org: Org,
    open_counts: Mapping[str, int],
    *,
    reporter_keys: frozenset[str] = frozenset(),
) -> RouteDecision:
    """Decide where an event goes. ``open_counts`` maps unit code → open tasks (rule 6);
    ``reporter_keys`` are the keyed hashes of its reporter's or complainant's name (rule 5)."""
    if kind == TaskKind.complaint:
        return route_complaint(payload, org, reporter_keys=reporter_keys)
    if kind == TaskKind.enterprise_request:
        return route_enterprise_request(payload, org, reporter_keys=reporter_keys)
    if kind == TaskKind.clue:
        return route_clue(payload, org, open_counts, reporter_keys=reporter_keys)
    return _triage("unknown_kind", f"未知事项类型 {kind!r}，需人工分办")


def _township_or_triage(
    payload: Mapping[str, Any], org: Org, conflict: ConflictOfInterest
) -> Township | RouteDecision:
    """Rule 1: find the township (code, name, alias or village); unknown goes to triage.

    ``conflict`` (without a township) gives the recusals a triage item must still carry.
    """
    township = org.find_township(payload.get("township"), payload.get("village"))
    if township is None:
        where = f"乡镇「{payload.get('township')}」"
        if payload.get("village"):
            where += f"、村「{payload.get('village')}」"
        return _triage(
            "unknown_township",
            f"{where}不在组织目录中，需人工分办",
            recused_logins=recused_logins(conflict, org),
        )
    return township


def route_complaint(
    payload: Mapping[str, Any], org: Org, *, reporter_keys: frozenset[str] = frozenset()
) -> RouteDecision:
    """Rule 2: 小事不出村、大事不出镇 — the township commission, escalated to the room when needed."""
    about = org.find_unit(payload.get("about_unit"))
    about_text = payload.get("about_unit")
    conflict = ConflictOfInterest(None, unit=about, unit_text=about_text, reporter_keys=reporter_keys)
    found = _township_or_triage(payload, org, conflict)
    if isinstance(found, RouteDecision):
        return found
    township = found
    zone = org.zones_by_code[township.zone]
    room = org.units_by_code[zone.room]
    commission = org.township_commissions[township.code]
    recused = recused_logins(
        ConflictOfInterest(township, unit=about, unit_text=about_text, reporter_keys=reporter_keys), org
    )

    escalate_because = []
    if about is not None and about.code == commission.code:
        escalate_because.append(f"投诉涉及{commission.name}本身")
    if payload.get("about_rank") in ("township", "county"):
        escalate_because.append("投诉涉及乡镇及以上领导干部")
    if payload.get("severity") == "major":
        escalate_because.append("重大投诉")
    if not escalate_because and not is_eligible(commission, conflict, org, recused):
        escalate_because.append(f"{commission.name}承办人员均需回避")

    if escalate_because:
        if not is_eligible(room, conflict, org, recused):
            return _no_eligible_unit(
                f"{'；'.join(escalate_because)}，但{room.name}也需回避，需人工指定", township, recused
            )
        verifier = eligible_verifier(
            [org.units_by_code[org.commission.clue_verifier]], conflict, org, recused
        )
        handler, rule = room, "complaint_escalated"
        reason = f"提级办理: {'；'.join(escalate_because)}，由{room.name}办理"
    else:
        verifier = eligible_verifier([room], conflict, org, recused)
        handler, rule = commission, "complaint_township"
        reason = f"属地办理: 投诉发生在{township.name}，由{commission.name}办理，{room.name}验单"
    if verifier is None:
        return _no_eligible_unit(f"{reason}；但没有可验单的单位，需人工指定", township, recused)
    return RouteDecision(
        DISPATCH, rule, reason, zone.code, township.code, handler.code, verifier.code, recused
    )


def route_enterprise_request(
    payload: Mapping[str, Any], org: Org, *, reporter_keys: frozenset[str] = frozenset()
) -> RouteDecision:
    """Rule 3: 部门接单 — the department mapped to the category; 纪委验单 by the commission's unit."""
    category = str(payload.get("category", ""))
    township = org.find_township(payload.get("township")) if payload.get("township") else None
    zone = township.zone if township else None
    department = org.department_for(category)
    enterprise = (payload.get("enterprise") or {}).get("name")
    conflict = ConflictOfInterest(township=township, unit_text=enterprise, reporter_keys=reporter_keys)
    recused = recused_logins(conflict, org)
    if department is None:
        return _triage(
            "unmapped_category",
            f"企业诉求类别「{category}」没有对应的职能部门，需人工分办",
            zone=zone,
            township=township.code if township else None,
            recused_logins=recused,
        )
    verifier = eligible_verifier(
        [org.units_by_code[org.commission.enterprise_verifier]], conflict, org, recused
    )
    if not is_eligible(department, conflict, org, recused) or verifier is None:
        return _triage(
            "no_eligible_unit",
            f"类别「{category}」归口{department.name}，但需回避，需人工指定",
            zone=zone,
            township=township.code if township else None,
            recused_logins=recused,
        )
    reason = f"部门接单: 类别「{category}」归口{department.name}，{verifier.name}验单"
    return RouteDecision(
        DISPATCH,
        "enterprise_department",
        reason,
        zone,
        township.code if township else None,
        department.code,
        verifier.code,
        recused,
    )


def route_clue(
    payload: Mapping[str, Any],
    org: Org,
    open_counts: Mapping[str, int],
    *,
    reporter_keys: frozenset[str] = frozenset(),
) -> RouteDecision:
    """Rules 4–6, by jurisdiction (管辖): refer upward, the stationed group, 提级办案 to the room, or
    交叉办案 by another township of the zone."""
    subject = payload.get("subject") or {}
    person, unit_text = subject.get("name"), subject.get("unit")
    unit = org.find_unit(unit_text)
    rank = subject.get("rank")
    township = org.find_township(payload.get("township"), payload.get("village"))
    conflict = ConflictOfInterest(
        township, person=person, unit_text=unit_text, unit=unit, reporter_keys=reporter_keys
    )
    recused = recused_logins(conflict, org)
    case_office = org.units_by_code[org.commission.clue_verifier]
    where = {"zone": township.zone if township else None, "township": township.code if township else None}

    # 管辖 by cadre-management level: above the county, or in the commission itself → the higher commission.
    upward = _refer_upward_because(rank, person, unit, org)
    if upward:
        return _refer_upward(upward, conflict, org, recused, where)

    # 派驻监督: officials of a department a stationed group covers are that group's.
    group = org.group_covering(unit.code) if unit is not None else None
    if unit is not None and group is not None and is_eligible(group, conflict, org, recused):
        zone_of_group = org.zones_by_code.get(group.zone or "")
        checkers = [org.units_by_code[zone_of_group.room]] if zone_of_group is not None else []
        verifier = eligible_verifier([*checkers, case_office], conflict, org, recused)
        if verifier is not None:
            reason = (
                f"派驻监督: 被反映人所在的{unit.name}由{group.name}派驻监督，由其办理，{verifier.name}审核"
            )
            return RouteDecision(
                DISPATCH, "stationed_group", reason, group.zone, where["township"], group.code, verifier.code,
                recused,
            )  # fmt: skip

    found = township or _township_or_triage(payload, org, conflict)
    if isinstance(found, RouteDecision):
        return found
    township = found
    zone = org.zones_by_code[township.zone]
    room = org.units_by_code[zone.room]

    def dispatch_to_room(rule: str, why: str) -> RouteDecision:
        if not is_eligible(room, conflict, org, recused):
            return _no_eligible_unit(f"{why}；但{room.name}需回避，需人工指定", township, recused)
        verifier = eligible_verifier([case_office], conflict, org, recused)
        if verifier is None:
            return _no_eligible_unit(f"{why}；但没有可审核的单位，需人工指定", township, recused)
        reason = f"{why}，由{room.name}办理，{verifier.name}审核"
        return RouteDecision(
            DISPATCH, rule, reason, zone.code, township.code, room.code, verifier.code, recused
        )

    if rank == "township" or payload.get("severity") == "serious":
        why = "被反映人为乡镇领导干部" if rank == "township" else "问题线索性质严重"
        return dispatch_to_room("clue_escalated", f"提级办案: {why}")

    candidates = sorted(
        (
            u
            for code, u in org.township_commissions.items()
            if org.townships_by_code[code].zone == zone.code and is_eligible(u, conflict, org, recused)
        ),
        key=lambda u: (open_counts.get(u.code, 0), u.code),
    )
    verifier = eligible_verifier([room, case_office], conflict, org, recused)
    if not candidates:
        return dispatch_to_room(
            "cross_handling_fallback_room", f"交叉办案: 排除{township.name}后本协作区没有可交叉办理的乡镇"
        )
    if verifier is None:
        return _no_eligible_unit(
            f"交叉办案: 排除{township.name}后有可办理的乡镇，但没有可审核的单位，需人工指定",
            township,
            recused,
        )
    chosen = candidates[0]
    reason = (
        f"交叉办案: 排除被反映人所在的{township.name}；{chosen.name}在办任务最少"
        f"（{open_counts.get(chosen.code, 0)}件），{verifier.name}审核"
    )
    return RouteDecision(
        DISPATCH, "cross_handling", reason, zone.code, township.code, chosen.code, verifier.code, recused
    )


def _refer_upward(
    why: str, conflict: ConflictOfInterest, org: Org, recused: tuple[str, ...], where: dict[str, Any]
) -> RouteDecision:
    """上报: a task for the commission office that records the transfer to the higher commission."""
    first = org.units_by_code[org.commission.referral_unit]
    offices = [first, *(u for u in org.units if u.kind is UnitKind.commission_office and u is not first)]
    office = next((u for u in offices if is_eligible(u, conflict, org, recused)), None)
    if office is None:
        reason = f"上报: {why}，但委机关各室均需回避，需人工指定"
        return _triage("no_eligible_unit", reason, recused_logins=recused, **where)
    reason = f"上报: {why}，不在本级管辖范围，由{office.name}登记移送上级纪委监委"
    return RouteDecision(
        DISPATCH, "refer_upward", reason, handler_unit=office.code, recused_logins=recused, **where
    )


def _refer_upward_because(rank: str | None, person: str | None, unit: Unit | None, org: Org) -> str | None:
    """Why a clue is beyond the county commission's jurisdiction, in words (None: it is not)."""
    if rank == "county":
        return "被反映人为县处级干部（由上级党委管理）"
    if org.is_commission(unit):
        return f"被反映人在{unit.name}任职（纪检监察机关干部）"  # type: ignore[union-attr]
    leaders = {s.name for s in org.staff if Role.zone_leader in s.roles}
    if person and person in leaders:
        return "被反映人为协作区组长（纪检监察机关干部）"
    return None
