"""The pages of the monthly rhythm: a meeting's decisions, a training's attendance, the reports.

Same rules as every page (``web.pages``): a signed-in session, the CSRF token on every POST, the
same use cases as the JSON API (``monthly.service``, ``reports.service``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from markupsafe import Markup
from starlette.responses import Response

from dispatcher.errors import NotFound
from dispatcher.http.params import Id
from dispatcher.http.state import ServicesDep
from dispatcher.monthly import service as monthly
from dispatcher.monthly.commands import DecisionBody
from dispatcher.reports import service as reports
from dispatcher.tasks import service
from dispatcher.web.pages import CheckedForm, PageUser, act, page
from dispatcher.web.render import render

router = APIRouter(include_in_schema=False)


@router.post("/tasks/{task_id}/decisions", name="task_decision")
async def task_decision(
    request: Request, task_id: Id, user: PageUser, services: ServicesDep, form: CheckedForm
) -> Response:
    """调度会决定: through the same core as ``POST /api/v1/tasks/{id}/decisions``."""

    async def work() -> object:
        about = str(form.get("about_task_id") or "").strip()
        body = DecisionBody.model_validate(
            {
                "text": str(form.get("text") or "").strip(),
                "owner_unit": str(form.get("owner_unit") or ""),
                "due": str(form.get("due") or "").strip() or None,
                "about_task_id": about or None,
            }
        )

        def decide() -> object:
            return monthly.decide(
                services, user, task_id, text=body.text, owner_unit=body.owner_unit, due=body.due,
                about_task_id=body.about_task_id,
            )  # fmt: skip

        return await run_in_threadpool(decide)

    return await act(
        request, services, user, task_id, work, label="记录决定事项",
        invalid="请填写决定事项、责任单位，时限为日期，任务编号为数字。",
        done="决定事项已记录，已生成督办任务。",
    )  # fmt: skip


@router.post("/tasks/{task_id}/attendance", name="task_attendance")
async def task_attendance(
    request: Request, task_id: Id, user: PageUser, services: ServicesDep, form: CheckedForm
) -> Response:
    """签到: oneself (``self``), or the organiser's checklist (checked: present, the rest: absent)."""

    async def work() -> object:
        if form.get("self"):
            return await run_in_threadpool(
                lambda: monthly.attend(services, user, task_id, logins=[], present=True)
            )
        present = [str(v) for v in form.getlist("logins")]
        task = await run_in_threadpool(service.read_task, services, user, task_id)
        people = [p["login"] for p in (task.get("training") or {}).get("people", [])]
        absent = [login for login in people if login not in present]

        def mark() -> object:
            if present:
                monthly.attend(services, user, task_id, logins=present, present=True)
            if absent:
                monthly.attend(services, user, task_id, logins=absent, present=False)
            return None

        return await run_in_threadpool(mark)

    return await act(
        request, services, user, task_id, work, label="签到", invalid="人员有误。", done="签到已保存。"
    )


# --- 月度报告 ----------------------------------------------------------------------------------


@router.get("/reports", name="reports")
async def reports_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    rows = await run_in_threadpool(reports.list_reports, services)
    runs = await run_in_threadpool(lambda: monthly.list_runs(services, limit=30))
    org = await run_in_threadpool(service.org, services)
    return page(request, services, user, "reports.html", org=org, reports=rows, runs=runs, title="月度报告")


@router.get("/reports/{report_id}", name="report")
async def report_page(request: Request, report_id: Id, user: PageUser, services: ServicesDep) -> Response:
    try:
        period, body = await run_in_threadpool(reports.report_page, services, report_id)
    except NotFound:
        return render(
            request, "error.html", user=user, tz=services.settings.tz, status_code=404,
            title="报告不存在", message="没有这份报告。",
        )  # fmt: skip
    org = await run_in_threadpool(service.org, services)
    return page(
        request, services, user, "report.html", org=org, report_id=report_id, period=period,
        body=Markup(body), title=f"{period} 月度报告",
    )  # fmt: skip


@router.get("/reports/{report_id}/charts/{name}.svg", name="report_chart")
async def report_chart(report_id: Id, name: str, user: PageUser, services: ServicesDep) -> Response:
    try:
        svg = await run_in_threadpool(reports.report_chart, services, report_id, name)
    except NotFound:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})
