"""Conflict of interest (回避, DESIGN §5 rule 5): who may never handle, verify or assist a matter.

Pure functions over the org: what an event is about (``ConflictOfInterest``), the staff whose
recusals name it, the units that are eligible, and why a unit chosen by a person (designation,
triage routing) is refused, in words.
"""

from __future__ import annotations

from collections.abc import Mapping
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

    def excludes_unit(self, unit: Unit) -> bool:
        """Never the subject's own unit or township (rule 5)."""
        if self.unit is not None and unit.code == self.unit.code:
            return True
        if self.unit_text and fold(self.unit_text) == fold(unit.name):
            return True
        return self.township is not None and unit.township == self.township.code

    def recuses(self, staff: Staff, org: Org) -> bool:
        for r in staff.recusals:
            if r.person is not None and self.person and fold(r.person) == fold(self.person):
                return True
            if r.township is not None and self.township is not None:
                t = org.find_township(r.township)
                if t is not None and t.code == self.township.code:
                    return True
            if r.unit is not None:
                u = org.find_unit(r.unit)
                if u is not None and self.unit is not None and u.code == self.unit.code:
                    return True
                if self.unit_text and fold(r.unit) == fold(self.unit_text):
                    return True
        return False


def recused_logins(conflict: ConflictOfInterest, org: Org) -> tuple[str, ...]:
    return tuple(sorted(s.login for s in org.staff if conflict.recuses(s, org)))


def is_eligible(unit: Unit, conflict: ConflictOfInterest, org: Org, recused: tuple[str, ...]) -> bool:
    """A unit may take the matter unless it is conflicted or every handler of it is recused."""
    if conflict.excludes_unit(unit):
        return False
    handlers = [s for s in org.staff_of(unit.code) if Role.handler in s.roles]
    return not handlers or any(s.login not in recused for s in handlers)


def eligible_verifier(
    candidates: list[Unit], conflict: ConflictOfInterest, org: Org, recused: tuple[str, ...]
) -> Unit | None:
    """The first of ``candidates`` that may verify: not conflicted, and not every verifier recused."""
    for unit in candidates:
        if not conflict.excludes_unit(unit):
            verifiers = [s for s in org.staff_of(unit.code) if Role.verifier in s.roles]
            if not verifiers or any(s.login not in recused for s in verifiers):
                return unit
    return None


def conflict_for(kind: str, payload: Mapping[str, Any], org: Org) -> ConflictOfInterest:
    """What an event is about, as routing sees it (for designation and triage routing, rule 7)."""
    if kind == TaskKind.clue:
        subject = payload.get("subject") or {}
        text = subject.get("unit")
        township = org.find_township(payload.get("township"), payload.get("village"))
        return ConflictOfInterest(
            township, person=subject.get("name"), unit_text=text, unit=org.find_unit(text)
        )
    if (
        kind == TaskKind.complaint
    ):  # the township's own commission handles its complaints: only the unit complained about
        text = payload.get("about_unit")
        return ConflictOfInterest(None, unit_text=text, unit=org.find_unit(text))
    township = org.find_township(payload.get("township")) if payload.get("township") else None
    return ConflictOfInterest(township, unit_text=(payload.get("enterprise") or {}).get("name"))


def designation_refusal(
    kind: str, payload: Mapping[str, Any], org: Org, unit_code: str, verifier_code: str | None = None
) -> str | None:
    """Why ``unit_code`` may not take this matter (rule 7 stays subject to rule 5), or ``None``."""
    conflict = conflict_for(kind, payload, org)
    recused = recused_logins(conflict, org)
    unit = org.units_by_code[unit_code]
    if conflict.excludes_unit(unit):
        return f"回避: {unit.name}是被反映人所在单位或乡镇，不能承办"
    if not is_eligible(unit, conflict, org, recused):
        return f"回避: {unit.name}的承办人员均需回避"
    if verifier_code is not None:
        verifier = org.units_by_code.get(verifier_code)
        if verifier is None:
            return f"未知的验单单位 {verifier_code}"
        if eligible_verifier([verifier], conflict, org, recused) is None:
            return f"回避: {verifier.name}不能验单"
    return None


def default_verifier(kind: str, org: Org, zone: str | None, handler: str) -> str:
    """The verifying unit routing would pick for a task now handled by ``handler``."""
    if kind == TaskKind.enterprise_request:
        return org.commission.enterprise_verifier
    room = org.zones_by_code[zone].room if zone in org.zones_by_code else None
    if room is None or room == handler:
        return org.commission.clue_verifier
    return room
