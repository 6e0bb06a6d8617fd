"""Errors as JSON ``{"error": {"code", "message", "details"}}`` (DESIGN §9); never a traceback."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dispatcher import errors
from dispatcher.errors import field_problems

log = logging.getLogger(__name__)

STATUS: dict[type[errors.DispatchError], int] = {
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.ValidationFailed: 422,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
    errors.ConfigError: 500,
}


class BadRequest(errors.DispatchError):
    code = "bad_request"


class PayloadTooLarge(errors.DispatchError):
    code = "payload_too_large"


STATUS[BadRequest] = 400
STATUS[PayloadTooLarge] = 413


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def status_of(exc: errors.DispatchError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.DispatchError)
    async def _domain(request: Request, exc: errors.DispatchError) -> JSONResponse:
        status = status_of(exc)
        headers = {}
        if isinstance(exc, errors.RateLimited):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        if isinstance(exc, errors.Unavailable):
            headers["Retry-After"] = "5"
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return JSONResponse(
                error_body("bad_request", "malformed JSON", field_problems(exc.errors())), status_code=400
            )
        return JSONResponse(
            error_body("validation_error", "the request is invalid", field_problems(exc.errors())),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        # keep the exception's headers: a 405 says which methods are allowed (``Allow``)
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=dict(exc.headers or {})
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse(
            error_body("unavailable", "database unavailable"), status_code=503, headers={"Retry-After": "5"}
        )

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        return JSONResponse(error_body("bad_request", "the body is nested too deeply"), status_code=400)

    # Anything else that escapes is answered by ``http.guards.ErrorShield`` (500, connection kept).
