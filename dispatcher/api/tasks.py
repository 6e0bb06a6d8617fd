"""Staff routes (DESIGN §9): tasks and their moves, extensions, identity reveal, triage."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from dispatcher.enums import Role, TaskKind, TaskStatus
from dispatcher.http.auth import UserDep, require_roles
from dispatcher.http.openapi import STAFF
from dispatcher.http.params import Id, Offset
from dispatcher.http.state import ServicesDep
from dispatcher.models import User
from dispatcher.monthly import service as monthly
from dispatcher.monthly.commands import AttendanceBody, DecisionBody
from dispatcher.tasks import service
from dispatcher.tasks.commands import DecideBody, ExtendBody, MoveBody, RevealBody
from dispatcher.tasks.lifecycle import STAFF_MOVES, Move
from dispatcher.tasks.queries import TaskFilters

router = APIRouter(tags=["tasks"], responses=STAFF)

TriageUser = Annotated[User, Depends(require_roles(Role.oncall, Role.zone_leader, Role.admin))]


def _register_move(path: str, move: Move) -> None:
    async def endpoint(
        task_id: Id, user: UserDep, services: ServicesDep, body: Annotated[MoveBody | None, Body()] = None
    ) -> dict[str, Any]:
        return await run_in_threadpool(service.move_task, services, user, task_id, move, body)

    endpoint.__name__ = f"task_{path}"
    router.post(f"/tasks/{{task_id}}/{path}", summary=f"{move.value}: {move.__doc__ or ''}".strip())(endpoint)


for _path, _move in STAFF_MOVES.items():
    _register_move(_path, _move)


@router.post("/tasks/{task_id}/extend", summary="extend: ask the zone leader for more time (延期申请)")
async def task_extend(
    task_id: Id, user: UserDep, services: ServicesDep, body: Annotated[ExtendBody | None, Body()] = None
) -> dict[str, Any]:
    return await run_in_threadpool(service.ask_for_extension, services, user, task_id, body)


@router.post(
    "/tasks/{task_id}/extensions/{extension_id}/{decision}",
    summary="Approve or refuse an extension (zone leader): decision is `approve` or `refuse`",
)
async def extension_decision(
    task_id: Id,
    extension_id: Id,
    decision: Literal["approve", "refuse"],
    user: UserDep,
    services: ServicesDep,
    body: Annotated[DecideBody | None, Body()] = None,
) -> dict[str, Any]:
    def decide() -> dict[str, Any]:
        approve = decision == "approve"
        return service.decide_extension(services, user, task_id, extension_id, approve=approve, body=body)

    return await run_in_threadpool(decide)


@router.get(
    "/tasks",
    summary="Tasks visible to me, most urgent first, paged with a total",
    description=(
        "Answers `tasks` (a page, each with its `summary`), `limit`, `offset`, `sort`, `total`, "
        "`total_exact` and `counts` (tasks per state, the `status` filter aside). The list as it opens, "
        "or filtered by `status`, `unit` or `zone`, is counted exactly. A search (`q`) or a filter by "
        "`kind` or `overdue` is counted up to 2,000 matches: beyond that `total` is 2000, `total_exact` "
        "false and `counts` empty. A word of `q` shorter than three characters is looked for in the "
        "summary only."
    ),
)
async def list_tasks(
    user: UserDep,
    services: ServicesDep,
    status: TaskStatus | None = None,
    kind: TaskKind | None = None,
    unit: str | None = None,
    zone: str | None = None,
    overdue: Annotated[
        bool | None, Query(description="true: overdue or escalated, or past the running clock's due time")
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="a ledger number (or part of it) or words of the summary"),
    ] = None,
    sort: Annotated[
        Literal["urgent", "newest", "oldest"],
        Query(description="urgent: escalated, overdue, reopened, rejected, then by time left"),
    ] = "urgent",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    filters = TaskFilters(status=status, kind=kind, unit=unit, zone=zone, overdue=overdue, q=q)

    def read() -> dict[str, Any]:
        return service.browse_tasks(services, user, filters, sort=sort, limit=limit, offset=offset)

    return await run_in_threadpool(read)


@router.get("/tasks/stats", summary="Open tasks I may see, counted by deadline state per zone and unit")
async def task_stats(user: UserDep, services: ServicesDep) -> dict[str, Any]:
    return await run_in_threadpool(service.count_open, services, user)


@router.get("/tasks/{task_id}", summary="A task with its event, routing reason and history")
async def read_task(task_id: Id, user: UserDep, services: ServicesDep) -> dict[str, Any]:
    return await run_in_threadpool(service.read_task, services, user, task_id)


@router.post("/tasks/{task_id}/identity", summary="Reveal the reporter's or complainant's identity (logged)")
async def reveal_identity(
    task_id: Id, body: RevealBody, user: UserDep, services: ServicesDep
) -> dict[str, Any]:
    return await run_in_threadpool(service.reveal_identity, services, user, task_id, body.reason)


@router.get("/triage", summary="Items waiting for manual routing (on-call, zone leaders, admin)")
async def triage(user: TriageUser, services: ServicesDep) -> dict[str, Any]:
    return {"tasks": await run_in_threadpool(service.triage, services, user)}


@router.post("/triage/{task_id}/route", summary="Route a triage item to a unit by hand (rule 7)")
async def route_triage(
    task_id: Id, user: TriageUser, services: ServicesDep, body: Annotated[MoveBody | None, Body()] = None
) -> dict[str, Any]:
    return await run_in_threadpool(service.move_task, services, user, task_id, Move.route, body)


@router.post("/tasks/{task_id}/decisions", summary="Record a dispatch meeting's decision (a follow-up task)")
async def meeting_decision(
    task_id: Id, user: UserDep, services: ServicesDep, body: DecisionBody
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: monthly.decide(
            services, user, task_id, text=body.text, owner_unit=body.owner_unit, due=body.due,
            about_task_id=body.about_task_id,
        )
    )  # fmt: skip


@router.post("/tasks/{task_id}/attendance", summary="Mark attendance at a training (签到)")
async def training_attendance(
    task_id: Id, user: UserDep, services: ServicesDep, body: Annotated[AttendanceBody | None, Body()] = None
) -> dict[str, Any]:
    body = body or AttendanceBody()
    return await run_in_threadpool(
        lambda: monthly.attend(services, user, task_id, logins=body.logins, present=body.present)
    )


@router.post(
    "/tasks/{task_id}/attachments", status_code=201, summary="Attach a file (JPEG, PNG, PDF, DOCX, XLSX)"
)
async def attach(task_id: Id, user: UserDep, services: ServicesDep, file: UploadFile) -> dict[str, Any]:
    content = await file.read(services.settings.max_attachment_bytes + 1)
    return await run_in_threadpool(service.upload_attachment, services, user, task_id, file.filename, content)


@router.get(
    "/tasks/{task_id}/attachments/{attachment_id}",
    summary="Download a file of the task (logged)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def attachment(task_id: Id, attachment_id: Id, user: UserDep, services: ServicesDep) -> Response:
    name, media, content = await run_in_threadpool(
        service.download_attachment, services, user, task_id, attachment_id
    )
    return Response(
        content,
        media_type=media,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
