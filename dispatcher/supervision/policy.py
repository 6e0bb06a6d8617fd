"""The time-limit policy (限期办理): clocks per kind, warning threshold, escalation, extensions,
office hours and calendar overrides — YAML, validated like the org file (DESIGN §1, §5, §6).

Defaults follow DESIGN §1; ``examples/policy.yaml`` spells them out. Where DESIGN is silent:
verification within 2 working days, a feedback window of 7 calendar days, escalation to the
zone leader as soon as a task is overdue and to the commission 2 working days later, office
hours 08:30–17:30 (items received after hours count from the next working day).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from dispatcher.enums import EVENT_KINDS, Stage, TaskKind
from dispatcher.monthly.policy import MeetingPolicy, Ranking, Schedules, TrainingPolicy
from dispatcher.oncall.policy import AlertPolicy
from dispatcher.supervision.calendar import WorkCalendar, YearOverride
from dispatcher.supervision.deadlines import DayKind, Frame, OfficeHours, TimeLimit, due_at
from dispatcher.wallclock import known_timezone
from dispatcher.yamlfile import FileProblem, check_yaml, read_checked


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClockSpec(_Strict):
    days: Annotated[int, Field(ge=1, le=3650)]
    kind: DayKind = DayKind.working

    @property
    def limit(self) -> TimeLimit:
        return TimeLimit(self.days, self.kind)


def _w(days: int) -> ClockSpec:
    return ClockSpec(days=days)


def _c(days: int) -> ClockSpec:
    return ClockSpec(days=days, kind=DayKind.calendar)


class ChannelClocks(_Strict):
    """A channel's own clocks (e.g. the 12345 hotline's), replacing the kind's where given."""

    accept: ClockSpec | None = None
    resolve: ClockSpec | None = None
    verify: ClockSpec | None = None


class KindClocks(_Strict):
    """The clocks of one kind: accept-by, resolve-by, verify-by, the feedback window; a clue's stages."""

    accept: ClockSpec = _w(1)
    #: From receipt to submission; a clue's: its disposition (处置意见, within a month of receipt).
    resolve: ClockSpec
    verify: ClockSpec = _w(2)
    #: None: the kind has no requester to ask (clues).
    feedback: ClockSpec | None = _c(7)
    #: Clues only, each stage's clock from its start: 谈话函询, 初步核实, 审查调查 (立案后), 上报.
    talk_letter: ClockSpec | None = None
    preliminary_verification: ClockSpec | None = None
    case: ClockSpec | None = None
    referral: ClockSpec | None = None
    #: Clues only: a held clue (暂存待查) comes back for review this long after the hold, and again.
    hold_review: ClockSpec | None = None
    #: Clues only: a named reporter is told of acceptance (受理告知) within this of receipt.
    acknowledge: ClockSpec | None = None
    #: Clocks of a channel (``online | station | hotline``) where they differ from the kind's.
    channels: dict[Literal["online", "station", "hotline"], ChannelClocks] = Field(default_factory=dict)

    def for_channel(self, channel: str | None) -> KindClocks:
        """These clocks with the channel's own in place of the kind's, where the policy gives them."""
        own = self.channels.get(channel) if channel else None  # type: ignore[call-overload]
        if own is None:
            return self
        mine = {name: getattr(own, name) for name in ("accept", "resolve", "verify")}
        return self.model_copy(update={name: spec for name, spec in mine.items() if spec is not None})

    def specs(self) -> list[ClockSpec]:
        """Every clock of the kind, its channels' included."""
        specs = [v for v in self.__dict__.values() if isinstance(v, ClockSpec)]
        for channel in self.channels.values():
            specs += [v for v in channel.__dict__.values() if isinstance(v, ClockSpec)]
        return specs

    def for_stage(self, stage: str | None) -> ClockSpec | None:
        """The resolve clock of a clue's stage (the disposition's is ``resolve``)."""
        if stage is None or stage == Stage.disposition:
            return self.resolve
        spec: ClockSpec | None = getattr(self, Stage(stage).value)
        return spec


class EscalationStep(_Strict):
    """One rung of the ladder: who is told, and how long after the previous rung (or the deadline)."""

    to: Literal["zone_leader", "commission"]
    after: ClockSpec


class ExtensionRule(_Strict):
    """延期: how many, how long, approved by whom; a reason is always required."""

    max_count: Annotated[int, Field(ge=0, le=5)] = 1
    max_days: Annotated[int, Field(ge=1, le=365)] = 30
    kind: DayKind = DayKind.calendar
    approver: Literal["zone_leader"] = "zone_leader"


