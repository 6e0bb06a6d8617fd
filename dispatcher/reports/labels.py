"""The report's vocabulary in Chinese: its files (HTML, XLSX, CSV) are rendered in the core, because
the JSON API and the staff pages both serve them; every other Chinese label is in ``web/labels``."""

from __future__ import annotations

KINDS = {
    "clue": "问题线索",
    "complaint": "群众投诉",
    "enterprise_request": "企业诉求",
    "all": "合计",
}

WINDOWS = {"month": "本月", "ytd": "本年累计", "last_year": "去年同月"}

#: Request figures, in the order tables show them; ``%`` marks rates, ``d`` days.
REQUEST_FIGURES: dict[str, tuple[str, str]] = {
    "received": ("受理", "n"),
    "closed": ("办结", "n"),
    "completion_rate": ("办结率", "%"),
    "on_time_rate": ("按时办结率", "%"),
    "avg_handling_days": ("平均办理天数", "d"),
    "response_rate": ("响应率", "%"),
    "resolution_rate": ("解决率", "%"),
    "satisfaction_rate": ("满意率", "%"),
    "answers": ("回访答复", "n"),
    "returned": ("退回", "n"),
    "reopened": ("重办", "n"),
    "extended": ("延期", "n"),
    "late": ("超期", "n"),
    "overdue_open": ("超期未结", "n"),
}

CLUE_FIGURES: dict[str, tuple[str, str]] = {
    "received": ("受理线索", "n"),
    "dispositions": ("提出处置意见", "n"),
    "disposition_talk_letter": ("　拟谈话函询", "n"),
    "disposition_preliminary_verification": ("　拟初步核实", "n"),
    "disposition_hold": ("　暂存待查", "n"),
    "disposition_close_out": ("　予以了结", "n"),
    "disposition_on_time_rate": ("处置意见按时率", "%"),
    "talk_letters": ("开展谈话函询", "n"),
    "verifications": ("开展初步核实", "n"),
    "cases_filed": ("立案", "n"),
    "concluded": ("办结", "n"),
    "people_disciplined": ("处理处分人数", "n"),
    "sanction_party": ("党纪处分", "n"),
    "sanction_government": ("政务处分", "n"),
    "sanction_organizational": ("组织处理", "n"),
    "form_first": ("第一种形态", "n"),
    "form_second": ("第二种形态", "n"),
    "form_third": ("第三种形态", "n"),
    "form_fourth": ("第四种形态", "n"),
    "amount_recovered": ("追缴金额（元）", "money"),
}

TRAINING_FIGURES: dict[str, tuple[str, str]] = {
    "issued": ("下发培训任务", "n"),
    "completed": ("完成", "n"),
    "completion_rate": ("完成率", "%"),
    "expected": ("应到人数", "n"),
    "present": ("实到人数", "n"),
    "attendance_rate": ("出勤率", "%"),
}

RANKING_FIGURES: dict[str, tuple[str, str]] = {
    "rank": ("名次", "n"),
    "score": ("得分", "score"),
    "received": ("受理", "n"),
    "answers": ("回访答复", "n"),
    "response_rate": ("响应率", "%"),
    "resolution_rate": ("解决率", "%"),
    "satisfaction_rate": ("满意率", "%"),
    "overdue_rate": ("超期率", "%"),
    "reopen_rate": ("重办率", "%"),
}

RANKED_KINDS = {"township_commission": "乡镇（街道）纪委", "functional_department": "职能部门"}
NOT_RANKED = "不参与排名"
NONE = "（无）"
