"""The org directory as validated, immutable data, with the look-ups routing needs.

Schema (YAML, see ``examples/org.yaml``)::

    commission: {code, name, enterprise_verifier, clue_verifier}
    zones:      [{code, name, room, leaders: [login]}]
    units:      [{code, name, kind, zone, township, covers: [department codes], webhook: {url, secret_env}}]
    townships:  [{code, name, zone, aliases: [..], villages: [..]}]
    staff:      [{login, name, unit, roles: [..], recusals: [{person|unit|township|reporter: ..}]}]
    enterprise_categories: {category: department unit code}
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import cached_property
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from dispatcher.enums import Role

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class UnitKind(StrEnum):
    room = "room"  #: 纪检监察室
    stationed_group = "stationed_group"  #: 派驻纪检监察组
    township_commission = "township_commission"  #: 乡镇(街道)纪委
    functional_department = "functional_department"  #: 职能部门
    commission_office = "commission_office"  #: 委机关内设机构 (案件监督管理室, 党风政风监督室…)


class Webhook(_Frozen):
    url: HttpUrl
    #: Name of the environment variable holding the HMAC secret: secrets never live in the org file.
    secret_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")] | None = None


class Commission(_Frozen):
    code: Code
    name: Name
    #: 纪委验单: the unit that verifies enterprise requests.
    enterprise_verifier: Code
    #: 案件监督管理: the unit that verifies clues the zone's room handles itself.
    clue_verifier: Code
    #: The office that records a clue referred to the higher commission (上报); default: ``clue_verifier``.
    referral_office: Code | None = None

    @property
    def referral_unit(self) -> str:
        return self.referral_office or self.clue_verifier


class Zone(_Frozen):
    """协作区: a room, stationed groups and several township commissions."""

    code: Code
    name: Name
    room: Code
    leaders: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = ()


class Unit(_Frozen):
    code: Code
    name: Name
    kind: UnitKind
    zone: Code | None = None
    township: Code | None = None
    #: 派驻监督: the functional departments a stationed group oversees (its officials' clues go to it).
    covers: tuple[Code, ...] = ()
    webhook: Webhook | None = None

    @model_validator(mode="after")
    def _township_commission_names_its_township(self) -> Unit:
        if self.kind is UnitKind.township_commission and not self.township:
            raise ValueError("a township_commission must name its township")
        if (
            self.kind in (UnitKind.room, UnitKind.stationed_group, UnitKind.township_commission)
            and not self.zone
        ):
            raise ValueError(f"a {self.kind.value} must name its zone")
        if self.covers and self.kind is not UnitKind.stationed_group:
            raise ValueError("only a stationed_group covers departments")
        return self


class Township(_Frozen):
    """乡镇/街道, with its villages (村/社区)."""

    code: Code
    name: Name
    zone: Code
    aliases: tuple[Name, ...] = ()
    villages: tuple[Name, ...] = ()


class Recusal(_Frozen):
    """回避: a declared conflict. Exactly one of person (a subject), unit, township, reporter.

    ``reporter`` is a name in the org file only: when the org is loaded it is replaced by
    ``reporter_key``, a keyed hash (``security.person_key``), so no reporter's name is stored; the
    routing worker compares it with the hashed names of an event's reporter or complainant.
    """

    person: Name | None = None
    unit: Name | None = None
    township: Name | None = None
    reporter: Name | None = None
    reporter_key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Recusal:
        named = (self.person, self.unit, self.township, self.reporter, self.reporter_key)
        if sum(x is not None for x in named) != 1:
            raise ValueError("a recusal names exactly one of person, unit, township, reporter")
        return self


class Staff(_Frozen):
    login: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    name: Name
    unit: Code
    roles: tuple[Role, ...] = Field(min_length=1)
    recusals: tuple[Recusal, ...] = ()


class Org(_Frozen):
    commission: Commission
    zones: tuple[Zone, ...] = Field(min_length=1)
    units: tuple[Unit, ...] = Field(min_length=1)
    townships: tuple[Township, ...] = Field(min_length=1)
    staff: tuple[Staff, ...] = ()
    enterprise_categories: dict[Name, Code] = Field(default_factory=dict)

    # -- look-ups (cached: the model is frozen) --------------------------------------------

    @cached_property
    def units_by_code(self) -> dict[str, Unit]:
        return {u.code: u for u in self.units}

    @cached_property
    def zones_by_code(self) -> dict[str, Zone]:
        return {z.code: z for z in self.zones}

    @cached_property
    def townships_by_code(self) -> dict[str, Township]:
        return {t.code: t for t in self.townships}

    @cached_property
    def _township_index(self) -> dict[str, Township]:
        index: dict[str, Township] = {}
        for t in self.townships:
            for key in (t.code, t.name, *t.aliases):
                index.setdefault(fold(key), t)
        return index

    @cached_property
    def _village_index(self) -> dict[str, list[Township]]:
        index: dict[str, list[Township]] = {}
        for t in self.townships:
            for v in t.villages:
                index.setdefault(fold(v), []).append(t)
        return index

    @cached_property
    def township_commissions(self) -> dict[str, Unit]:
        """Township code → its township commission (乡镇纪委)."""
        return {u.township: u for u in self.units if u.kind is UnitKind.township_commission and u.township}

    def find_township(self, township: str | None, village: str | None = None) -> Township | None:
        """By code, name or alias; failing that, by a village that belongs to exactly one township."""
        if township:
            found = self._township_index.get(fold(township))
            if found is not None:
                return found
        if village:
            candidates = self._village_index.get(fold(village), [])
            if len(candidates) == 1:
                return candidates[0]
        return None

    def find_unit(self, text: str | None) -> Unit | None:
        """A unit by code or by name (exact after folding spaces and case)."""
        if not text:
            return None
        key = fold(text)
        for u in self.units:
            if fold(u.code) == key or fold(u.name) == key:
                return u
        return None

    def staff_of(self, unit_code: str) -> list[Staff]:
        return [s for s in self.staff if s.unit == unit_code]

    @cached_property
    def _covering(self) -> dict[str, Unit]:
        return {code: u for u in self.units for code in u.covers}

    def group_covering(self, department: str) -> Unit | None:
        """The stationed group (派驻纪检监察组) that oversees ``department`` (a unit code)."""
        return self._covering.get(department)

    def is_commission(self, unit: Unit | None) -> bool:
        """A unit of the commission itself: its offices, rooms and stationed groups (委机关, 室, 组)."""
        return unit is not None and unit.kind in (
            UnitKind.commission_office,
            UnitKind.room,
            UnitKind.stationed_group,
        )

    def with_hashed_reporters(self, key: Callable[[str], str]) -> Org:
        """This org with every recusal's reporter name replaced by its keyed hash (for storage)."""
        if not any(r.reporter for s in self.staff for r in s.recusals):
            return self
        staff = tuple(
            s.model_copy(update={"recusals": tuple(
                Recusal(reporter_key=key(r.reporter), note=r.note) if r.reporter else r for r in s.recusals
            )})
            for s in self.staff
        )  # fmt: skip
        return self.model_copy(update={"staff": staff})

    def department_for(self, category: str) -> Unit | None:
        folded = {fold(k): v for k, v in self.enterprise_categories.items()}
        code = folded.get(fold(category))
        return self.units_by_code.get(code) if code else None


def fold(text: str) -> str:
    return "".join(text.split()).casefold()
