"""Conflict of interest (回避, DESIGN §5 rule 5): who may never handle, verify or assist a matter.

Pure functions over the org: what an event is about (``ConflictOfInterest``), the staff whose
recusals name it, the units that are eligible, and why a unit chosen by a person (designation,
triage routing) is refused, in words.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from dispatcher.enums import Role, TaskKind
from dispatcher.org.model import Org, Staff, Township, Unit, fold


@dataclass(frozen=True, slots=True)
class ConflictOfInterest:
    """What an event is about, for conflict-of-interest checks (rule 5)."""

    township: Township | None
    person: str | None = None
    unit_text: str | None = None
    unit: Unit | None = None
    #: Keyed hashes of the names of whoever reported or complained (never the names themselves).
    reporter_keys: frozenset[str] = frozenset()

    def excludes_unit(self, unit: Unit) -> bool:
        """Never the subject's own unit or township (rule 5)."""
        if self.unit is not None and unit.code == self.unit.code:
            return True
        if self.unit_text and fold(self.unit_text) == fold(unit.name):
            return True
        return self.township is not None and unit.township == self.township.code

    def recusal_of(self, staff: Staff, org: Org) -> str | None:
        """Why ``staff``'s declared recusals cover this matter, in words (None: they do not)."""
        for r in staff.recusals:
            if r.person is not None and self.person and fold(r.person) == fold(self.person):
                return "已声明与被反映人存在利害关系"
            if r.township is not None and self.township is not None:
                t = org.find_township(r.township)
                if t is not None and t.code == self.township.code:
                    return f"已声明回避{self.township.name}的事项"
            if r.unit is not None:
                u = org.find_unit(r.unit)
                if (u is not None and self.unit is not None and u.code == self.unit.code) or (
                    self.unit_text and fold(r.unit) == fold(self.unit_text)
                ):
                    return f"已声明回避{r.unit}的事项"
            if r.reporter_key is not None and r.reporter_key in self.reporter_keys:
                return "已声明与举报（投诉）人存在利害关系"
        return None

    def recuses(self, staff: Staff, org: Org) -> bool:
        return self.recusal_of(staff, org) is not None


def recused_logins(conflict: ConflictOfInterest, org: Org) -> tuple[str, ...]:
    return tuple(sorted(s.login for s in org.staff if conflict.recuses(s, org)))


def is_eligible(unit: Unit, conflict: ConflictOfInterest, org: Org, recused: Collection[str]) -> bool:
    """A unit may take the matter unless it is conflicted or every handler of it is recused."""
    if conflict.excludes_unit(unit):
        return False
    handlers = [s for s in org.staff_of(unit.code) if Role.handler in s.roles]
    return not handlers or any(s.login not in recused for s in handlers)


def eligible_verifier(
    candidates: list[Unit], conflict: ConflictOfInterest, org: Org, recused: Collection[str]
) -> Unit | None:
    """The first of ``candidates`` that may verify: not conflicted, and not every verifier recused."""
    for unit in candidates:
        if not conflict.excludes_unit(unit):
            verifiers = [s for s in org.staff_of(unit.code) if Role.verifier in s.roles]
            if not verifiers or any(s.login not in recused for s in verifiers):
                return unit
    return None


def conflict_for(
    kind: str, payload: Mapping[str, Any], org: Org, reporter_keys: frozenset[str] = frozenset()
) -> ConflictOfInterest:
    """What an event is about, as routing sees it (for designation, triage routing, co-handling)."""
    if kind == TaskKind.clue:
        subject = payload.get("subject") or {}
        text = subject.get("unit")
        township = org.find_township(payload.get("township"), payload.get("village"))
        return ConflictOfInterest(
            township, person=subject.get("name"), unit_text=text, unit=org.find_unit(text),
            reporter_keys=reporter_keys,
        )  # fmt: skip
    if kind == TaskKind.complaint:  # the township's own commission handles its complaints
        text = payload.get("about_unit")
        return ConflictOfInterest(None, unit_text=text, unit=org.find_unit(text), reporter_keys=reporter_keys)
    township = org.find_township(payload.get("township")) if payload.get("township") else None
    enterprise = (payload.get("enterprise") or {}).get("name")
    return ConflictOfInterest(township, unit_text=enterprise, reporter_keys=reporter_keys)


def unit_refusal(unit: Unit, conflict: ConflictOfInterest, what: str) -> str | None:
    """Why ``unit`` may not ``what`` (承办, 验单, 协助) this matter, in words, or ``None``."""
    if conflict.excludes_unit(unit):
        return f"回避: {unit.name}是被反映人（被投诉对象）所在单位或乡镇，不能{what}"
    return None


def designation_refusal(
    kind: str,
    payload: Mapping[str, Any],
    org: Org,
    unit_code: str,
    verifier_code: str | None = None,
    *,
    recused: Collection[str] = (),
) -> str | None:
    """Why ``unit_code`` may not take this matter (rule 7 stays subject to rule 5), or ``None``.

    ``recused``: logins already known to be recused (the task's, which include recusals of the
    reporter that only the routing worker can match).
    """
    conflict = conflict_for(kind, payload, org)
    everyone = {*recused_logins(conflict, org), *recused}
    unit = org.units_by_code[unit_code]
    refusal = unit_refusal(unit, conflict, "承办")
    if refusal:
        return refusal
    if not is_eligible(unit, conflict, org, everyone):
        return f"回避: {unit.name}的承办人员均已声明回避，不能承办"
    if verifier_code is not None:
        verifier = org.units_by_code.get(verifier_code)
        if verifier is None:
            return f"未知的验单单位 {verifier_code}"
        if eligible_verifier([verifier], conflict, org, everyone) is None:
            return f"回避: {verifier.name}是被反映人所在单位或其审核人员均已回避，不能验单"
    return None


def assist_refusal(
    kind: str, payload: Mapping[str, Any], org: Org, who: str, *, recused: Collection[str] = ()
) -> str | None:
    """Why a unit or a person (by login) may not assist with this matter (增派协助, rule 5), or ``None``."""
    conflict = conflict_for(kind, payload, org)
    unit = org.units_by_code.get(who)
    if unit is not None:
        return unit_refusal(unit, conflict, "协助办理")
    staff = next((s for s in org.staff if s.login == who), None)
    if staff is None:
        return None
    own = org.units_by_code.get(staff.unit)
    if own is not None and conflict.excludes_unit(own):
        return f"回避: {staff.name}所在的{own.name}是被反映人所在单位或乡镇，不能协助办理"
    why = conflict.recusal_of(staff, org)
    if why is not None or who in recused:
        return f"回避: {staff.name}{why or '已声明回避本事项'}，不能协助办理"
    return None


def default_verifier(kind: str, org: Org, zone: str | None, handler: str) -> str:
    """The verifying unit routing would pick for a task now handled by ``handler``."""
    if kind == TaskKind.enterprise_request:
        return org.commission.enterprise_verifier
    room = org.zones_by_code[zone].room if zone in org.zones_by_code else None
    if room is None or room == handler:
        return org.commission.clue_verifier
    return room