class OfficeHoursSpec(_Strict):
    start: time = time(8, 30)
    end: time = time(17, 30)
    #: Items received after hours or on a rest day count from the next working day's start.
    after_hours: Literal["next_working_day"] = "next_working_day"

    @model_validator(mode="after")
    def _ordered(self) -> OfficeHoursSpec:
        if self.start >= self.end:
            raise ValueError("office hours must start before they end")
        return self


class CalendarYear(_Strict):
    """A year's State Council calendar, for years chinese-calendar does not know yet."""

    holidays: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()


#: A clue's stage clocks (DESIGN §6; 监督执纪工作规则): 谈话函询 30 days, 初步核实 90, 审查调查 90,
#: 上报 5 working days, review of a held clue quarterly, 受理告知 within 15 working days of receipt.
_CLUE_STAGES: dict[str, ClockSpec] = {
    "talk_letter": _c(30),
    "preliminary_verification": _c(90),
    "case": _c(90),
    "referral": _w(5),
    "hold_review": _c(91),
    "acknowledge": _w(15),
}


def _default_clocks() -> dict[TaskKind, KindClocks]:
    return {
        TaskKind.complaint: KindClocks(resolve=_w(5)),
        TaskKind.enterprise_request: KindClocks(resolve=_w(10)),
        TaskKind.clue: KindClocks(resolve=_c(30), feedback=None, **_CLUE_STAGES),
        # internal tasks: the meeting is held within a week, the training within the month, a
        # meeting decision by the deadline the meeting set (this is the default when it set none)
        TaskKind.monthly_dispatch: KindClocks(resolve=_w(5), feedback=None),
        TaskKind.training: KindClocks(accept=_w(3), resolve=_w(15), feedback=None),
        TaskKind.follow_up: KindClocks(resolve=_w(10), feedback=None),
    }


#: Which office of the org's commission (``commission.<field>``) the commission rung of the
#: escalation ladder tells, per kind: a late clue goes to case supervision (案件监督管理室), a late
#: complaint or enterprise request to the office that oversees conduct (党风政风监督室).
CommissionOffice = Literal["clue_verifier", "enterprise_verifier"]


def _default_commission_rung() -> dict[TaskKind, CommissionOffice]:
    return {
        TaskKind.clue: "clue_verifier",
        TaskKind.complaint: "enterprise_verifier",
        TaskKind.enterprise_request: "enterprise_verifier",
    }


