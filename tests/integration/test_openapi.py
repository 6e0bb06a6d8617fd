"""The OpenAPI document tells the truth about errors, and /docs works with no internet (issue 11)."""

from __future__ import annotations

import httpx


def test_every_api_route_documents_its_error_answers_with_the_error_schema(api_url: str) -> None:
    spec = httpx.get(f"{api_url}/openapi.json", timeout=30).json()
    missing = []
    for path, methods in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in methods.items():
            documented = set(operation["responses"])
            needed = {"401", "403", "404", "422"} | ({"429"} if path.startswith("/api/v1/events") else set())
            if needed - documented:
                missing.append((method, path, sorted(needed - documented)))
            schema = operation["responses"].get("401", {}).get("content", {}).get("application/json", {})
            assert schema.get("schema", {}).get("$ref", "").endswith("/ErrorBody"), (method, path)
    assert missing == []
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


def test_the_docs_page_and_its_scripts_come_from_this_server(api_url: str) -> None:
    page = httpx.get(f"{api_url}/docs", timeout=30)
    assert page.status_code == 200 and "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs-assets/{asset}" in page.text
        r = httpx.get(f"{api_url}/docs-assets/{asset}", timeout=30)
        assert r.status_code == 200 and len(r.content) > 10_000
