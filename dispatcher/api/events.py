"""Intake routes (DESIGN §4): ``POST /events``, ``POST /events:batch``, ``GET /events/{id}``."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlmodel import Session, select

from dispatcher import errors, metrics
from dispatcher.api.tasks import policy_of
from dispatcher.db import unit_of_work, with_retries
from dispatcher.http.auth import SourceDep
from dispatcher.http.errors import BadRequest, PayloadTooLarge, status_of, validation_details
from dispatcher.http.state import Services, ServicesDep
from dispatcher.intake.register import Accepted, Envelope, accept_event, event_state
from dispatcher.models import Event, Source, Task
from dispatcher.notify.webhooks import pending_webhooks
from dispatcher.org.store import current_org
from dispatcher.tasks.lifecycle import Move
from dispatcher.tasks.moves import Actor, MoveRequest, apply_move
from dispatcher.tasks.outcomes import validate_feedback
from events.schemas import nul_paths, parse_envelope

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])


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
        return json.loads(b"".join(chunks))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None


def validate(body: Any) -> Envelope:
    bad = nul_paths(body)
    if bad:
        raise errors.ValidationFailed(
            "the event contains NUL characters",
            details=[{"path": ".".join(map(str, p)) or "(body)", "message": "NUL character"} for p in bad],
        )
    try:
        return parse_envelope(body)
    except ValidationError as exc:
        raise errors.ValidationFailed("the event is invalid", details=validation_details(exc)) from None


def _answer(accepted: Accepted) -> dict[str, Any]:
    return {
        "event_id": accepted.event_id,
        "ledger_no": accepted.ledger_no,
        "status": "accepted",
        "duplicate": accepted.duplicate,
    }


def _store(
    services: Services, source: Source, envelopes: list[Envelope]
) -> list[Accepted | errors.DispatchError]:
    """One transaction for all; each event in its own savepoint; enqueue after the commit.

    Events are stored grouped by kind so that concurrent batches lock the ledger counters in
    the same order (no deadlocks); a deadlock or serialization failure runs the whole
    transaction again.
    """
    ctx = services.intake_context()
    order = sorted(range(len(envelopes)), key=lambda i: envelopes[i].kind.value)

    def work(session: Session) -> list[Accepted | errors.DispatchError]:
        stored: dict[int, Accepted | errors.DispatchError] = {}
        for i in order:
            try:
                stored[i] = accept_event(session, source, envelopes[i], ctx)
            except (errors.Conflict, errors.Forbidden, errors.ValidationFailed) as exc:
                stored[i] = exc
        return [stored[i] for i in range(len(envelopes))]

    results = with_retries(services.engine, work)
    fresh = [r.event_id for r in results if isinstance(r, Accepted) and not r.duplicate]
    if fresh:
        try:
            services.enqueuer.route_events(fresh)
        except Exception as exc:  # the outbox relay delivers them later
            metrics.ENQUEUE_FAILURES.inc(len(fresh))
            log.warning("enqueue failed for %d event(s), the relay will retry: %s", len(fresh), exc)
    for envelope, result in zip(envelopes, results, strict=True):
        if isinstance(result, Accepted):
            (metrics.EVENTS_DUPLICATE if result.duplicate else metrics.EVENTS_ACCEPTED).labels(
                envelope.kind.value
            ).inc()
        else:
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
    envelope = validate(await read_json(request, services.settings.max_body_bytes))
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
            parsed.append(validate(item))
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
    def _read() -> dict[str, Any]:
        with unit_of_work(services.engine, read_only=True) as session:
            return event_state(session, source, event_id)

    return await run_in_threadpool(_read)


@router.post(
    "/events/{event_id}/feedback", summary="The requester's satisfaction (回访), relayed by its platform"
)
async def post_feedback(
    event_id: str, request: Request, source: SourceDep, services: ServicesDep
) -> dict[str, Any]:
    body = await read_json(request, services.settings.max_body_bytes)
    feedback = validate_feedback(body)
    move = Move.feedback_reopen if feedback.rating == "unsatisfied" else Move.feedback_close

    def record() -> dict[str, Any]:
        with unit_of_work(services.engine) as session:
            event = session.get(Event, event_id)
            if event is None or event.source_id != source.id:
                raise errors.NotFound(f"no event {event_id}")
            task = session.exec(select(Task).where(Task.event_id == event_id)).first()
            if task is None or task.id is None:
                raise errors.Conflict(
                    "the event has no task yet", details={"current": event.status, "allowed": []}
                )
            loaded = current_org(session)
            task = apply_move(
                session,
                Actor(login=f"source:{source.name}", role="source"),
                task.id,
                MoveRequest(move=move, feedback=feedback.model_dump()),
                now=services.clock(),
                org=loaded[1] if loaded else None,
                policy=policy_of(services),
            )
            session.flush()
            pending = pending_webhooks(session, [task.id])
            answer = {
                "event_id": event_id,
                "task_id": task.id,
                "status": task.status,
                "rating": feedback.rating,
            }
        services.deliver(pending)
        return answer

    return await run_in_threadpool(record)
