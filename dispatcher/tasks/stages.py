"""A clue's stages (DESIGN §6): what each stage's outcome is, and where its approval leads.

《中国共产党纪律检查机关监督执纪工作规则》 has problem clues disposed of in one of four ways
(谈话函询, 初步核实, 暂存待查, 予以了结), with the disposition proposed within a month of receipt.
Each stage is a run of the lifecycle: the handler submits its outcome, the verifier approves it
(审批), and the approval opens the next stage, holds the clue for review, or concludes it.

    disposition ──talk_letter──────────────▶ talk_letter ──clarified──▶ concluded
                ──preliminary_verification─▶ preliminary_verification ──case_filed──▶ case ──▶ concluded
                ──hold──▶ held (reviewed quarterly; a review reopens the disposition)
                ──close_out──▶ concluded
    talk_letter / preliminary_verification ──disposition──▶ disposition (again)
    referral (上报: beyond the county's jurisdiction) ──submitted──▶ concluded (no approval)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dispatcher.enums import Stage
from dispatcher.errors import ValidationFailed, field_problems


class Next(StrEnum):
    """Where an approved stage leads besides another stage."""

    held = "held"  #: 暂存待查
    concluded = "concluded"  #: 办结 (了结澄清, 予以了结, 审结, 上报)


class _Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: Annotated[str, Field(max_length=5000)] | None = None


class DispositionOutcome(_Outcome):
    """处置意见: one of the four dispositions."""

    disposition: Literal["talk_letter", "preliminary_verification", "hold", "close_out"]
    #: Deprecated (the clue outcome before stages): kept when sent, never read.
    case_filed: bool | None = None
    disciplined_count: Annotated[int, Field(ge=0, le=10_000)] | None = None


class InquiryOutcome(_Outcome):
    """谈话函询 or 初步核实: the matter was cleared up, a case is filed, or it goes back to disposition."""

    result: Literal["clarified", "case_filed", "disposition"]


class Sanctions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    party: Annotated[int, Field(ge=0, le=10_000)] = 0  #: 党纪处分
    government: Annotated[int, Field(ge=0, le=10_000)] = 0  #: 政务处分
    organizational: Annotated[int, Field(ge=0, le=10_000)] = 0  #: 组织处理


class CaseOutcome(_Outcome):
    """审查调查 concluded: people disciplined, sanctions by type, the four forms applied, money recovered."""

    disciplined_count: Annotated[int, Field(ge=0, le=10_000)]
    sanctions: Sanctions = Sanctions()
    #: 四种形态 applied (first: 批评教育 … fourth: 严重违纪涉嫌违法立案审查), with how many people each.
    four_forms: dict[
        Literal["first", "second", "third", "fourth"], Annotated[int, Field(ge=0, le=10_000)]
    ] = Field(default_factory=dict)
    #: 追缴: yuan recovered.
    amount_recovered: Annotated[float, Field(ge=0, le=1e12)] = 0.0


class ReferralOutcome(_Outcome):
    """上报: to whom the clue was transferred (the higher commission), for the record."""

    referred_to: Annotated[str, Field(min_length=1, max_length=200)]


OUTCOMES: dict[Stage, type[_Outcome]] = {
    Stage.disposition: DispositionOutcome,
    Stage.talk_letter: InquiryOutcome,
    Stage.preliminary_verification: InquiryOutcome,
    Stage.case: CaseOutcome,
    Stage.referral: ReferralOutcome,
}


def validate_stage_outcome(stage: str, data: Any) -> dict[str, Any]:
    """The submitted outcome of ``stage`` as stored; ``ValidationFailed`` names every bad field."""
    model = OUTCOMES[Stage(stage)]
    try:
        return model.model_validate(data).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        raise ValidationFailed(
            f"the outcome of a clue's {stage} stage is invalid",
            details=field_problems(exc.errors(), prefix="outcome"),
        ) from None


def after_approval(stage: str, outcome: dict[str, Any]) -> Stage | Next:
    """Where the approval of ``stage`` with ``outcome`` leads."""
    current = Stage(stage)
    if current is Stage.disposition:
        disposition = outcome["disposition"]
        if disposition == "hold":
            return Next.held
        if disposition == "close_out":
            return Next.concluded
        return Stage(disposition)
    if current in (Stage.talk_letter, Stage.preliminary_verification):
        result = outcome["result"]
        if result == "case_filed":
            return Stage.case
        if result == "disposition":
            return Stage.disposition
        return Next.concluded
    return Next.concluded  # a case concluded (审结), a referral recorded
