"""What the OpenAPI document says of errors, and the interactive docs served from this server.

Every route documents the error answers it can give (DESIGN §9's ``{"error": {...}}``), so a
client generated from ``/openapi.json`` knows them; ``/docs`` is Swagger UI from the
``swagger-ui-bundle`` wheel, served locally (the machines have no internet, and a CDN would be a
blank page).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail


_MEANING = {
    400: "malformed JSON, or nested too deeply",
    401: "missing or unknown token",
    403: "not allowed for this role, unit or source; or recused (回避)",
    404: "no such thing, or not yours to see",
    409: "conflict: a duplicate with other content, a stale version, an illegal move",
    413: "body over the size limit",
    422: "invalid fields (each named by its path)",
    429: "over the rate limit (Retry-After)",
    503: "database unavailable (Retry-After)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: these error answers, with the error body's schema."""
    return {code: {"model": ErrorBody, "description": _MEANING[code]} for code in codes}


def json_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The same for a route whose success is not JSON (FastAPI would file a model's errors under
    the route's own media type): the error body's schema named under ``application/json``."""
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {code: {"description": _MEANING[code], "content": body} for code in codes}


#: What every authenticated staff route may answer.
STAFF = errors(400, 401, 403, 404, 409, 413, 422, 503)
#: What the sources' routes may answer.
SOURCE = errors(400, 401, 403, 404, 409, 413, 422, 429, 503)

DOCS_ASSETS = "/docs-assets"


def serve_docs(app: FastAPI) -> None:
    """``/docs`` with Swagger UI's files from this server."""
    import swagger_ui_bundle

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
