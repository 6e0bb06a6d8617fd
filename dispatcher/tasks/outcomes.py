"""Outcomes a handler submits (办理结果) for a request, and the requester's feedback (回访) (DESIGN §6).

A clue's outcomes are its stages' (``tasks.stages``).
"""

from __future__ import annotations

from datetime import date
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


class Feedback(_Strict):
    """回访: the requester's satisfaction and whether the matter was resolved, in their own words."""

    rating: Literal["satisfied", "basically_satisfied", "unsatisfied"]
    #: 解决: the requester's own answer (DESIGN §9); a platform that does not ask may leave it out.
    resolved: bool | None = None
    comment: Annotated[str, Field(max_length=2000)] | None = None


class MeetingOutcome(_Strict):
    """月度调度会 held: its minutes (会议纪要); decisions are recorded apart, as follow-up tasks."""

    minutes: Annotated[str, Field(min_length=1, max_length=20_000)]


class TrainingOutcome(_Strict):
    """月度培训 held: when, and a note (attendance is marked apart, person by person)."""

    held_on: date
    note: Annotated[str, Field(max_length=5000)] | None = None


class FollowUpOutcome(_Strict):
    """调度会决定事项 done: what was done."""

    result: Annotated[str, Field(min_length=1, max_length=5000)]


OUTCOMES: dict[str, type[_Strict]] = {
    TaskKind.complaint: RequestOutcome,
    TaskKind.enterprise_request: RequestOutcome,
    TaskKind.monthly_dispatch: MeetingOutcome,
    TaskKind.training: TrainingOutcome,
    TaskKind.follow_up: FollowUpOutcome,
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
