"""Builders of valid event bodies and registered sources for tests."""

from __future__ import annotations

import itertools
from typing import Any

import sqlalchemy as sa

from dispatcher.accounts.registry import add_source
from dispatcher.db import unit_of_work
from dispatcher.wallclock import utcnow

_ids = itertools.count(1)


def source_token(
    engine: sa.Engine,
    *,
    name: str | None = None,
    kinds: tuple[str, ...] = ("clue", "complaint", "enterprise_request"),
    rate: float = 10_000.0,
    burst: int = 10_000,
) -> str:
    with unit_of_work(engine) as s:
        _, token = add_source(
            s, name=name or f"src-{next(_ids)}", kinds=list(kinds), rate=rate, burst=burst, now=utcnow()
        )
    return token


def complaint(external_id: str | None = None, **payload: Any) -> dict[str, Any]:
    body = {
        "township": "大兴镇",
        "village": payload.pop("village", None),
        "category": "惠民资金",
        "summary": "村民反映惠民补贴迟迟未发放到位。",
        "channel": "online",
        "complainant": {"name": "李秀英", "phone": "13812345678"},
    }
    body.update(payload)
    return {
        "kind": "complaint",
        "external_id": external_id or f"c-{next(_ids)}",
        "payload": {k: v for k, v in body.items() if v is not None},
    }


def clue(external_id: str | None = None, **payload: Any) -> dict[str, Any]:
    body = {
        "township": "大兴镇",
        "subject": {"name": "赵德明", "position": "村党支部书记", "unit": "大兴村委会", "rank": "village"},
        "category": "优亲厚友",
        "summary": "反映村党支部书记在低保评定中优亲厚友。",
        "severity": "normal",
        "reporter": {"name": "王建国", "phone": "13987654321", "anonymous": False},
    }
    body.update(payload)
    return {"kind": "clue", "external_id": external_id or f"x-{next(_ids)}", "payload": body}


def enterprise_request(external_id: str | None = None, **payload: Any) -> dict[str, Any]:
    body = {
        "enterprise": {"name": "青禾食品有限公司", "credit_code": "91330000123456789X"},
        "category": "劳动用工",
        "summary": "企业反映用工备案办理周期过长。",
        "township": "大兴镇",
        "contact": {"name": "陈经理", "phone": "15011112222"},
    }
    body.update(payload)
    return {"kind": "enterprise_request", "external_id": external_id or f"q-{next(_ids)}", "payload": body}
