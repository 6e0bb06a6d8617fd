"""Chinese words the pages show for the English names the core, the database and the API use.

The one label table: every code a person reads (kinds, states, moves, roles, clocks, supervision
steps, deadline states…) is worded here and nowhere else; the API and the CLI speak the codes.
"""

from __future__ import annotations

from typing import Any

from dispatcher.errors import Conflict, DispatchError, Forbidden, NotFound, RateLimited, ValidationFailed
from dispatcher.wallclock import span_parts

KINDS: dict[str, str] = {
    "clue": "问题线索",
    "complaint": "群众投诉",
    "enterprise_request": "企业诉求",
    "monthly_dispatch": "月度调度",
    "training": "月度培训",
    "follow_up": "调度会决定事项",
}

#: Task states (``TaskStatus``) as the staff call them.
STATES: dict[str, str] = {
    "triage": "待分办",
    "dispatched": "已分办",
    "accepted": "已接单",
    "submitted": "已报送待验",
    "awaiting_feedback": "待回访",
    "closed": "已办结",
    "returned": "已退回",
    "rejected": "验单退回",
    "reopened": "不满意重办",
    "suspended": "已暂停",
    "held": "暂存待查",
}

#: A clue's stages (``enums.Stage``).
STAGES: dict[str, str] = {
    "disposition": "处置意见",
    "talk_letter": "谈话函询",
    "preliminary_verification": "初步核实",
    "case": "审查调查",
    "referral": "上报移送",
}

#: Where an approved clue stage led (``ClueStage.result``): a stage, or these.
STAGE_RESULTS: dict[str, str] = {**STAGES, "held": "暂存待查", "concluded": "办结"}

#: A talk letter's or a preliminary verification's finding.
FINDINGS: dict[str, str] = {
    "clarified": "了结澄清",
    "case_filed": "立案审查",
    "disposition": "重新提出处置意见",
}

#: 四种形态.
FOUR_FORMS: dict[str, str] = {"first": "第一种形态", "second": "第二种形态", "third": "第三种形态",
                              "fourth": "第四种形态"}  # fmt: skip

#: Sanctions counted on a concluded case.
SANCTIONS: dict[str, str] = {"party": "党纪处分", "government": "政务处分", "organizational": "组织处理"}

#: History entries (``TaskHistory.move``): the routing worker's ``dispatch`` and every ``Move``.
MOVES: dict[str, str] = {
    "dispatch": "分办",
    "route": "分办",
    "accept": "接单",
    "return": "退回",
    "progress": "进展",
    "submit": "办结报送",
    "verify": "验单通过",
    "reject": "验单退回",
    "feedback_close": "回访办结",
    "feedback_reopen": "回访不满意",
    "feedback_expire": "回访期满",
    "suspend": "暂停计时",
    "resume": "恢复",
    "designate": "指定办案",
    "co_handle": "增派协助",
    "extend": "申请延期",
    "extend_approve": "批准延期",
    "extend_refuse": "不批准延期",
    "recuse": "自行回避",
    "review": "暂存复查",
    "decision": "调度会决定",
}

#: Extension requests (``Extension.status``).
EXTENSION_STATES: dict[str, str] = {"pending": "待审批", "approved": "已批准", "refused": "未批准"}

#: Routing rules (``tasks.rule``, DESIGN §5).
RULES: dict[str, str] = {
    "complaint_township": "属地办理",
    "complaint_escalated": "提级办理",
    "enterprise_department": "部门接单",
    "clue_escalated": "提级办案",
    "cross_handling": "交叉办案",
    "cross_handling_fallback_room": "交叉办案（由室办理）",
    "stationed_group": "派驻监督",
    "refer_upward": "上报移送",
    "unknown_township": "地点不明",
    "unmapped_category": "类别未对应",
    "no_eligible_unit": "回避后无可承办单位",
    "no_org": "未加载组织目录",
    "routing_error": "自动分办出错",
    "unknown_kind": "未知事项类型",
    "monthly_dispatch": "一月一调度",
    "monthly_training": "一月一培训",
    "meeting_decision": "调度会决定",
}

#: Supervision steps (``SupervisionOrder.step`` is ``<clock>.<step>[.<level>]``) and who was told.
CLOCKS: dict[str, str] = {"accept": "接单", "resolve": "办结", "verify": "验单", "acknowledge": "受理告知",
                          "review": "暂存复查"}  # fmt: skip
STEPS: dict[str, str] = {"warning": "临期预警", "overdue": "超期", "escalated": "升级督办"}
NOTIFIED: dict[str, str] = {
    "handler_unit": "承办单位",
    "zone_leader": "协作区组长",
    "commission": "县纪委监委",
}
DEADLINE_STATES: dict[str, str] = {
    "on_time": "正常",
    "warning": "临期",
    "overdue": "超期",
    "escalated": "升级督办",
}


