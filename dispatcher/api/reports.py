"""Reports and schedules (DESIGN §9): the monthly reports and their files, the runs of the monthly jobs."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from dispatcher.http.auth import UserDep
from dispatcher.http.openapi import STAFF
from dispatcher.http.params import Id
from dispatcher.http.state import ServicesDep
from dispatcher.monthly import service as monthly
from dispatcher.monthly.periods import Job, Period
from dispatcher.reports import service
from dispatcher.reports.render import MEDIA_TYPES

router = APIRouter(tags=["reports"], responses=STAFF)


@router.get("/reports", summary="Monthly reports, newest first (filter: period=YYYY-MM)")
async def list_reports(
    user: UserDep,
    services: ServicesDep,
    period: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")] = None,
) -> dict[str, Any]:
    reports = await run_in_threadpool(service.list_reports, services)
    if period is not None:
        wanted = str(Period.parse(period))
        reports = [r for r in reports if r["period"] == wanted]
    return {"reports": reports}


@router.get(
    "/reports/{report_id}.{fmt}",
    summary="A report as a file: html, xlsx, csv or json",
    response_class=Response,
    responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}},
)
async def report_file(
    report_id: Id,
    fmt: Literal["html", "xlsx", "csv", "json"],
    user: UserDep,
    services: ServicesDep,
) -> Response:
    name, content = await run_in_threadpool(service.report_file, services, report_id, fmt)
    disposition = "inline" if fmt == "html" else "attachment"
    return Response(
        content,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}"},
    )


@router.get("/reports/{report_id}", summary="A report's figures (JSON) and the names of its charts")
async def read_report(report_id: Id, user: UserDep, services: ServicesDep) -> dict[str, Any]:
    return await run_in_threadpool(service.read_report, services, report_id)


@router.get("/schedules/runs", summary="Runs of the monthly jobs, newest period first")
async def schedule_runs(
    user: UserDep,
    services: ServicesDep,
    job: Job | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return {"runs": await run_in_threadpool(monthly.list_runs, services, limit=limit, job=job)}