class TimePolicy(_Strict):
    timezone: str = "Asia/Shanghai"
    office_hours: OfficeHoursSpec = OfficeHoursSpec()
    #: Share of a clock used when a task turns ``warning``.
    warning_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.75
    #: Per kind; every kind upstream publishes must have its clocks (internal kinds may).
    clocks: dict[TaskKind, KindClocks] = Field(default_factory=_default_clocks)
    escalation: tuple[EscalationStep, ...] = (
        EscalationStep(to="zone_leader", after=ClockSpec(days=1, kind=DayKind.working)),
        EscalationStep(to="commission", after=ClockSpec(days=2, kind=DayKind.working)),
    )
    #: The commission rung's office per kind (kinds not named: ``enterprise_verifier``).
    commission_rung: dict[TaskKind, CommissionOffice] = Field(default_factory=_default_commission_rung)
    extension: ExtensionRule = ExtensionRule()
    #: Seconds between two deadline sweeps (seconds in tests).
    sweep_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    calendar: dict[int, CalendarYear] = Field(default_factory=dict)
    # -- the monthly rhythm (DESIGN §7; ``dispatcher.monthly.policy``) --
    schedules: Schedules = Schedules()
    ranking: Ranking = Ranking()
    meeting: MeetingPolicy = MeetingPolicy()
    training: TrainingPolicy = TrainingPolicy()
    #: When on-call staff are alerted, and where (``dispatcher.oncall.policy``).
    alerts: AlertPolicy = AlertPolicy()
    #: ``DISPATCH_FEEDBACK_WINDOW_DAYS``: a fixed feedback window overriding every kind's feedback
    #: clock (set by the bootstrap, never from the file; see ``with_feedback_window``).
    _feedback_window: timedelta | None = PrivateAttr(default=None)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_timezone(value)

    @model_validator(mode="before")
    @classmethod
    def _clue_stages_default(cls, data: Any) -> Any:
        """A policy that names a clue's clocks but not its stages' keeps the default stage clocks."""
        if isinstance(data, dict) and isinstance(data.get("clocks"), dict):
            clue = data["clocks"].get("clue")
            if isinstance(clue, dict):
                missing = {k: v.model_dump() for k, v in _CLUE_STAGES.items() if k not in clue}
                filled = {**missing, **clue}
                data = {**data, "clocks": {**data["clocks"], "clue": filled}}
        return data

    @model_validator(mode="after")
    def _every_kind_and_calendar_dates_in_their_year(self) -> TimePolicy:
        missing = set(EVENT_KINDS) - set(self.clocks)
        if missing:
            raise ValueError(f"clocks missing for {', '.join(sorted(missing))}")
        for year, spec in self.calendar.items():
            stray = [d for d in (*spec.holidays, *spec.workdays) if d.year != year]
            if stray:
                raise ValueError(f"calendar {year} lists dates of another year: {', '.join(map(str, stray))}")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def clocks_for(self, kind: str, channel: str | None = None) -> KindClocks | None:
        """The clocks of ``kind`` as they apply to ``channel`` (``None``: the kind runs none)."""
        try:
            clocks = self.clocks.get(TaskKind(kind))
        except ValueError:
            return None
        return clocks.for_channel(channel) if clocks is not None else None

    def commission_office(self, kind: str) -> CommissionOffice:
        """The field of the org's ``commission`` naming the office the ladder's commission rung tells."""
        try:
            return self.commission_rung.get(TaskKind(kind), "enterprise_verifier")
        except ValueError:
            return "enterprise_verifier"

    def with_feedback_window(self, window: timedelta | None) -> TimePolicy:
        """A copy whose feedback window is ``window`` for every kind (``None``: the clocks decide)."""
        copy = self.model_copy()
        copy._feedback_window = window
        return copy

    def feedback_due(self, kind: str, now: datetime) -> datetime:
        """When an unanswered feedback request (回访) closes the task as "no response"."""
        if self._feedback_window is not None:
            return now + self._feedback_window
        clocks = self.clocks_for(kind)
        spec = clocks.feedback if clocks is not None else None
        if spec is None:
            return now + timedelta(days=7)
        return due_at(now, spec.limit, self.frame())

    def work_calendar(self) -> WorkCalendar:
        return WorkCalendar(
            {y: YearOverride(frozenset(c.holidays), frozenset(c.workdays)) for y, c in self.calendar.items()}
        )

    def frame(self) -> Frame:
        return Frame(
            calendar=self.work_calendar(),
            tz=self.tz,
            hours=OfficeHours(self.office_hours.start, self.office_hours.end),
        )


DEFAULT_POLICY = TimePolicy()


def check_policy_text(text: str, filename: str = "<policy>") -> tuple[TimePolicy | None, list[FileProblem]]:
    return check_yaml(text, filename, TimePolicy, what="policy")


def load_policy(path: Path | None) -> TimePolicy:
    """The policy in ``path``, or the defaults when no file is configured."""
    if path is None:
        return DEFAULT_POLICY
    return read_checked(path, check_policy_text)[0]


def calendar_gaps(policy: TimePolicy, today: date) -> list[int]:
    """Years a deadline set today could fall in that have no working-day calendar (loud fallback).

    The horizon is the longest clock of the policy (working days counted generously as two
    calendar days each), so next year is reported once deadlines can reach it.
    """
    longest = max(
        (spec.days * (2 if spec.kind is DayKind.working else 1))
        for clocks in policy.clocks.values()
        for spec in clocks.specs()
    )
    horizon = today + timedelta(days=longest)
    return policy.work_calendar().missing_years(range(today.year, horizon.year + 1))


def calendar_warning(policy: TimePolicy, today: date) -> str | None:
    """The sentence every start, ``/readyz`` and the on-call banner say when the calendar has gaps."""
    gaps = calendar_gaps(policy, today)
    if not gaps:
        return None
    years = "、".join(map(str, gaps))
    return (
        f"{years} 年的国务院节假日安排尚未载入：这些年份暂按周一至周五计算工作日。"
        f"请升级 chinese-calendar 或在时限政策文件 calendar: 中补录。"
        f" (no State Council calendar for {', '.join(map(str, gaps))}: counting Monday-Friday)"
    )


def announce_calendar(policy: TimePolicy, now: datetime) -> None:
    """Every process says it at start: a calendar gap is never a silent guess."""
    warning = calendar_warning(policy, now.astimezone(policy.tz).date())
    if warning:
        logging.getLogger("dispatcher.supervision.calendar").warning(warning)
