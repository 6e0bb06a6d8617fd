"""The monthly part of the policy file (DESIGN §7): when each monthly job fires, the dispatch
meeting's thresholds, the training curriculum and the ranking's weights.

Where DESIGN is silent: the report fires at 01:00 on the 1st, the meeting and the training at
08:30 on the first working day (State Council calendar); three missed periods at most are caught
up on start; an item with no move for 10 days is stale; a meeting decision is due in 10 working
days unless the meeting says otherwise.
"""

from __future__ import annotations

from typing import Annotated

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dispatcher.org.model import UnitKind


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JobSchedule(_Strict):
    #: Five crontab fields (minute hour day month weekday), in the policy's timezone.
    cron: str
    #: Fire only on the month's first working day (the cron's days should cover it, e.g. ``1-10``).
    first_working_day: bool = False

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"not a crontab expression ({exc})") from None
        return value


class Schedules(_Strict):
    monthly_report: JobSchedule = JobSchedule(cron="0 1 1 * *")
    monthly_dispatch: JobSchedule = JobSchedule(cron="30 8 1-10 * *", first_working_day=True)
    monthly_training: JobSchedule = JobSchedule(cron="30 8 1-10 * *", first_working_day=True)
    #: On start, periods missed while no scheduler ran are caught up, at most this many per job.
    catch_up_months: Annotated[int, Field(ge=0, le=24)] = 3


class Weights(_Strict):
    response: Annotated[float, Field(ge=0, le=1)] = 0.30  #: 响应率
    resolution: Annotated[float, Field(ge=0, le=1)] = 0.35  #: 解决率
    satisfaction: Annotated[float, Field(ge=0, le=1)] = 0.35  #: 满意率


class Penalties(_Strict):
    overdue: Annotated[float, Field(ge=0, le=100)] = 10.0
    reopen: Annotated[float, Field(ge=0, le=100)] = 10.0


class Ranking(_Strict):
    """``score = 100 × (w·rates) − p_overdue·overdue_rate − p_reopen·reopen_rate`` (DESIGN §7)."""

    weights: Weights = Weights()
    penalties: Penalties = Penalties()
    #: A unit with fewer feedback answers in the month is listed as "not ranked".
    min_answers: Annotated[int, Field(ge=0, le=10_000)] = 5

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> Ranking:
        w = self.weights
        total = w.response + w.resolution + w.satisfaction
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"ranking weights must add up to 1 (they add up to {total:g})")
        return self


class MeetingPolicy(_Strict):
    #: An open task with no move for this many days is "stale" on the agenda.
    stale_days: Annotated[int, Field(ge=1, le=365)] = 10
    #: A decision's deadline when the meeting gives none (working days).
    decision_workdays: Annotated[int, Field(ge=1, le=250)] = 10
    #: Re-balancing is suggested when the busiest unit has this many more open tasks than the least busy.
    rebalance_gap: Annotated[int, Field(ge=1, le=10_000)] = 5


#: 一月一培训: a year of topics, in the order they are given (the seeds' practice: 业务 and 纪法).
DEFAULT_CURRICULUM = (
    "问题线索处置规范（四种处置方式）",
    "谈话函询与初步核实实务",
    "群众投诉办理与答复",
    "优化营商环境与企业诉求办理",
    "审查调查安全与回避制度",
    "执纪执法文书规范",
    "四种形态的准确运用",
    "监督检查与调研报告写作",
    "信访举报受理与受理告知",
    "交叉办案与提级办案协作",
    "廉政档案与政治生态研判",
    "年度工作复盘",
)


class TrainingPolicy(_Strict):
    curriculum: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = DEFAULT_CURRICULUM
    #: Units of these kinds get a training task each month.
    unit_kinds: tuple[UnitKind, ...] = (
        UnitKind.township_commission,
        UnitKind.room,
        UnitKind.stationed_group,
        UnitKind.functional_department,
    )

    @field_validator("curriculum")
    @classmethod
    def _some_topics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("the curriculum needs at least one topic")
        if len(set(value)) != len(value):
            raise ValueError("the curriculum lists a topic twice")
        return value
