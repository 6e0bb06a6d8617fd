"""Read an org file: YAML → validated ``Org``, with every problem named by file, line and field."""

from __future__ import annotations

from pathlib import Path

from dispatcher.org.model import Org, UnitKind, fold
from dispatcher.yamlfile import FileProblem, check_yaml, read_checked

#: Kept under its old name: org problems are file problems.
OrgProblem = FileProblem


def check_org_text(text: str, filename: str = "<org>") -> tuple[Org | None, list[FileProblem]]:
    """Parse and validate; returns the org (if valid) and every problem found."""
    return check_yaml(text, filename, Org, what="org", cross=_cross_references)


def _duplicates(
    items: list[tuple[int, str]], section: str, key: str
) -> list[tuple[tuple[str | int, ...], str]]:
    seen: dict[str, int] = {}
    out: list[tuple[tuple[str | int, ...], str]] = []
    for i, value in items:
        if value in seen:
            out.append(((section, i, key), f"duplicate {key} {value!r} (first at {section}[{seen[value]}])"))
        else:
            seen[value] = i
    return out


def _cross_references(org: Org) -> list[tuple[tuple[str | int, ...], str]]:
    """Checks a schema cannot express: unique codes and references that must resolve."""
    problems = []
    problems += _duplicates([(i, z.code) for i, z in enumerate(org.zones)], "zones", "code")
    problems += _duplicates([(i, u.code) for i, u in enumerate(org.units)], "units", "code")
    problems += _duplicates([(i, t.code) for i, t in enumerate(org.townships)], "townships", "code")
    problems += _duplicates([(i, t.name) for i, t in enumerate(org.townships)], "townships", "name")
    problems += _duplicates([(i, s.login) for i, s in enumerate(org.staff)], "staff", "login")
    problems += _duplicates([(i, fold(u.name)) for i, u in enumerate(org.units)], "units", "name")
    township_keys = [(i, fold(key)) for i, t in enumerate(org.townships) for key in {t.name, *t.aliases}]
    problems += [
        ((section, i, "aliases"), message.replace("duplicate name", "name or alias"))
        for (section, i, _), message in _duplicates(township_keys, "townships", "name")
    ]

    units, zones, townships = org.units_by_code, org.zones_by_code, org.townships_by_code
    logins = {s.login for s in org.staff}
    leaders_roles = {s.login: s.roles for s in org.staff}

    for field in ("enterprise_verifier", "clue_verifier"):
        code = getattr(org.commission, field)
        if code not in units:
            problems.append((("commission", field), f"unknown unit {code!r}"))
        elif units[code].kind is not UnitKind.commission_office:
            problems.append(
                (
                    ("commission", field),
                    f"unit {code!r} is a {units[code].kind.value}, not a commission_office",
                )
            )

    for i, z in enumerate(org.zones):
        room = units.get(z.room)
        if room is None:
            problems.append((("zones", i, "room"), f"unknown unit {z.room!r}"))
        elif room.kind is not UnitKind.room:
            problems.append((("zones", i, "room"), f"unit {z.room!r} is a {room.kind.value}, not a room"))
        elif room.zone != z.code:
            problems.append((("zones", i, "room"), f"room {z.room!r} belongs to zone {room.zone!r}"))
        for j, login in enumerate(z.leaders):
            if login not in logins:
                problems.append((("zones", i, "leaders", j), f"unknown staff login {login!r}"))
            elif "zone_leader" not in leaders_roles[login]:
                problems.append((("zones", i, "leaders", j), f"staff {login!r} lacks the zone_leader role"))

    for i, u in enumerate(org.units):
        if u.zone is not None and u.zone not in zones:
            problems.append((("units", i, "zone"), f"unknown zone {u.zone!r}"))
        if u.township is not None:
            t = townships.get(u.township)
            if t is None:
                problems.append((("units", i, "township"), f"unknown township {u.township!r}"))
            elif u.zone is not None and t.zone != u.zone:
                problems.append(
                    (("units", i, "zone"), f"township {t.code!r} is in zone {t.zone!r}, not {u.zone!r}")
                )
    commissions_of: dict[str, list[int]] = {}
    for i, u in enumerate(org.units):
        if u.kind is UnitKind.township_commission and u.township:
            commissions_of.setdefault(u.township, []).append(i)
    for code, indexes in commissions_of.items():
        for i in indexes[1:]:
            problems.append((("units", i, "township"), f"township {code!r} already has a commission"))

    for i, t in enumerate(org.townships):
        if t.zone not in zones:
            problems.append((("townships", i, "zone"), f"unknown zone {t.zone!r}"))
        if t.code not in commissions_of:
            problems.append(
                (("townships", i, "code"), f"township {t.code!r} has no township_commission unit")
            )

    for i, s in enumerate(org.staff):
        if s.unit not in units:
            problems.append((("staff", i, "unit"), f"unknown unit {s.unit!r}"))
        for j, r in enumerate(s.recusals):
            if r.unit is not None and org.find_unit(r.unit) is None:
                problems.append((("staff", i, "recusals", j, "unit"), f"unknown unit {r.unit!r}"))
            if r.township is not None and org.find_township(r.township) is None:
                problems.append((("staff", i, "recusals", j, "township"), f"unknown township {r.township!r}"))

    covered: dict[str, int] = {}
    for i, u in enumerate(org.units):
        for j, code in enumerate(u.covers):
            dept = units.get(code)
            if dept is None:
                problems.append((("units", i, "covers", j), f"unknown unit {code!r}"))
            elif dept.kind is not UnitKind.functional_department:
                problems.append(
                    (("units", i, "covers", j), f"unit {code!r} is a {dept.kind.value}, not a department")
                )
            elif code in covered:
                first = org.units[covered[code]].code
                problems.append(
                    (("units", i, "covers", j), f"department {code!r} is already covered by {first!r}")
                )
            else:
                covered[code] = i
    office = org.commission.referral_office
    if office is not None and (office not in units or units[office].kind is not UnitKind.commission_office):
        problems.append((("commission", "referral_office"), f"unit {office!r} is not a commission_office"))

    for category, code in org.enterprise_categories.items():
        dept = units.get(code)
        if dept is None:
            problems.append((("enterprise_categories", category), f"unknown unit {code!r}"))
        elif dept.kind is not UnitKind.functional_department:
            problems.append(
                (
                    ("enterprise_categories", category),
                    f"unit {code!r} is a {dept.kind.value}, not a department",
                )
            )
    return problems


def load_org_file(path: Path) -> Org:
    """Read and validate ``path``; raises ``ConfigError`` listing every problem."""
    return read_checked(path, check_org_text)[0]
