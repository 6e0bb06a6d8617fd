"""Realistic sample events of all three kinds, drawn from the loaded org (pure, seeded)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from dispatcher.org.model import Org

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红春兰海波"

CLUE_CATEGORIES = [
    "违规收送礼品礼金",
    "优亲厚友",
    "侵占集体资金",
    "违规发放补贴",
    "工程项目插手干预",
    "作风不实",
]
CLUE_TEMPLATES = [
    "反映{village}{position}{name}在{matter}中{problem}，群众意见较大。",
    "群众来信反映{name}（{position}）利用职务便利，在{matter}过程中{problem}。",
]
MATTERS = ["低保评定", "危房改造", "土地流转", "村集体工程发包", "惠农补贴发放", "征地拆迁补偿"]
PROBLEMS = ["优亲厚友", "虚报冒领", "收受好处费", "违规指定施工方", "账目不公开"]
POSITIONS = {
    "village": ["村党支部书记", "村委会主任", "村会计"],
    "township": ["副镇长", "镇党委委员"],
    "county": ["县直部门副局长"],
}

COMPLAINT_CATEGORIES = ["惠民资金", "村务公开", "工作作风", "环境卫生", "基础设施", "办事效率"]
COMPLAINT_TEMPLATES = [
    "{village}村民反映{issue}，多次反映未果，希望尽快解决。",
    "通过“监督一点通”平台反映：{village}{issue}。",
    "12345热线转办：群众反映{village}{issue}。",
]
ISSUES = [
    "路灯损坏长期无人维修",
    "惠民补贴迟迟未发放到位",
    "村务公开栏半年未更新",
    "村干部上班时间不在岗",
    "垃圾清运不及时",
    "农田灌溉渠道堵塞",
]

ENTERPRISE_TEMPLATES = [
    "{enterprise}反映{category}事项办理周期过长，请求协调加快办理。",
    "{enterprise}在{category}方面遇到困难，希望相关部门上门指导。",
]
ENTERPRISE_SUFFIX = [
    "科技有限公司",
    "食品有限公司",
    "建材有限责任公司",
    "农业开发有限公司",
    "机械制造有限公司",
]
ENTERPRISE_PREFIX = ["青禾", "宏远", "鑫盛", "绿源", "恒通", "瑞丰", "华泰", "金穗"]


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _phone(rng: random.Random) -> str:
    return rng.choice(["138", "139", "150", "187", "199"]) + "".join(str(rng.randrange(10)) for _ in range(8))


def make_events(
    org: Org, count: int, *, now: datetime, seed: int = 0, run: str = "demo"
) -> list[dict[str, Any]]:
    """``count`` event bodies (complaints ~55%, enterprise requests ~30%, clues ~15%).

    About one in twenty names a township or category the org does not know, so that triage
    has something to show.
    """
    rng = random.Random(seed)
    townships = list(org.townships)
    categories = list(org.enterprise_categories) or ["其他"]
    out = []
    for i in range(count):
        roll = rng.random()
        township = rng.choice(townships)
        village = rng.choice(township.villages) if township.villages else None
        unknown = rng.random() < 0.05
        received = now - timedelta(minutes=rng.randrange(0, 600))
        body: dict[str, Any] = {"external_id": f"{run}-{i:06d}", "received_at": received.isoformat()}
        if roll < 0.55:
            body["kind"] = "complaint"
            body["payload"] = {
                "township": "无名镇" if unknown else township.name,
                "village": village,
                "category": rng.choice(COMPLAINT_CATEGORIES),
                "summary": rng.choice(COMPLAINT_TEMPLATES).format(
                    village=village or township.name, issue=rng.choice(ISSUES)
                ),
                "channel": rng.choice(["online", "station", "hotline"]),
                "complainant": {"name": _name(rng), "phone": _phone(rng)},
                "severity": "major" if rng.random() < 0.05 else "normal",
            }
        elif roll < 0.85:
            enterprise = rng.choice(ENTERPRISE_PREFIX) + rng.choice(ENTERPRISE_SUFFIX)
            category = "无对应类别" if unknown else rng.choice(categories)
            body["kind"] = "enterprise_request"
            body["payload"] = {
                "enterprise": {"name": enterprise, "credit_code": f"91{rng.randrange(10**15, 10**16)}"},
                "category": category,
                "summary": rng.choice(ENTERPRISE_TEMPLATES).format(enterprise=enterprise, category=category),
                "township": township.name,
                "contact": {"name": _name(rng), "phone": _phone(rng)},
            }
        else:
            rank = rng.choices(["village", "township", "county"], weights=[8, 3, 1])[0]
            subject = _name(rng)
            position = rng.choice(POSITIONS[rank])
            anonymous = rng.random() < 0.4
            body["kind"] = "clue"
            body["payload"] = {
                "township": "无名镇" if unknown else township.name,
                "village": village,
                "subject": {
                    "name": subject,
                    "position": position,
                    "rank": rank,
                    "unit": f"{village}村委会"
                    if rank == "village" and village
                    else f"{township.name}人民政府",
                },
                "category": rng.choice(CLUE_CATEGORIES),
                "summary": rng.choice(CLUE_TEMPLATES).format(
                    village=village or "",
                    position=position,
                    name=subject,
                    matter=rng.choice(MATTERS),
                    problem=rng.choice(PROBLEMS),
                ),
                "severity": "serious" if rng.random() < 0.1 else "normal",
                "reporter": {"anonymous": True} if anonymous else {"name": _name(rng), "phone": _phone(rng)},
            }
        out.append(body)
    return out
