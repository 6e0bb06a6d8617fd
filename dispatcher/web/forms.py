"""The forms of the moves: which fields each shows, and the ``MoveBody`` a posted form becomes.

The form only collects; ``MoveBody`` and the core (``apply_move``, ``validate_outcome``) decide
what is valid, so a form and a JSON call are refused alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from dispatcher.enums import TaskKind
from dispatcher.http.params import form_int
from dispatcher.tasks.commands import MoveBody
from dispatcher.tasks.lifecycle import STAFF_MOVES, Move

#: Web path of each move: the staff API's names, plus ``route`` (分办 from triage).
WEB_MOVES: dict[str, Move] = {**STAFF_MOVES, "route": Move.route}
PATHS: dict[Move, str] = {move: path for path, move in WEB_MOVES.items()}


@dataclass(frozen=True, slots=True)
class MoveForm:
    """How the task page offers a move: its button, and the fields it asks for."""

    move: Move
    label: str
    #: ``reason`` (required), ``note`` (required or optional), ``unit``, ``outcome``.
    fields: tuple[str, ...] = ()
    primary: bool = False
    #: What the reason or note field is called on this form.
    text_label: str = "原因"

    @property
    def path(self) -> str:
        return PATHS[self.move]


FORMS: dict[Move, MoveForm] = {
    f.move: f
    for f in (
        MoveForm(Move.accept, "接单", primary=True),
        MoveForm(Move.progress, "进展", ("note",), text_label="进展说明"),
        MoveForm(Move.submit, "办结报送", ("outcome", "note?"), primary=True, text_label="补充说明"),
        MoveForm(Move.verify, "验单通过", ("note?",), primary=True, text_label="验单意见"),
        MoveForm(Move.reject, "验单退回", ("reason",), text_label="退回原因"),
        MoveForm(Move.return_, "退回", ("reason",), text_label="退回原因（分办有误）"),
        MoveForm(Move.suspend, "暂停计时", ("reason",), text_label="暂停原因（如听证）"),
        MoveForm(Move.resume, "恢复"),
        MoveForm(Move.route, "分办", ("unit", "reason"), primary=True, text_label="分办理由"),
        MoveForm(Move.designate, "指定办案", ("unit", "reason"), text_label="指定理由"),
        MoveForm(Move.co_handle, "增派协助", ("unit", "reason"), text_label="协助事项"),
        MoveForm(Move.recuse, "自行回避", ("reason",), text_label="回避事由（将记入办理记录）"),
        MoveForm(
            Move.review, "暂存复查", ("reason",), primary=True, text_label="复查意见（重新提出处置意见）"
        ),
    )
}


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


#: The outcome fields of each clue stage's form (the stage's model parses and checks them).
STAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "disposition": ("disposition",),
    "talk_letter": ("result",),
    "preliminary_verification": ("result",),
    "case": ("disciplined_count", "amount_recovered"),
    "referral": ("referred_to",),
}


#: The outcome fields of the internal tasks' forms.
INTERNAL_FIELDS: dict[str, tuple[str, ...]] = {
    TaskKind.monthly_dispatch: ("minutes",),
    TaskKind.training: ("held_on", "note"),
    TaskKind.follow_up: ("result",),
}


def outcome_of(kind: str, stage: str | None, form: FormData) -> dict[str, Any]:
    """The outcome fields of the kind (or clue stage), as posted; the outcome models check them."""
    if kind in INTERNAL_FIELDS:
        return {name: value for name in INTERNAL_FIELDS[kind] if (value := _text(form, name)) is not None}
    if kind != TaskKind.clue:
        return {name: value for name in ("resolved", "reply") if (value := _text(form, name)) is not None}
    fields = STAGE_FIELDS.get(stage or "disposition", ())
    outcome: dict[str, Any] = {name: value for name in fields if (value := _text(form, name))}
    if stage == "case":
        outcome["sanctions"] = {
            k: v for k in ("party", "government", "organizational") if (v := _text(form, k))
        }
        forms = {k: v for k in ("first", "second", "third", "fourth") if (v := _text(form, f"form_{k}"))}
        outcome["four_forms"] = forms
    return outcome


def move_body(move: Move, kind: str, form: FormData, *, stage: str | None = None) -> MoveBody:
    """The body of a posted move form (the API's ``MoveBody``); pydantic's ``ValidationError`` if bad."""
    unit = _text(form, "unit")
    version = _text(form, "version")
    data: dict[str, Any] = {
        "reason": _text(form, "reason"),
        "note": _text(form, "note"),
        "version": form_int(version),
    }
    if move is Move.submit:
        data["outcome"] = outcome_of(kind, stage, form)
    if move is Move.co_handle:
        data["units"] = [unit] if unit else []
    elif move in (Move.designate, Move.route):
        data["unit"] = unit
    return MoveBody.model_validate(data)
