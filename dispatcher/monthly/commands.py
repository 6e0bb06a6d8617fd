"""What staff send about the monthly rhythm: a meeting's decision, a training's attendance."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from dispatcher.models import MAX_JSON_INT


class DecisionBody(BaseModel):
    """调度会决定: what is to be done, by which unit, by when (default: the policy's working days)."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(max_length=2000)]
    owner_unit: Annotated[str, Field(max_length=64)]
    due: date | None = None
    #: The task the decision is about (rule 5 applies to the owner).
    about_task_id: Annotated[int, Field(ge=1, le=MAX_JSON_INT)] | None = None


class AttendanceBody(BaseModel):
    """签到: who (none: myself) was present or not."""

    model_config = ConfigDict(extra="forbid")

    logins: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=200)
    present: StrictBool = True
