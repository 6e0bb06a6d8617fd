"""A clue's stages (DESIGN §6): every transition an approval can make, and every outcome's shape."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.enums import Stage
from dispatcher.errors import ValidationFailed
from dispatcher.tasks.stages import Next, after_approval, validate_stage_outcome

#: (stage, submitted outcome, where its approval leads) — the whole transition table.
TRANSITIONS: list[tuple[Stage, dict[str, Any], Stage | Next]] = [
    (Stage.disposition, {"disposition": "talk_letter"}, Stage.talk_letter),
    (Stage.disposition, {"disposition": "preliminary_verification"}, Stage.preliminary_verification),
    (Stage.disposition, {"disposition": "hold"}, Next.held),
    (Stage.disposition, {"disposition": "close_out"}, Next.concluded),
    (Stage.talk_letter, {"result": "clarified"}, Next.concluded),
    (Stage.talk_letter, {"result": "case_filed"}, Stage.case),
    (Stage.talk_letter, {"result": "disposition"}, Stage.disposition),
    (Stage.preliminary_verification, {"result": "clarified"}, Next.concluded),
    (Stage.preliminary_verification, {"result": "case_filed"}, Stage.case),
    (Stage.preliminary_verification, {"result": "disposition"}, Stage.disposition),
    (Stage.case, {"disciplined_count": 2, "sanctions": {"party": 1}}, Next.concluded),
    (Stage.referral, {"referred_to": "市纪委监委"}, Next.concluded),
]


@pytest.mark.parametrize(("stage", "outcome", "leads_to"), TRANSITIONS)
def test_an_approved_stage_leads_where_the_rules_say(
    stage: Stage, outcome: dict[str, Any], leads_to: Stage | Next
) -> None:
    stored = validate_stage_outcome(stage, outcome)
    assert after_approval(stage, stored) == leads_to


def test_every_stage_and_every_choice_is_in_the_table() -> None:
    assert {stage for stage, _, _ in TRANSITIONS} == set(Stage)
    assert {leads for _, _, leads in TRANSITIONS} == {*Stage} - {Stage.referral} | {*Next}


def test_a_case_outcome_is_stored_as_figures_the_report_can_sum() -> None:
    stored = validate_stage_outcome(
        Stage.case,
        {
            "disciplined_count": 3,
            "sanctions": {"party": 1, "government": 2},
            "four_forms": {"first": 1, "third": 2},
            "amount_recovered": 1500,
        },
    )
    assert stored == {
        "disciplined_count": 3,
        "sanctions": {"party": 1, "government": 2, "organizational": 0},
        "four_forms": {"first": 1, "third": 2},
        "amount_recovered": 1500.0,
    }


@pytest.mark.parametrize(
    ("stage", "outcome", "paths"),
    [
        (Stage.disposition, {}, {"outcome.disposition"}),
        (Stage.disposition, {"disposition": "dismiss"}, {"outcome.disposition"}),
        (Stage.talk_letter, {"disposition": "close_out"}, {"outcome.result", "outcome.disposition"}),
        (Stage.case, {"disciplined_count": -1}, {"outcome.disciplined_count"}),
        (Stage.case, {"disciplined_count": 1, "four_forms": {"fifth": 1}}, {"outcome.four_forms.fifth"}),
        (Stage.case, {"disciplined_count": 1, "sanctions": {"fine": 1}}, {"outcome.sanctions.fine"}),
        (Stage.referral, {"referred_to": "  "}, {"outcome.referred_to"}),
        (Stage.referral, "上报", {"outcome"}),
    ],
)
def test_a_bad_outcome_names_every_bad_field(stage: Stage, outcome: Any, paths: set[str]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_stage_outcome(stage, outcome)
    assert {d["path"] for d in caught.value.details} == paths


def test_the_outcome_before_stages_is_still_accepted_on_a_disposition() -> None:
    old = {"disposition": "preliminary_verification", "case_filed": True, "disciplined_count": 1}
    stored = validate_stage_outcome(Stage.disposition, old)
    assert after_approval(Stage.disposition, stored) == Stage.preliminary_verification
