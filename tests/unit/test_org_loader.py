"""Unit tests of the org loader: the example org is valid, and every problem names file, line and field."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from dispatcher.errors import ConfigError
from dispatcher.org.loader import OrgProblem, check_org_text, load_org_file
from dispatcher.org.model import Org, UnitKind

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "org.yaml"
FILE = "org.yaml"

# A minimal valid org: one zone, a room, two townships each with its commission, one department.
# 新村 exists in both townships on purpose (an ambiguous village).
MINIMAL = """\
commission:
  code: XJW
  name: 某县纪委监委
  enterprise_verifier: DFZF
  clue_verifier: AJGL
zones:
  - code: Z1
    name: 第一协作区
    room: SHI1
    leaders: [leader]
units:
  - code: DFZF
    name: 党风政风监督室
    kind: commission_office
  - code: AJGL
    name: 案件监督管理室
    kind: commission_office
  - code: SHI1
    name: 第一纪检监察室
    kind: room
    zone: Z1
  - code: DXZ-JW
    name: 大兴镇纪委
    kind: township_commission
    zone: Z1
    township: DXZ
  - code: FDX-JW
    name: 丰登乡纪委
    kind: township_commission
    zone: Z1
    township: FDX
  - code: SCJG
    name: 市场监管局
    kind: functional_department
townships:
  - code: DXZ
    name: 大兴镇
    zone: Z1
    aliases: [大兴]
    villages: [庙湾村, 新村]
  - code: FDX
    name: 丰登乡
    zone: Z1
    villages: [石门村, 新村]
staff:
  - login: leader
    name: 韩组长
    unit: SHI1
    roles: [zone_leader]
  - login: handler1
    name: 魏承办
    unit: DXZ-JW
    roles: [handler]
    recusals:
      - township: 丰登乡
        note: 丈夫系丰登乡干部
enterprise_categories:
  市场监管: SCJG