def _span(seconds: float) -> str:
    days, hours, mins = span_parts(seconds)
    if days:
        return f"{days}天{hours}小时"
    return f"{hours}小时{mins}分" if hours else f"{mins}分"


def deadline_text(deadline: dict[str, Any], status: str) -> str:
    """A task's ``deadline`` (``supervision.status.time_left``) in words: 办结剩余2天3小时, 接单超期5分."""
    clock, left = deadline.get("clock"), deadline.get("seconds_left")
    if clock is None or left is None:
        return STATES.get(status, "—")
    what = CLOCKS.get(clock, clock)
    return f"{what}超期{_span(left)}" if left < 0 else f"{what}剩余{_span(left)}"


def step_label(step: str) -> str:
    """``resolve.escalated.2`` → 办结升级督办（第2级）; ``accept#2.warning`` → 接单（第2次分办）临期预警."""
    clock, _, rest = step.partition(".")
    name, _, level = rest.partition(".")
    clock, _, round_ = clock.partition("#")
    text = CLOCKS.get(clock, clock) + (f"（第{round_}次）" if round_ else "") + STEPS.get(name, name)
    return f"{text}（第{level}级）" if level else text


DISPOSITIONS: dict[str, str] = {
    "talk_letter": "谈话函询",
    "preliminary_verification": "初步核实",
    "hold": "暂存待查",
    "close_out": "予以了结",
}

RATINGS: dict[str, str] = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
}

CLOSE_REASONS: dict[str, str] = {
    "verified": "验单通过",
    "referred": "已上报移送",
    "recorded": "已召开（已登记）",
    "no_response": "回访期满无答复",
    **RATINGS,
}

ROLES: dict[str, str] = {
    "handler": "承办人",
    "verifier": "审核人",
    "zone_leader": "协作区组长",
    "oncall": "值班",
    "admin": "管理员",
}

NOTIFICATION_KINDS: dict[str, str] = {
    "dispatched": "分办",
    "returned": "退回",
    "rejected": "验单退回",
    "reopened": "重办",
    "designated": "指定办案",
    "assist": "协助",
    "recused": "回避",
    "review": "暂存复查",
    "extension_requested": "延期申请",
    "extension_approved": "延期批准",
    "extension_refused": "延期未批准",
    "report": "月度报告",
    "verified": "验单通过",
    "closed": "已办结",
    "monthly_dispatch": "月度调度会",
    "training": "月度培训",
    "follow_up": "调度会决定事项",
    **{f"supervision.{step}": word for step, word in STEPS.items()},
}

#: Payload fields of the three kinds (DESIGN §4), in the order the task page lists them.
PAYLOAD_FIELDS: dict[str, str] = {
    "township": "乡镇（街道）",
    "village": "村（社区）",
    "category": "类别",
    "summary": "内容摘要",
    "severity": "严重程度",
    "channel": "渠道",
    "about_unit": "被投诉单位",
    "subject": "被反映人",
    "enterprise": "企业",
    "park": "园区",
}

#: Values of payload fields (DESIGN §4), by field.
VALUES: dict[str, dict[str, str]] = {
    "severity": {"normal": "一般", "serious": "严重", "major": "重大"},
    "channel": {"online": "网上", "station": "村级站点", "hotline": "热线"},
    "rank": {"village": "村级", "township": "乡镇级", "county": "县级"},
}
#: Fields inside the payload's people and organisations.
SUBFIELDS: dict[str, str] = {
    "name": "姓名",
    "position": "职务",
    "unit": "单位",
    "rank": "级别",
    "credit_code": "统一社会信用代码",
    "phone": "电话",
    "anonymous": "匿名",
}

#: Whose identity an event carries (encrypted at rest, masked by default).
IDENTITY_ROLES: dict[str, str] = {
    "reporter": "举报人",
    "complainant": "投诉人",
    "contact": "联系人",
    "extra": "其他信息",  # fields the contract does not declare, kept private like the rest
}

#: Fields of a move's form, for "「原因」必填".
FIELDS: dict[str, str] = {
    "reason": "原因",
    "note": "说明",
    "unit": "单位",
    "units": "协助单位",
    "outcome": "办理结果",
    "outcome.resolved": "是否解决",
    "outcome.reply": "答复内容",
    "outcome.disposition": "处置方式",
    "outcome.case_filed": "是否立案",
    "outcome.disciplined_count": "处分人数",
    "outcome.result": "函询或核实结论",
    "outcome.referred_to": "移送至",
    "outcome.amount_recovered": "追缴金额",
    "outcome.sanctions": "处分情况",
    "outcome.four_forms": "四种形态",
    "outcome.minutes": "会议纪要",
    "outcome.held_on": "培训日期",
    "outcome.note": "说明",
    "text": "决定事项",
    "owner_unit": "责任单位",
    "due": "完成时限",
    "logins": "人员",
    "version": "版本",
    "days": "延期天数",
}


