"""Intake routes (DESIGN §4): ``POST /events``, ``POST /events:batch``, ``GET /events/{id}``."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from dispatcher import errors, metrics
from dispatcher.http.auth import SourceDep
from dispatcher.http.errors import BadRequest, PayloadTooLarge, status_of
from dispatcher.http.openapi import SOURCE
from dispatcher.http.state import Services, ServicesDep
from dispatcher.intake.register import Accepted, Envelope, parse_event
from dispatcher.intake.service import Outcome, register_events, state_of
from dispatcher.models import Source
from dispatcher.tasks.outcomes import validate_feedback
from dispatcher.tasks.service import record_feedback

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"], responses=SOURCE)


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON: 413 beyond ``limit`` bytes (checked while reading), 400 if not JSON."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body over {limit // 1024} KiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body over {limit // 1024} KiB")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    if _depth(body) > MAX_DEPTH:
        raise BadRequest(f"JSON nested more than {MAX_DEPTH} levels deep")
    return body


#: No event needs more (the contract's deepest field is three levels down); every later step may
#: walk the body recursively, so deeper ones are refused here.
MAX_DEPTH = 32


def _depth(value: Any) -> int:
    """How deeply ``value`` nests objects and arrays, counted without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            todo.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _answer(accepted: Accepted) -> dict[str, Any]:
    return {
        "event_id": accepted.event_id,
        "ledger_no": accepted.ledger_no,
        "status": "accepted",
        "duplicate": accepted.duplicate,
    }


def _store(services: Services, source: Source, envelopes: list[Envelope]) -> list[Outcome]:
    results = register_events(services, source, envelopes)
    for result in results:
        if isinstance(result, errors.DispatchError):
            metrics.EVENTS_REFUSED.labels(str(status_of(result))).inc()
    return results


@router.post(
    "/events",
    status_code=202,
    summary="Publish one event",
    responses={
        200: {"description": "duplicate: the stored event"},
        409: {},
        413: {},
        422: {},
        429: {},
        503: {},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventEnvelope"}}},
        }
    },
)
async def post_event(request: Request, source: SourceDep, services: ServicesDep) -> JSONResponse:
    started = time.perf_counter()
    envelope = parse_event(await read_json(request, services.settings.max_body_bytes))
    [result] = await run_in_threadpool(_store, services, source, [envelope])
    if isinstance(result, errors.DispatchError):
        raise result
    metrics.INTAKE_SECONDS.observe(time.perf_counter() - started)
    return JSONResponse(_answer(result), status_code=200 if result.duplicate else 202)


@router.post(
    "/events:batch",
    summary="Publish up to 500 events; answers per item",
    responses={413: {}, 422: {}, 429: {}, 503: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "events": {
                                "type": "array",
                                "maxItems": 500,
                                "items": {"$ref": "#/components/schemas/EventEnvelope"},
                            }
                        },
                    }
                }
            },
        }
    },
)
async def post_batch(request: Request, source: SourceDep, services: ServicesDep) -> JSONResponse:
    body = await read_json(request, services.settings.max_body_bytes)
    items = body.get("events") if isinstance(body, dict) else body
    if not isinstance(items, list) or not items:
        raise errors.ValidationFailed(
            'a batch is {"events": [...]} with at least one event',
            details=[{"path": "events", "message": "must be a non-empty list"}],
        )
    if len(items) > services.settings.max_batch:
        raise errors.ValidationFailed(
            f"a batch holds at most {services.settings.max_batch} events",
            details=[{"path": "events", "message": f"{len(items)} events"}],
        )
    parsed: list[Envelope | errors.DispatchError] = []
    for item in items:
        try:
            parsed.append(parse_event(item))
        except errors.ValidationFailed as exc:
            parsed.append(exc)
    valid = [p for p in parsed if not isinstance(p, errors.DispatchError)]
    stored = iter(await run_in_threadpool(_store, services, source, valid) if valid else [])
    answers = []
    for index, item in enumerate(parsed):
        result = item if isinstance(item, errors.DispatchError) else next(stored)
        if isinstance(result, Accepted):
            answers.append({"index": index, "code": 200 if result.duplicate else 202, **_answer(result)})
        else:
            answers.append(
                {
                    "index": index,
                    "code": status_of(result),
                    "status": "refused",
                    "error": {"code": result.code, "message": result.message, "details": result.details},
                }
            )
    counts = {
        "accepted": sum(a["code"] == 202 for a in answers),
        "duplicate": sum(a["code"] == 200 for a in answers),
    }
    counts["refused"] = len(answers) - counts["accepted"] - counts["duplicate"]
    return JSONResponse({"results": answers, **counts}, status_code=200)


@router.get("/events/{event_id}", summary="An event's state, ledger number and task")
async def get_event(event_id: str, source: SourceDep, services: ServicesDep) -> dict[str, Any]:
    return await run_in_threadpool(state_of, services, source, event_id)


@router.post(
    "/events/{event_id}/feedback", summary="The requester's satisfaction (回访), relayed by its platform"
)
async def post_feedback(
    event_id: str, request: Request, source: SourceDep, services: ServicesDep
) -> dict[str, Any]:
    feedback = validate_feedback(await read_json(request, services.settings.max_body_bytes))
    return await run_in_threadpool(record_feedback, services, source, event_id, feedback)
