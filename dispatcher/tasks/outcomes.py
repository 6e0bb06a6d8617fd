"""Outcomes a handler submits (办理结果), and the requester's feedback (回访), per kind (DESIGN §6)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from dispatcher.enums import TaskKind
from dispatcher.errors import ValidationFailed, field_problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RequestOutcome(_Strict):
    """Complaint or enterprise request: was it resolved, and what the requester is told."""

    resolved: bool
    reply: Annotated[str, Field(min_length=1, max_length=5000)]


class ClueOutcome(_Strict):
    """Clue: 处置方式 (谈话函询, 初步核实, 暂存待查, 予以了结), case filed, people disciplined."""

    disposition: Literal["talk_letter", "preliminary_verification", "hold", "close_out"]
    case_filed: bool
    disciplined_count: Annotated[int, Field(ge=0, le=10_000)]


class Feedback(_Strict):
    rating: Literal["satisfied", "basically_satisfied", "unsatisfied"]
    comment: Annotated[str, Field(max_length=2000)] | None = None


OUTCOMES: dict[str, type[_Strict]] = {
    TaskKind.complaint: RequestOutcome,
    TaskKind.enterprise_request: RequestOutcome,
    TaskKind.clue: ClueOutcome,
}


def validate_outcome(kind: str, data: Any) -> dict[str, Any]:
    model = OUTCOMES.get(kind)
    if model is None:
        raise ValidationFailed(f"tasks of kind {kind!r} take no outcome")
    try:
        return model.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        raise ValidationFailed(
            f"the outcome of a {kind} is invalid", details=field_problems(exc.errors(), prefix="outcome")
        ) from None


def validate_feedback(data: Any) -> Feedback:
    try:
        return TypeAdapter(Feedback).validate_python(data)
    except ValidationError as exc:
        raise ValidationFailed("the feedback is invalid", details=field_problems(exc.errors())) from None