def _file_problem(message: str) -> str:
    if message == "empty":
        return "文件是空的"
    if message == "too large":
        return "文件超过大小上限"
    if message.startswith("type"):
        return "文件类型不支持：只接受照片（JPG、PNG）、PDF、Word（.docx）和 Excel（.xlsx），按文件内容判断"
    return "请选择要上传的文件"


def refusal(exc: DispatchError, what: str) -> str:
    """A refusal of the core (409, 403, 404, 422…) as one sentence in Chinese for a flash message."""
    details: Any = exc.details
    if isinstance(exc, ValidationFailed):
        for d in details or []:
            if isinstance(d, dict) and d.get("path") == "file":  # an attachment: say what is wrong with it
                return f"{what}未完成：{_file_problem(str(d.get('message', '')))}。"
        paths = [d.get("path", "") for d in details or [] if isinstance(d, dict)]
        names = "、".join(dict.fromkeys(FIELDS.get(p, p) for p in paths if p)) or "填写内容"
        return f"{what}未完成：请检查{names}。"
    if isinstance(exc, Conflict):
        if isinstance(details, dict) and "attachments" in details:
            return f"{what}未完成：该任务的附件已达上限（{details['attachments']} 个）。"
        if isinstance(details, dict) and details.get("current") == "closed" and "allowed" not in details:
            return f"{what}未完成：任务已办结，不能再添加。"
        if isinstance(details, dict) and "allowed" in details:
            allowed = "、".join(MOVES.get(m, m) for m in details["allowed"]) or "无"
            state = STATES.get(details.get("current", ""), details.get("current", ""))
            return f"{what}未完成：任务当前状态为「{state}」，现在只能：{allowed}。"
        if isinstance(details, dict) and "extension" in details:
            why = {
                "pending": "已有一份延期申请待审批",
                "max_count": f"延期次数已用完（最多 {details.get('max_count')} 次）",
                "clock_not_running": "任务当前不在办理计时中（接单后、报送前方可延期）",
                "approved": "该申请已批准",
                "refused": "该申请已不予批准",
            }.get(str(details["extension"]), "延期状态已变化")
            return f"{what}未完成：{why}。"
        if isinstance(details, dict) and "workdays_since_dispatch" in details:
            used = details["workdays_since_dispatch"]
            return f"{what}未完成：分办已过 {used} 个工作日，超过 5 个工作日不能退回。"
        return f"{what}未完成：任务已被他人更新，请查看最新状态后再操作。"
    if isinstance(exc, Forbidden):
        if exc.message.startswith("回避"):  # the core says which conflict, in words
            return f"{what}未完成：{exc.message}。"
        return f"{what}未完成：您无权执行此操作（不属本单位或本人职责）。"
    if isinstance(exc, NotFound):
        return f"{what}未完成：任务不存在或不属于本单位。"
    if isinstance(exc, RateLimited):
        return f"{what}未完成：操作过于频繁，请稍后再试。"
    return f"{what}未完成，请稍后再试。"


#: The dispatch meeting's agenda (``monthly.meeting``), in the order it is read.
AGENDA: dict[str, str] = {
    "decisions": "上月决定事项落实情况",
    "load": "各单位在办与超期",
    "overdue": "超期及升级督办事项",
    "stale": "长期无进展事项",
    "held_review": "到期复查的暂存待查线索",
    "difficult": "疑难事项（建议提级、交叉、联合办案或增派力量）",
    "unsatisfied": "群众不满意及重办事项",
}

#: What the agenda proposes for a difficult item.
PROPOSALS: dict[str, str] = {
    "escalate": "建议提级办案或增派力量",
    "joint": "建议联合办案",
    "designate": "多次退回，建议指定办案",
    "reinforce": "多次重办，建议增派协助",
}

#: The monthly jobs (``monthly.periods.Job``) and the states of their runs.
JOBS: dict[str, str] = {
    "monthly-report": "月度报告",
    "monthly-dispatch": "月度调度会",
    "monthly-training": "月度培训",
}
RUN_STATES: dict[str, str] = {
    "pending": "待执行",
    "running": "执行中",
    "succeeded": "已完成",
    "failed": "失败",
}

#: The inbox's orders (``GET /tasks?sort=``).
SORTS: dict[str, str] = {"urgent": "最紧急优先", "newest": "最新受理", "oldest": "最早受理"}
