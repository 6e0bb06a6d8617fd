"""What staff send to act on a task: the bodies of the moves, extensions and identity reveals.

The API takes them as JSON bodies; the pages build them from posted forms. Both are refused
alike by the same limits here and the same checks in the core.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from dispatcher.models import MAX_JSON_INT
from dispatcher.tasks.extensions import ExtensionRequest
from dispatcher.tasks.lifecycle import Move
from dispatcher.tasks.moves import MoveRequest

#: A task version as a client sends it back.
Version = Annotated[int, Field(ge=0, le=MAX_JSON_INT)]


class MoveBody(BaseModel):
    """Every field a move may need; each move reads its own (DESIGN §9)."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=2000)] | None = None
    note: Annotated[str, Field(max_length=5000)] | None = None
    outcome: dict[str, Any] | None = None
    unit: Annotated[str, Field(max_length=64)] | None = None
    verifier_unit: Annotated[str, Field(max_length=64)] | None = None
    units: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    logins: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    #: The task version the actor saw; a stale one answers 409.
    version: Version | None = None

    def request(self, move: Move) -> MoveRequest:
        return MoveRequest(
            move=move, reason=self.reason, note=self.note, outcome=self.outcome, unit=self.unit,
            verifier_unit=self.verifier_unit, units=tuple(self.units), logins=tuple(self.logins),
            version=self.version,
        )  # fmt: skip


class ExtendBody(BaseModel):
    """延期申请: how many days (the policy's kind: calendar days by default) and why."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=2000)] | None = None
    days: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] | None = None
    version: Version | None = None

    def request(self) -> ExtensionRequest:
        return ExtensionRequest(days=self.days, reason=self.reason, version=self.version)


class DecideBody(BaseModel):
    """The zone leader's decision on an extension: an optional note."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(max_length=2000)] | None = None
    version: Version | None = None


class RevealBody(BaseModel):
    """查看身份信息: why (logged with the reveal)."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=2, max_length=500)]