"""


def mutate(text: str, old: str, new: str) -> str:
    """Replace the single occurrence of ``old``: a test that edits the wrong spot fails loudly."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def lines_of(text: str, needle: str) -> list[int]:
    """The 1-based lines containing ``needle``."""
    return [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the single line containing ``needle``."""
    hits = lines_of(text, needle)
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def problems_of(text: str) -> list[OrgProblem]:
    org, problems = check_org_text(text, FILE)
    assert org is None, "an invalid org must not be returned"
    assert problems, "an invalid org must report at least one problem"
    return problems


def only_problem(text: str) -> OrgProblem:
    problems = problems_of(text)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


@pytest.fixture(scope="module")
def minimal_org() -> Org:
    org, problems = check_org_text(MINIMAL, FILE)
    assert problems == []
    assert org is not None
    return org


# -- valid files ------------------------------------------------------------------------------


def test_minimal_fixture_is_valid(minimal_org: Org) -> None:
    assert [z.code for z in minimal_org.zones] == ["Z1"]
    assert minimal_org.township_commissions["DXZ"].code == "DXZ-JW"
    assert minimal_org.department_for("市场监管").code == "SCJG"


def test_example_org_file_has_no_problems() -> None:
    org, problems = check_org_text(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    assert problems == [], "\n".join(str(p) for p in problems)
    assert org is not None


def test_example_org_file_loads_through_load_org_file() -> None:
    org = load_org_file(EXAMPLE)
    assert len(org.zones) >= 3
    assert len(org.townships) >= 9


def test_example_org_staffs_every_room_and_township_commission() -> None:
    org = load_org_file(EXAMPLE)
    for unit in org.units:
        roles = Counter(role for s in org.staff_of(unit.code) for role in s.roles)
        if unit.kind in (UnitKind.room, UnitKind.township_commission):
            assert roles["handler"] >= 2 and roles["verifier"] >= 1, unit.code
        elif unit.kind is UnitKind.functional_department:
            assert roles["handler"] >= 1, unit.code
    for zone in org.zones:
        assert zone.leaders, zone.code
        for login in zone.leaders:
            leader = next(s for s in org.staff if s.login == login)
            assert "zone_leader" in leader.roles
    all_roles = Counter(role for s in org.staff for role in s.roles)
    assert all_roles["oncall"] >= 2 and all_roles["admin"] >= 1
    for category in org.enterprise_categories:
        assert org.department_for(category) is not None, category


def test_example_org_keeps_secrets_out_of_webhooks() -> None:
    org = load_org_file(EXAMPLE)
    hooks = [u.webhook for u in org.units if u.webhook is not None]
    assert len(hooks) >= 2
    assert all(h.secret_env and h.secret_env.startswith("WEBHOOK_SECRET_") for h in hooks)


# -- YAML-level problems ----------------------------------------------------------------------


def test_yaml_syntax_error_is_reported_with_its_line() -> None:
    text = mutate(MINIMAL, "    name: 第一协作区", "    name: 第一: 协作区")
    problem = only_problem(text)
    assert problem.file == FILE
    assert problem.line == line_of(text, "第一: 协作区")
    assert problem.field == ""
    assert "YAML syntax" in problem.message
    assert str(problem).startswith(f"{FILE}:{problem.line}: (file): ")


def test_duplicate_yaml_key_is_a_syntax_problem() -> None:
    text = mutate(MINIMAL, "  code: XJW\n", "  code: XJW\n  code: YJW\n")
    problem = only_problem(text)
    assert "duplicate key" in problem.message
    assert problem.line in (line_of(text, "code: XJW"), line_of(text, "code: YJW"))


def test_top_level_that_is_not_a_mapping_is_reported() -> None:
    problem = only_problem("- just\n- a list\n")
    assert (problem.file, problem.line, problem.field) == (FILE, 1, "")
    assert "mapping" in problem.message


def test_non_printable_character_is_reported_not_raised() -> None:
    text = mutate(MINIMAL, "name: 韩组长", "name: 韩\x07组长")
    problem = only_problem(text)
    assert problem.file == FILE


# -- schema problems --------------------------------------------------------------------------


def test_wrong_enum_value_is_reported_with_its_line_and_field() -> None:
    text = mutate(MINIMAL, "    kind: room", "    kind: office")
    problem = only_problem(text)
    assert problem.file == FILE
    assert problem.line == line_of(text, "kind: office")
    assert problem.field == "units[2].kind"
    assert "room" in problem.message and "township_commission" in problem.message


def test_wrong_role_is_reported_with_its_index() -> None:
    text = mutate(MINIMAL, "roles: [handler]", "roles: [handler, boss]")
    problem = only_problem(text)
    assert problem.field == "staff[1].roles[1]"
    assert problem.line == line_of(text, "boss")


def test_missing_required_field_is_reported_at_its_item() -> None:
    text = mutate(MINIMAL, "    name: 大兴镇纪委\n", "")
    problem = only_problem(text)
    assert problem.file == FILE
    assert problem.field == "units[3].name"
    assert problem.line == line_of(text, "code: DXZ-JW")
    assert "required" in problem.message.lower()


def test_missing_commission_section_is_reported_on_line_one() -> None:
    text = MINIMAL.split("zones:\n", 1)[1]
    problem = only_problem("zones:\n" + text)
    assert (problem.line, problem.field) == (1, "commission")


def test_unknown_field_is_reported_with_its_line() -> None:
    text = mutate(
        MINIMAL, "    kind: functional_department\n", "    kind: functional_department\n    colour: red\n"
    )
    problem = only_problem(text)
    assert problem.field == "units[5].colour"
    assert problem.line == line_of(text, "colour: red")


def test_invalid_code_characters_are_reported() -> None:
    text = mutate(MINIMAL, "  - code: SCJG", "  - code: 市场监管")
    problem = only_problem(text)
    assert problem.field == "units[5].code"
    assert problem.line == line_of(text, "code: 市场监管")


def test_township_commission_without_township_is_reported_at_its_item() -> None:
    text = mutate(MINIMAL, "    township: FDX\n", "")
    problem = only_problem(text)
    assert problem.field == "units[4]"
    assert problem.line == line_of(text, "code: FDX-JW")
    assert "must name its township" in problem.message


def test_room_without_zone_is_reported() -> None:
    text = mutate(MINIMAL, "    kind: room\n    zone: Z1\n", "    kind: room\n")
    problem = only_problem(text)
    assert problem.field == "units[2]"
    assert "must name its zone" in problem.message


def test_recusal_naming_two_things_is_reported_with_its_line() -> None:
    text = mutate(MINIMAL, "      - township: 丰登乡\n", "      - township: 丰登乡\n        unit: SHI1\n")
    problem = only_problem(text)
    assert problem.file == FILE
    assert problem.field == "staff[1].recusals[0]"
    assert problem.line == line_of(text, "- township: 丰登乡")
    assert "exactly one" in problem.message


def test_recusal_naming_nothing_is_reported() -> None:
    text = mutate(MINIMAL, "      - township: 丰登乡\n        note:", "      - note:")
    problem = only_problem(text)
    assert problem.field == "staff[1].recusals[0]"
    assert "exactly one" in problem.message


def test_webhook_secret_must_be_an_environment_variable_name() -> None:
    text = mutate(
        MINIMAL,
        "    kind: functional_department\n",
        '    kind: functional_department\n    webhook: {url: "http://127.0.0.1:9/h", secret_env: s3cr3t}\n',
    )
    problem = only_problem(text)
    assert problem.field == "units[5].webhook.secret_env"
    assert problem.line == line_of(text, "webhook:")


def test_several_schema_problems_are_all_reported_at_once() -> None:
    text = mutate(MINIMAL, "    kind: room", "    kind: office")
    text = mutate(text, "    name: 丰登乡纪委\n", "")
    text = mutate(text, "roles: [handler]", "roles: [handler, boss]")
    problems = problems_of(text)
    assert {p.field for p in problems} == {"units[2].kind", "units[4].name", "staff[1].roles[1]"}
    assert all(p.file == FILE for p in problems)
    by_field = {p.field: p.line for p in problems}
    assert by_field["units[2].kind"] == line_of(text, "kind: office")
    assert by_field["units[4].name"] == line_of(text, "code: FDX-JW")
    assert by_field["staff[1].roles[1]"] == line_of(text, "boss")


# -- cross-reference problems -----------------------------------------------------------------


def test_unknown_zone_is_reported_with_its_line() -> None:
    text = mutate(MINIMAL, "    kind: room\n    zone: Z1", "    kind: room\n    zone: Z9")
    problems = problems_of(text)
    unknown = [p for p in problems if "unknown zone 'Z9'" in p.message]
    assert len(unknown) == 1
    assert unknown[0].file == FILE
    assert unknown[0].field == "units[2].zone"
    assert unknown[0].line == line_of(text, "zone: Z9")


def test_unknown_zone_of_a_township_is_reported() -> None:
    text = mutate(MINIMAL, "    name: 丰登乡\n    zone: Z1", "    name: 丰登乡\n    zone: Z7")
    problems = problems_of(text)
    assert any(
        p.field == "townships[1].zone" and p.line == line_of(text, "zone: Z7") and "Z7" in p.message
        for p in problems
    ), [str(p) for p in problems]


def test_duplicate_unit_code_is_reported_at_the_second_unit() -> None:
    text = mutate(
        MINIMAL,
        "townships:\n",
        "  - code: SCJG\n    name: 另一个市场监管局\n    kind: functional_department\ntownships:\n",
    )
    problem = only_problem(text)
    assert problem.file == FILE
    assert problem.field == "units[6].code"
    assert problem.line == lines_of(text, "  - code: SCJG")[1]
    assert "duplicate code 'SCJG'" in problem.message
    assert "units[5]" in problem.message


def test_township_without_commission_is_reported_at_its_code() -> None:
    text = mutate(
        MINIMAL,
        "    name: 丰登乡纪委\n    kind: township_commission",
        "    name: 丰登乡纪委\n    kind: commission_office",
    )
    problem = only_problem(text)
    assert "township 'FDX' has no township_commission unit" in problem.message
    assert problem.field == "townships[1].code"
    assert problem.line == text.splitlines().index("  - code: FDX") + 1


def test_second_commission_for_one_township_is_reported() -> None:
    text = mutate(MINIMAL, "    township: FDX\n", "    township: DXZ\n")
    problems = problems_of(text)
    fields = {p.field: p.message for p in problems}
    assert "already has a commission" in fields["units[4].township"]
    assert "no township_commission" in fields["townships[1].code"]


def test_category_mapped_to_a_non_department_is_reported_with_its_line() -> None:
    text = mutate(MINIMAL, "  市场监管: SCJG", "  市场监管: SHI1")
    problem = only_problem(text)
    assert problem.file == FILE
    assert problem.field == "enterprise_categories.市场监管"
    assert problem.line == line_of(text, "市场监管: SHI1")
    assert "room, not a department" in problem.message


def test_category_mapped_to_an_unknown_unit_is_reported() -> None:
    text = mutate(MINIMAL, "  市场监管: SCJG", "  市场监管: NOPE")
    problem = only_problem(text)
    assert problem.field == "enterprise_categories.市场监管"
    assert "unknown unit 'NOPE'" in problem.message


def test_zone_room_that_is_not_a_room_is_reported() -> None:
    text = mutate(MINIMAL, "    room: SHI1", "    room: DFZF")
    problem = only_problem(text)
    assert problem.field == "zones[0].room"
    assert problem.line == line_of(text, "room: DFZF")


def test_unknown_zone_leader_is_reported_with_its_index() -> None:
    text = mutate(MINIMAL, "leaders: [leader]", "leaders: [leader, ghost]")
    problem = only_problem(text)
    assert problem.field == "zones[0].leaders[1]"
    assert problem.line == line_of(text, "ghost")


def test_unknown_verifier_unit_is_reported() -> None:
    text = mutate(MINIMAL, "  clue_verifier: AJGL", "  clue_verifier: AJG")
    problem = only_problem(text)
    assert problem.field == "commission.clue_verifier"
    assert problem.line == line_of(text, "clue_verifier")


def test_recusal_may_name_units_and_townships_by_name_or_code() -> None:
    text = mutate(
        MINIMAL,
        "        note: 丈夫系丰登乡干部\n",
        "        note: 丈夫系丰登乡干部\n      - township: 大兴\n      - unit: 市场监管局\n"
        "      - unit: SHI1\n      - township: FDX\n      - person: 张某某\n",
    )
    org, problems = check_org_text(text, FILE)
    assert problems == []
    assert org is not None
    assert len(org.staff[1].recusals) == 6


def test_recusal_of_unknown_township_and_unit_is_reported() -> None:
    text = mutate(
        MINIMAL,
        "      - township: 丰登乡\n",
        "      - township: 不存在乡\n      - unit: 不存在局\n",
    )
    problems = problems_of(text)
    assert {p.field for p in problems} == {"staff[1].recusals[0].township", "staff[1].recusals[1].unit"}
    lines = {p.field: p.line for p in problems}
    assert lines["staff[1].recusals[0].township"] == line_of(text, "不存在乡")
    assert lines["staff[1].recusals[1].unit"] == line_of(text, "不存在局")


def test_several_cross_reference_problems_are_all_reported_at_once() -> None:
    text = mutate(MINIMAL, "    kind: room\n    zone: Z1", "    kind: room\n    zone: Z9")
    text = mutate(text, "  - code: SCJG", "  - code: AJGL")
    text = mutate(text, "  市场监管: SCJG", "  市场监管: DFZF")
    text = mutate(text, "    unit: DXZ-JW", "    unit: NOWHERE")
    problems = problems_of(text)
    fields = {p.field for p in problems}
    assert {"units[2].zone", "units[5].code", "enterprise_categories.市场监管", "staff[1].unit"} <= fields
    assert all(p.file == FILE for p in problems)
    assert len({p.line for p in problems}) >= 4


def test_load_org_file_raises_config_error_listing_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "org.yaml"
    text = mutate(MINIMAL, "    kind: room", "    kind: office")
    path.write_text(mutate(text, "roles: [handler]", "roles: [handler, boss]"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_org_file(path)
    assert "2 problem(s)" in caught.value.message
    assert len(caught.value.details) == 2
    assert all(d.startswith(f"{path}:") for d in caught.value.details)


def test_load_org_file_reports_an_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_org_file(tmp_path / "missing.yaml")


# -- Org.find_township --------------------------------------------------------------------------


def test_find_township_by_code(minimal_org: Org) -> None:
    assert minimal_org.find_township("DXZ").code == "DXZ"


def test_find_township_by_code_ignores_case_and_spaces(minimal_org: Org) -> None:
    assert minimal_org.find_township(" dxz ").code == "DXZ"


def test_find_township_by_name(minimal_org: Org) -> None:
    assert minimal_org.find_township("丰登乡").code == "FDX"


def test_find_township_by_alias(minimal_org: Org) -> None:
    assert minimal_org.find_township("大兴").code == "DXZ"


def test_find_township_by_unique_village(minimal_org: Org) -> None:
    assert minimal_org.find_township(None, "石门村").code == "FDX"
    assert minimal_org.find_township("", "庙湾村").code == "DXZ"


def test_find_township_falls_back_to_village_when_township_is_unknown(minimal_org: Org) -> None:
    assert minimal_org.find_township("某某镇", "庙湾村").code == "DXZ"


def test_find_township_prefers_the_township_over_the_village(minimal_org: Org) -> None:
    assert minimal_org.find_township("丰登乡", "庙湾村").code == "FDX"


def test_ambiguous_village_gives_none(minimal_org: Org) -> None:
    assert minimal_org.find_township(None, "新村") is None


def test_unknown_township_and_village_give_none(minimal_org: Org) -> None:
    assert minimal_org.find_township("某某镇", "某某村") is None
    assert minimal_org.find_township(None, None) is None
