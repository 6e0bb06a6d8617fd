"""The report use cases: make a period's report once, read it, render it (DESIGN §7, §9)."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from dispatcher.errors import NotFound, ValidationFailed
from dispatcher.models import Report
from dispatcher.monthly.periods import Period
from dispatcher.notify.inbox import announce
from dispatcher.notify.webhooks import pending_webhooks_of
from dispatcher.org.model import Org
from dispatcher.reports.build import build_report
from dispatcher.reports.charts import draw_all
from dispatcher.reports.render import FORMATS, render, to_html
from dispatcher.runtime import Runtime

log = logging.getLogger(__name__)


def generate_report(rt: Runtime, period: Period) -> dict[str, Any]:
    """一月一报告: the report of ``period``, made once. A second call (a retry, another replica, the
    CLI) finds it and changes nothing; the figures are as of the end of the period anyway."""
    with rt.work(read_only=True) as session:
        existing = session.exec(select(Report.id).where(Report.period == str(period))).first()
        if existing is not None:
            return {"report_id": existing, "created": False}
        data = build_report(session, period, rt.org(session), rt.policy, rt.now())
    charts = draw_all(data)
    with rt.work() as session:
        table = Report.__table__  # type: ignore[attr-defined]
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        made = session.execute(
            insert(table)
            .values(period=str(period), generated_at=rt.now(), data=data, charts=charts)
            .on_conflict_do_nothing(index_elements=["period"])
            .returning(table.c.id)
        ).scalar_one_or_none()
        if made is None:  # another run made it between our read and our write
            found = session.exec(select(Report.id).where(Report.period == str(period))).one()
            return {"report_id": found, "created": False}
        notified = _announce(session, rt.org(session), period, made, rt)
    rt.hand_off_webhooks(notified)
    log.info("monthly report %s made (report %d)", period, made)
    return {"report_id": made, "created": True}


def _announce(session: Session, org: Org | None, period: Period, report_id: int, rt: Runtime) -> list[int]:
    """The zone leaders' units are told the report is ready (with a link to it)."""
    if org is None:
        return []
    leaders = {login for zone in org.zones for login in zone.leaders}
    units = sorted({s.unit for s in org.staff if s.login in leaders} | {z.room for z in org.zones})
    message = f"{period.year}年{period.month}月月度工作报告已生成"
    made = [
        announce(
            session,
            org,
            unit_code=u,
            kind="report",
            message=message,
            link=f"/reports/{report_id}",
            now=rt.now(),
        )
        for u in units
    ]
    session.flush()
    return pending_webhooks_of(session, [n.id for n in made if n.id is not None])


def list_reports(rt: Runtime, *, limit: int = 60) -> list[dict[str, Any]]:
    with rt.work(read_only=True) as session:
        rows = session.execute(
            sa.select(Report.id, Report.period, Report.generated_at)  # type: ignore[call-overload]
            .order_by(col(Report.period).desc())
            .limit(limit)
        ).all()
    return [
        {"id": r.id, "period": r.period, "generated_at": r.generated_at.isoformat(),
         "formats": {f: f"/api/v1/reports/{r.id}.{f}" for f in FORMATS}}
        for r in rows
    ]  # fmt: skip


def _get(session: Session, report_id: int) -> Report:
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound(f"no report {report_id}")
    return report


def report_of_period(rt: Runtime, period: Period) -> int | None:
    with rt.work(read_only=True) as session:
        return session.exec(select(Report.id).where(Report.period == str(period))).first()


def read_report(rt: Runtime, report_id: int) -> dict[str, Any]:
    with rt.work(read_only=True) as session:
        report = _get(session, report_id)
        return {"id": report.id, "period": report.period, "generated_at": report.generated_at.isoformat(),
                "data": report.data, "charts": sorted(report.charts)}  # fmt: skip


def report_file(rt: Runtime, report_id: int, fmt: str) -> tuple[str, bytes]:
    """``(file name, content)`` of the report in ``fmt`` (html, xlsx, csv, json)."""
    if fmt not in FORMATS:
        raise ValidationFailed(
            f"unknown format {fmt!r}; the formats are {', '.join(FORMATS)}",
            details=[{"path": "format", "message": "unknown"}],
        )
    with rt.work(read_only=True) as session:
        report = _get(session, report_id)
        data, charts = report.data, report.charts
    return f"report-{data['period']}.{fmt}", render(data, charts, fmt)


def report_page(rt: Runtime, report_id: int) -> tuple[str, str]:
    """``(period, HTML body)`` for the staff pages, charts as images under ``/reports/{id}/charts/``."""
    with rt.work(read_only=True) as session:
        report = _get(session, report_id)
        data, charts = report.data, report.charts
    body = to_html(data, charts, chart_src=lambda name: f"/reports/{report_id}/charts/{name}.svg")
    return data["period"], body


def report_chart(rt: Runtime, report_id: int, name: str) -> str:
    with rt.work(read_only=True) as session:
        chart = _get(session, report_id).charts.get(name)
    if chart is None:
        raise NotFound(f"report {report_id} has no chart {name!r}")
    return chart
